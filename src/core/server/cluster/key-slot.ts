// The Redis Cluster hash slot of a key (CRC16/XMODEM mod 16384, with {hash tag} support), as the Redis
// Cluster specification defines it. redis-sharded.ts needs it to know which master a channel lives on after
// the topology changed; node-redis has it only in a transitive dependency we do not import.
const SLOTS = 16384

const TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!
  return crc
}

export function keySlot(key: string): number {
  const bytes = Buffer.from(key)
  // A non-empty {tag} hashes alone, so related keys can share a slot.
  const open = bytes.indexOf(0x7b)
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOTS
  }
  return crc16(bytes, 0, bytes.length) % SLOTS
}
