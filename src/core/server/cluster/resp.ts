// RESP (the Redis protocol, versions 2 and 3) for the cluster transports' own connections (resp-connection.ts):
// an incremental reply parser and a batch writer. Built for the two hot operations, so both avoid per-message
// objects: an integer reply (PUBLISH/SPUBLISH's answer) reaches the handler as a number, a Pub/Sub message
// ("message"/"smessage", a RESP2 array or a RESP3 push) as offsets into the received bytes, and commands are
// encoded straight into one buffer per tick. Everything else (handshake, SUBSCRIBE confirmations, CLUSTER
// SLOTS) is decoded into plain values: rare, so clarity over speed there.

/** An error reply ("-ERR …", RESP3 "!…"): a value, so that a command's caller decides whether it throws. */
export class RespError extends Error {
  override name = 'RespError'
}

/**
 * A decoded reply: bulk strings as Buffers (copies), simple strings as strings, RESP3 maps as flat
 * [key, value, …] arrays (as RESP2 sends them), sets as arrays, big numbers as bigint.
 */
export type RespValue = null | number | bigint | boolean | string | Buffer | RespError | RespValue[]

export interface RespHandler {
  /** A top-level integer reply. */
  integer(value: number): void
  /** Any other reply, or a push (RESP3 ">", or any array on a RESP2 subscriber connection) that is no message. */
  value(value: RespValue, push: boolean): void
  /**
   * A Pub/Sub message (only with `messages: true`): channel and payload are `buffer[start, end)`, valid only
   * during the call (the buffer is the received chunk; copy what you keep).
   */
  message(buffer: Buffer, channelStart: number, channelEnd: number, payloadStart: number, payloadEnd: number): void
}

const CR = 13
const LF = 10
const INCOMPLETE = -1
/** Array lengths and nesting of a reply this parser accepts: a corrupt stream fails instead of allocating wildly. */
const MAX_ELEMENTS = 1 << 20
const MAX_DEPTH = 16
const MESSAGE = Buffer.from('message')
const SMESSAGE = Buffer.from('smessage')

export class RespProtocolError extends Error {
  override name = 'RespProtocolError'
}

/**
 * Feed it the bytes as they arrive, split anywhere; it calls the handler once per complete reply, in order.
 * `messages`: recognize Pub/Sub messages (a subscriber connection); otherwise they are plain arrays.
 */
export class RespParser {
  /** Bytes of an incomplete reply, in arrival order, not yet joined (a large reply arrives in many chunks). */
  #parts: Buffer[] = []
  #partsLength = 0
  /** How many bytes the incomplete reply needs at least before it is worth parsing again. */
  #needed = 0
  /** Set by a bulk string that did not fit: the absolute end it needs. */
  #wantEnd = 0
  #value: RespValue = null

  constructor(
    private readonly handler: RespHandler,
    private readonly messages = false,
  ) {}

