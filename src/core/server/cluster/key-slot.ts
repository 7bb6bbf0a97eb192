// The Redis Cluster hash slot of a key (CRC16/XMODEM mod 16384, with {hash tag} support), as the Redis
// Cluster specification defines it. redis-sharded.ts routes each SPUBLISH/SSUBSCRIBE to the slot's master
// with it, and after a failover tells which channels moved to another master.
export const SLOTS = 16384

const TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

/** Byte `i` of the key: an ASCII string's char codes are its UTF-8 bytes, so no Buffer per call. */
type ByteAt = (i: number) => number

function crc16(byteAt: ByteAt, start: number, end: number): number {
  let crc = 0
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byteAt(i)) & 0xff]!
  return crc
}

export function keySlot(key: string): number {
  // Channel names are ASCII (a prefix and base64); anything else is hashed as its UTF-8 bytes.
  // eslint-disable-next-line no-control-regex
  const ascii = /^[\x00-\x7f]*$/.test(key)
  const bytes = ascii ? undefined : Buffer.from(key)
  return bytes ? keySlotOfBytes(bytes) : slotOf((i) => key.charCodeAt(i), key.length)
}

/** The slot of a key given as bytes `key[0, length)` (the publish path encodes channel names without a string). */
export function keySlotOfBytes(key: Uint8Array, length = key.length): number {
  return slotOf((i) => key[i]!, length)
}

function slotOf(byteAt: ByteAt, length: number): number {
  // A non-empty {tag} hashes alone, so related keys can share a slot.
  let open = -1
  for (let i = 0; i < length; i++) {
    if (byteAt(i) === 0x7b) {
      open = i
      break
    }
  }
  if (open >= 0) {
    for (let close = open + 1; close < length; close++) {
      if (byteAt(close) !== 0x7d) continue
      if (close > open + 1) return crc16(byteAt, open + 1, close) % SLOTS
      break
    }
  }
  return crc16(byteAt, 0, length) % SLOTS
}
