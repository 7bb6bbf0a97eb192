// The relay's view of an Envelope: where the recipient key sits in the bytes, found without decoding the
// message into objects (the relay forwards the bytes as they came). Only the shape every client sends is
// read here: sender (1), recipient (2), contents (3) holding body (1) and nonce (2), each a length-delimited
// field. Anything else (unknown fields, groups, odd varints) goes to the generated decoder, so the verdict
// on what is a valid Envelope is always the generated code's (test/server-fuzz.test.ts holds them equal).
import { Envelope } from '../../gen/signaling/signaling.js'
import { KEY_LENGTH } from '../keys.js'

/**
 * A number: the recipient key is bytes [n, n + KEY_LENGTH) of the buffer; a string: why the bytes are not a
 * valid Envelope. (Not an object: this runs once per relayed envelope and should allocate nothing.)
 */
export type EnvelopeScan = number | string

const UNUSUAL = -1

/** Scans the Envelope in `bytes[start, end)`; keys of the wrong length are invalid as in WIRE.md §5. */
export function scanEnvelope(bytes: Buffer, start: number, end: number): EnvelopeScan {
  const fast = scanFast(bytes, start, end)
  return fast >= 0 ? fast : scanSlow(bytes, start, end)
}

/** The recipient's offset in a plain, valid envelope, or UNUSUAL (anything else: the decoder decides). */
function scanFast(bytes: Buffer, start: number, end: number): number {
  let at = start
  let recipientAt = UNUSUAL
  let recipientLength = 0
  let senderLength = 0
  while (at < end) {
    const tag = bytes[at++]!
    if (tag !== 10 && tag !== 18 && tag !== 26) return UNUSUAL
    // Lengths up to 2^21 - 1 in at most 3 varint bytes; longer ones (never under the size limit) are unusual.
    let length = bytes[at++]!
    if (length & 0x80) {
      const b1 = bytes[at++]!
      length = (length & 0x7f) | ((b1 & 0x7f) << 7)
      if (b1 & 0x80) {
        const b2 = bytes[at++]!
        if (b2 & 0x80) return UNUSUAL
        length |= b2 << 14
      }
    }
    const fieldEnd = at + length
    if (at > end || fieldEnd > end) return UNUSUAL
    if (tag === 10) senderLength = length
    else if (tag === 18) {
      recipientAt = at
      recipientLength = length
    } else if (!encryptedMessageIsPlain(bytes, at, fieldEnd)) return UNUSUAL
    at = fieldEnd
  }
  return senderLength === KEY_LENGTH && recipientLength === KEY_LENGTH ? recipientAt : UNUSUAL
}

/** EncryptedMessage made of body (1) and nonce (2) only, every length within bounds. */
function encryptedMessageIsPlain(bytes: Buffer, start: number, end: number): boolean {
  let at = start
  while (at < end) {
    const tag = bytes[at++]!
    if (tag !== 10 && tag !== 18) return false
    let length = bytes[at++]!
    if (length & 0x80) {
      const b1 = bytes[at++]!
      if (b1 & 0x80) return false
      length = (length & 0x7f) | (b1 << 7)
    }
    at += length
    if (at > end) return false
  }
  return true
}

function scanSlow(bytes: Buffer, start: number, end: number): EnvelopeScan {
  let envelope: Envelope
  try {
    envelope = Envelope.decode(bytes.subarray(start, end))
  } catch (err) {
    return `publish request is not a valid Envelope message: ${(err as Error).message}`
  }
  for (const [field, key] of [['sender', envelope.sender], ['recipient', envelope.recipient]] as const) {
    if (key.length !== KEY_LENGTH) return `envelope ${field} is ${key.length} bytes, but a public key is ${KEY_LENGTH} bytes`
  }
  // Where the decoder's recipient (the last one on the wire) sits: its bytes are a view of `bytes`.
  return envelope.recipient.byteOffset - bytes.byteOffset
}