  /** Throws RespProtocolError on bytes that are no RESP: the connection cannot be trusted after that. */
  feed(chunk: Buffer): void {
    let buffer = chunk
    if (this.#partsLength > 0) {
      this.#parts.push(chunk)
      this.#partsLength += chunk.length
      if (this.#partsLength < this.#needed) return
      buffer = Buffer.concat(this.#parts, this.#partsLength)
      this.#parts = []
      this.#partsLength = 0
    }
    let at = 0
    while (at < buffer.length) {
      this.#wantEnd = 0
      const end = this.#top(buffer, at)
      if (end === INCOMPLETE) {
        const rest = buffer.subarray(at)
        this.#parts.push(rest)
        this.#partsLength = rest.length
        this.#needed = Math.max(rest.length + 1, this.#wantEnd - at)
        return
      }
      at = end
    }
  }

  /** One top-level reply from `at`: its end, or INCOMPLETE. */
  #top(buffer: Buffer, at: number): number {
    const type = buffer[at]!
    if (type === 0x3a /* : */) {
      const lineEnd = findLineEnd(buffer, at + 1)
      if (lineEnd === INCOMPLETE) return INCOMPLETE
      this.handler.integer(readInteger(buffer, at + 1, lineEnd))
      return lineEnd + 2
    }
    if (this.messages && (type === 0x2a /* * */ || type === 0x3e) /* > */) {
      const end = this.#message(buffer, at)
      if (end !== 0) return end
    }
    const end = this.#parse(buffer, at, 0)
    if (end !== INCOMPLETE) this.handler.value(this.#value, type === 0x3e)
    return end
  }

  /** A "message"/"smessage" of 3 elements handed over as offsets; 0 when it is something else. */
  #message(buffer: Buffer, at: number): number {
    const countEnd = findLineEnd(buffer, at + 1)
    if (countEnd === INCOMPLETE) return INCOMPLETE
    if (countEnd !== at + 2 || buffer[at + 1] !== 0x33 /* 3 */) return 0
    const kind = bulkAt(buffer, countEnd + 2)
    if (kind === INCOMPLETE) return INCOMPLETE
    if (kind === 0) return 0
    const kindStart = bulkStart(buffer, countEnd + 2)
    const kindLength = kind - 2 - kindStart
    const isMessage =
      (kindLength === 7 && buffer.compare(MESSAGE, 0, 7, kindStart, kindStart + 7) === 0) ||
      (kindLength === 8 && buffer.compare(SMESSAGE, 0, 8, kindStart, kindStart + 8) === 0)
    if (!isMessage) return 0
    const channelEnd = bulkAt(buffer, kind)
    if (channelEnd === INCOMPLETE) return this.#wantBulk(buffer, kind)
    if (channelEnd === 0) return 0
    const payloadEnd = bulkAt(buffer, channelEnd)
    if (payloadEnd === INCOMPLETE) return this.#wantBulk(buffer, channelEnd)
    if (payloadEnd === 0) return 0
    this.handler.message(buffer, bulkStart(buffer, kind), channelEnd - 2, bulkStart(buffer, channelEnd), payloadEnd - 2)
    return payloadEnd
  }

  /** Notes how far a bulk string at `at` reaches (if its header is in), so feed() waits for all of it. */
  #wantBulk(buffer: Buffer, at: number): number {
    const lineEnd = findLineEnd(buffer, at + 1)
    if (lineEnd !== INCOMPLETE) this.#wantEnd = lineEnd + 2 + readInteger(buffer, at + 1, lineEnd) + 2
    return INCOMPLETE
  }

