// The HPACK encoder of our responses: static-table indexes where name and value match, else literals
// without indexing (RFC 7541 §6.2.2), never the dynamic table, so no connection holds an encoder table and
// the client's decoder table for us stays empty. Our headers are a handful of constants per call (status,
// content type, grpc-status, grpc-message), so the blocks callers use often are encoded once and reused.
import { STATIC_TABLE } from './hpack-static-table.js'

export type OutgoingHeaderValue = string | number
export type OutgoingHeaders = Readonly<Record<string, OutgoingHeaderValue | undefined>>

const FULL_MATCH = new Map<string, number>()
const NAME_MATCH = new Map<string, number>()
STATIC_TABLE.forEach(([name, value], i) => {
  FULL_MATCH.set(`${name}\0${value}`, i + 1)
  if (!NAME_MATCH.has(name)) NAME_MATCH.set(name, i + 1)
})

/** One header block (pseudo-headers first, as RFC 9113 §8.3 requires). */
export function encodeHeaders(headers: OutgoingHeaders): Buffer {
  const out: number[] = []
  const names = Object.keys(headers).sort((a, b) => Number(b.startsWith(':')) - Number(a.startsWith(':')))
  for (const key of names) {
    const raw = headers[key]
    if (raw === undefined) continue
    const name = key.toLowerCase()
    const value = String(raw)
    const full = FULL_MATCH.get(`${name}\0${value}`)
    if (full !== undefined) {
      writeInteger(out, full, 7, 0x80)
      continue
    }
    const nameIndex = NAME_MATCH.get(name)
    if (nameIndex !== undefined) writeInteger(out, nameIndex, 4, 0x00)
    else {
      out.push(0x00)
      writeString(out, name)
    }
    writeString(out, value)
  }
  return Buffer.from(out)
}

function writeInteger(out: number[], value: number, prefixBits: number, flags: number): void {
  const max = (1 << prefixBits) - 1
  if (value < max) {
    out.push(flags | value)
    return
  }
  out.push(flags | max)
  value -= max
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80)
    value = Math.floor(value / 0x80)
  }
  out.push(value)
}

/** Raw octets (no Huffman): values are ASCII; a non-latin1 character is sent as its UTF-8 bytes. */
function writeString(out: number[], value: string): void {
  const bytes = Buffer.from(value, 'utf8')
  writeInteger(out, bytes.length, 7, 0x00)
  for (const b of bytes) out.push(b)
}
