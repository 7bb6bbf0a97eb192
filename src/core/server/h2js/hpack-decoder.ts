// The HPACK decoder (RFC 7541) of one connection: integers, literal and Huffman strings, the static table
// and the dynamic table the client fills. The dynamic table is bounded by the SETTINGS_HEADER_TABLE_SIZE
// we advertised and starts empty: an idle peer's table holds the few headers its client chose to index.
import type { IncomingHttpHeaders } from 'node:http2'
import { huffmanDecode, HuffmanError } from './hpack-huffman.js'
import { STATIC_TABLE } from './hpack-static-table.js'

/** A header block that cannot be decoded: a connection error (COMPRESSION_ERROR, RFC 9113 §4.3). */
export class CompressionError extends Error {}

/** What one header block decoded to. */
export interface DecodedHeaders {
  headers: IncomingHttpHeaders
  /** RFC 9113 §6.5.2's size: Σ (name + value + 32). */
  listSize: number
  /** A malformed request (upper-case name, pseudo-header after a regular one): a stream error. */
  malformed: string | undefined
}

/** Per entry overhead counted by the table's size (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32

export class HpackDecoder {
  /** Names and values, oldest first (index 62 is the last pair); undefined until the client indexes one. */
  #entries: string[] | undefined
  #size = 0
  #maxSize: number

  /** `limit`: our SETTINGS_HEADER_TABLE_SIZE, the most a size update may ask for. */
  constructor(private readonly limit: number) {
    this.#maxSize = limit
  }

  /** Bytes the dynamic table holds by its own measure. */
  get tableSize(): number {
    return this.#size
  }

  /** Decodes one complete header block. Throws CompressionError. */
  decode(block: Uint8Array): DecodedHeaders {
    const headers: IncomingHttpHeaders = Object.create(null) as IncomingHttpHeaders
    let listSize = 0
    let malformed: string | undefined
    let regularSeen = false
    let first = true
    let pos = 0
    const cursor = { pos: 0 }
    while (pos < block.length) {
      const octet = block[pos]!
      cursor.pos = pos
      let name: string
      let value: string
      if (octet & 0x80) {
        const index = readInteger(block, cursor, 7)
        ;[name, value] = this.#lookup(index)
      } else if ((octet & 0xe0) === 0x20) {
        // Dynamic table size update: only at the start of a block, at most our setting.
        if (!first) throw new CompressionError('dynamic table size update after a header')
        const size = readInteger(block, cursor, 5)
        if (size > this.limit) throw new CompressionError(`dynamic table size update to ${size} above ${this.limit}`)
        this.#maxSize = size
        this.#evict(0)
        pos = cursor.pos
        continue
      } else {
        const indexing = (octet & 0xc0) === 0x40
        const index = readInteger(block, cursor, indexing ? 6 : 4)
        name = index === 0 ? readString(block, cursor) : this.#lookup(index)[0]
        value = readString(block, cursor)
        if (indexing) this.#insert(name, value)
      }
      pos = cursor.pos
      first = false
      listSize += name.length + value.length + ENTRY_OVERHEAD
      if (name.charCodeAt(0) === 0x3a) {
        if (regularSeen) malformed ??= `pseudo-header ${name} after a regular header`
      } else regularSeen = true
      if (name !== name.toLowerCase()) malformed ??= `upper-case header name ${name}`
      const previous = headers[name]
      if (previous === undefined) headers[name] = value
      else if (name === 'set-cookie') headers[name] = Array.isArray(previous) ? [...previous, value] : [previous, value]
      else headers[name] = `${String(previous)}, ${value}`
    }
    return { headers, listSize, malformed }
  }

  #lookup(index: number): readonly [string, string] {
    if (index === 0) throw new CompressionError('index 0')
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!
    const entries = this.#entries
    const at = entries ? entries.length - 2 * (index - STATIC_TABLE.length) : -1
    if (!entries || at < 0) throw new CompressionError(`index ${index} beyond the tables`)
    return [entries[at]!, entries[at + 1]!]
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD
    // An entry larger than the table empties it and is not stored (RFC 7541 §4.4).
    this.#evict(Math.min(size, this.#maxSize + 1))
    if (size > this.#maxSize) return
    ;(this.#entries ??= []).push(name, value)
    this.#size += size
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  #evict(room: number): void {
    const entries = this.#entries
    if (!entries) return
    let drop = 0
    while (this.#size + room > this.#maxSize && drop < entries.length) {
      this.#size -= entries[drop]!.length + entries[drop + 1]!.length + ENTRY_OVERHEAD
      drop += 2
    }
    if (drop > 0) entries.splice(0, drop)
    if (entries.length === 0) this.#entries = undefined
  }
}

/** An integer with an N-bit prefix (RFC 7541 §5.1), bounded to 2^31 (nothing we accept is larger). */
function readInteger(block: Uint8Array, cursor: { pos: number }, prefixBits: number): number {
  if (cursor.pos >= block.length) throw new CompressionError('truncated integer')
  const max = (1 << prefixBits) - 1
  let value = block[cursor.pos++]! & max
  if (value < max) return value
  let shift = 0
  for (;;) {
    if (cursor.pos >= block.length) throw new CompressionError('truncated integer')
    const octet = block[cursor.pos++]!
    value += (octet & 0x7f) * 2 ** shift
    if (value > 2 ** 31) throw new CompressionError('integer too large')
    if ((octet & 0x80) === 0) return value
    shift += 7
  }
}

/** A string literal (RFC 7541 §5.2), raw or Huffman-coded, as latin1 (one char per octet). */
function readString(block: Uint8Array, cursor: { pos: number }): string {
  if (cursor.pos >= block.length) throw new CompressionError('truncated string')
  const huffman = (block[cursor.pos]! & 0x80) !== 0
  const length = readInteger(block, cursor, 7)
  const start = cursor.pos
  const end = start + length
  if (end > block.length) throw new CompressionError('string beyond the block')
  cursor.pos = end
  if (!huffman) return latin1(block, start, end)
  try {
    return huffmanDecode(block, start, end)
  } catch (err) {
    if (err instanceof HuffmanError) throw new CompressionError(err.message)
    throw err
  }
}

function latin1(block: Uint8Array, start: number, end: number): string {
  return Buffer.from(block.buffer, block.byteOffset + start, end - start).toString('latin1')
}