  /** Any value from `at` into this.#value: its end, or INCOMPLETE. */
  #parse(buffer: Buffer, at: number, depth: number): number {
    if (at >= buffer.length) return INCOMPLETE
    if (depth > MAX_DEPTH) throw new RespProtocolError('reply nested too deep')
    const type = buffer[at]!
    const lineEnd = findLineEnd(buffer, at + 1)
    if (lineEnd === INCOMPLETE) return INCOMPLETE
    const next = lineEnd + 2
    switch (type) {
      case 0x2b: // + simple string
        this.#value = buffer.toString('utf8', at + 1, lineEnd)
        return next
      case 0x2d: // - error
        this.#value = new RespError(buffer.toString('utf8', at + 1, lineEnd))
        return next
      case 0x3a: // : integer
        this.#value = readInteger(buffer, at + 1, lineEnd)
        return next
      case 0x5f: // _ null (RESP3)
        this.#value = null
        return next
      case 0x23: // # boolean
        this.#value = buffer[at + 1] === 0x74 /* t */
        return next
      case 0x2c: // , double
        this.#value = Number(buffer.toString('latin1', at + 1, lineEnd).replace(/^(-?)inf$/, '$1Infinity'))
        return next
      case 0x28: // ( big number
        this.#value = BigInt(buffer.toString('latin1', at + 1, lineEnd))
        return next
      case 0x24: // $ bulk string
      case 0x21: // ! bulk error
      case 0x3d: {
        // = verbatim string
        const length = readInteger(buffer, at + 1, lineEnd)
        if (length < 0) {
          this.#value = null
          return next
        }
        const end = next + length
        if (end + 2 > buffer.length) {
          this.#wantEnd = end + 2
          return INCOMPLETE
        }
        if (buffer[end] !== CR || buffer[end + 1] !== LF) throw new RespProtocolError('bulk string without CRLF after it')
        if (type === 0x24) this.#value = Buffer.from(buffer.subarray(next, end))
        else if (type === 0x21) this.#value = new RespError(buffer.toString('utf8', next, end))
        else this.#value = buffer.toString('utf8', next + 4, end) // "txt:" before the text
        return end + 2
      }
      case 0x2a: // * array
      case 0x3e: // > push
      case 0x7e: // ~ set
      case 0x25: // % map: key, value, …
      case 0x7c: {
        // | attribute: a map before the actual reply, which is all we keep
        const count = readInteger(buffer, at + 1, lineEnd)
        if (count < 0) {
          this.#value = null
          return next
        }
        const elements = type === 0x25 || type === 0x7c ? 2 * count : count
        if (elements > MAX_ELEMENTS) throw new RespProtocolError(`reply of ${elements} elements`)
        const list: RespValue[] = []
        let end = next
        for (let i = 0; i < elements; i++) {
          end = this.#parse(buffer, end, depth + 1)
          if (end === INCOMPLETE) return INCOMPLETE
          list.push(this.#value)
        }
        if (type === 0x7c) return this.#parse(buffer, end, depth)
        this.#value = list
        return end
      }
      default:
        throw new RespProtocolError(`unknown reply type 0x${type.toString(16)}`)
    }
  }
}

/** The CR of the first CRLF from `at`, or INCOMPLETE. Lines here are short: a loop beats indexOf's call. */
function findLineEnd(buffer: Buffer, at: number): number {
  for (let i = at; i + 1 < buffer.length; i++) {
    if (buffer[i] === CR) {
      if (buffer[i + 1] !== LF) throw new RespProtocolError('CR without LF')
      return i
    }
  }
  return INCOMPLETE
}

function readInteger(buffer: Buffer, start: number, end: number): number {
  let i = start
  const negative = buffer[i] === 0x2d
  if (negative) i++
  if (i === end) throw new RespProtocolError('empty number')
  let n = 0
  for (; i < end; i++) {
    const digit = buffer[i]! - 0x30
    if (digit < 0 || digit > 9) throw new RespProtocolError('bad number')
    n = n * 10 + digit
  }
  return negative ? -n : n
}

/** The end of a bulk string ("$len\r\n…\r\n") at `at`; INCOMPLETE; or 0 if `at` holds something else. */
function bulkAt(buffer: Buffer, at: number): number {
  if (at >= buffer.length) return INCOMPLETE
  if (buffer[at] !== 0x24) return 0
  const lineEnd = findLineEnd(buffer, at + 1)
  if (lineEnd === INCOMPLETE) return INCOMPLETE
  const length = readInteger(buffer, at + 1, lineEnd)
  if (length < 0) return 0
  const end = lineEnd + 2 + length
  if (end + 2 > buffer.length) return INCOMPLETE
  if (buffer[end] !== CR || buffer[end + 1] !== LF) throw new RespProtocolError('bulk string without CRLF after it')
  return end + 2
}

/** Where the bytes of the (complete) bulk string at `at` begin. */
function bulkStart(buffer: Buffer, at: number): number {
  let i = at + 1
  while (buffer[i] !== CR) i++
  return i + 2
}

const BASE64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')
const MIN_BATCH_BYTES = 16 * 1024

/**
 * Commands encoded into one buffer until flushed (once per tick by the connection): one socket write for
 * everything a tick publishes, and no object per command. Pieces are copied in (an envelope is a few
 * hundred bytes: a copy costs less than a write request per piece).
 */
export class RespWriter {
  #buffer = Buffer.allocUnsafe(MIN_BATCH_BYTES)
  #used = 0

  get length(): number {
    return this.#used
  }

  /** Makes room for `bytes` more. */
  reserve(bytes: number): this {
    if (this.#used + bytes > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.#buffer.length, this.#used + bytes))
      this.#buffer.copy(grown, 0, 0, this.#used)
      this.#buffer = grown
    }
    return this
  }

  /** Bytes already reserved for. */
  bytes(source: Uint8Array, start = 0, end = source.length): this {
    this.#buffer.set(start === 0 && end === source.length ? source : source.subarray(start, end), this.#used)
    this.#used += end - start
    return this
  }

  /** ASCII text (command names, numbers as text); reserved for. */
  ascii(text: string): this {
    this.#used += this.#buffer.write(text, this.#used, 'latin1')
    return this
  }

  /** A non-negative integer as decimal digits, without a string; reserved for (at most 16 bytes). */
  decimal(value: number): this {
    let digits = 1
    for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++
    let at = this.#used + digits
    this.#used = at
    let v = value
    do {
      this.#buffer[--at] = 0x30 + (v % 10)
      v = Math.floor(v / 10)
    } while (v > 0)
    return this
  }

  uint32(value: number): this {
    this.#buffer.writeUInt32BE(value, this.#used)
    this.#used += 4
    return this
  }

  /** Base64 of `source` (what Buffer#toString('base64') gives), without the string; reserved for. */
  base64(source: Uint8Array): this {
    this.#used = base64Into(source, this.#buffer, this.#used)
    return this
  }

  /** CR LF; reserved for. */
  crlf(): this {
    this.#buffer[this.#used++] = CR
    this.#buffer[this.#used++] = LF
    return this
  }

  /** One byte (a type marker such as "$"); reserved for. */
  byte(value: number): this {
    this.#buffer[this.#used++] = value
    return this
  }

  /** A whole command of string/Buffer arguments (the rare ones: AUTH, SUBSCRIBE, CLUSTER SLOTS). */
  command(args: readonly (string | Uint8Array)[]): this {
    const pieces = args.map((a) => (typeof a === 'string' ? Buffer.from(a) : a))
    this.reserve(16 + pieces.reduce((n, p) => n + p.length + 20, 0))
    this.ascii('*').decimal(pieces.length).ascii('\r\n')
    for (const piece of pieces) this.ascii('$').decimal(piece.length).ascii('\r\n').bytes(piece).ascii('\r\n')
    return this
  }

  /** What was encoded since the last take(), as one Buffer the caller owns; the writer starts afresh. */
  take(): Buffer {
    const out = this.#buffer.subarray(0, this.#used)
    const next = Math.max(MIN_BATCH_BYTES, Math.min(this.#buffer.length, 2 * this.#used))
    this.#buffer = Buffer.allocUnsafe(next)
    this.#used = 0
    return out
  }
}

/** Writes base64 of `source` into `target` at `at` (no string in between); returns the end. */
export function base64Into(source: Uint8Array, target: Uint8Array, at: number): number {
  let i = 0
  for (; i + 2 < source.length; i += 3) {
    const n = (source[i]! << 16) | (source[i + 1]! << 8) | source[i + 2]!
    target[at++] = BASE64[n >> 18]!
    target[at++] = BASE64[(n >> 12) & 63]!
    target[at++] = BASE64[(n >> 6) & 63]!
    target[at++] = BASE64[n & 63]!
  }
  const left = source.length - i
  if (left > 0) {
    const n = (source[i]! << 16) | (left === 2 ? source[i + 1]! << 8 : 0)
    target[at++] = BASE64[n >> 18]!
    target[at++] = BASE64[(n >> 12) & 63]!
    target[at++] = left === 2 ? BASE64[(n >> 6) & 63]! : 0x3d
    target[at++] = 0x3d
  }
  return at
}

/** Base64 length of `bytes` bytes. */
export function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3)
}
