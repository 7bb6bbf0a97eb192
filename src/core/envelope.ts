// Message <-> Envelope: protobuf, then NaCl crypto_box to the recipient (WIRE.md §4).
import { randomFillSync } from 'node:crypto'
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js'
import { Envelope, Message } from '../gen/signaling/signaling.js'
import { KEY_LENGTH, PublicKey, type PrivateKey } from './keys.js'
import { defaultSharedKeyCache, type SharedKeyCache } from './shared-key-cache.js'

export const NONCE_LENGTH = 24
export const TAG_LENGTH = 16

export type EnvelopeErrorReason =
  | 'malformed' // sender/recipient not 32 bytes, no contents
  | 'wrong-recipient'
  | 'bad-nonce'
  | 'truncated'
  | 'bad-key' // low-order public key: no shared secret
  | 'authentication-failed' // tampered, forged sender or sealed for another key
  | 'bad-message' // opened, but the plaintext is not a Message

export class EnvelopeError extends Error {
  override name = 'EnvelopeError'
  constructor(
    readonly reason: EnvelopeErrorReason,
    message: string,
  ) {
    super(message)
  }
}

export interface SealOptions {
  /** Only for test vectors: a nonce must never be reused with the same key pair. */
  nonce?: Uint8Array
  cache?: SharedKeyCache
}

// Nonces come from a pooled CSPRNG buffer: one randomFillSync per 256 nonces. One getRandomValues call
// per envelope was half the cost of seal+open (BENCHMARKS.md, crypto row). Each byte is handed out once,
// as a copy, and a used-up pool is replaced, never refilled in place.
const NONCE_POOL_BYTES = 256 * NONCE_LENGTH
let noncePool = new Uint8Array(0)
let noncePoolOffset = 0

/** A fresh random 24-byte nonce. */
export function randomNonce(): Uint8Array {
  if (noncePoolOffset + NONCE_LENGTH > noncePool.length) {
    noncePool = randomFillSync(new Uint8Array(NONCE_POOL_BYTES))
    noncePoolOffset = 0
  }
  const nonce = noncePool.slice(noncePoolOffset, noncePoolOffset + NONCE_LENGTH)
  noncePoolOffset += NONCE_LENGTH
  return nonce
}

export function sealMessage(message: Message, ours: PrivateKey, theirs: PublicKey, options: SealOptions = {}): Envelope {
  const nonce = options.nonce ?? randomNonce()
  const key = (options.cache ?? defaultSharedKeyCache).get(ours, theirs)
  const body = xsalsa20poly1305(key, nonce).encrypt(Message.encode(message).finish())
  return { sender: ours.publicKey.bytes, recipient: theirs.bytes, contents: { body, nonce } }
}

/** The sender's key, checked for shape only: the box tag proves who sent it, once opened. */
export function envelopeSender(envelope: Envelope): PublicKey {
  if (envelope.sender.length !== KEY_LENGTH) {
    throw new EnvelopeError('malformed', `envelope sender is ${envelope.sender.length} bytes, not ${KEY_LENGTH}`)
  }
  return new PublicKey(envelope.sender)
}

/** Opens an envelope addressed to us; every failure is an EnvelopeError for this envelope alone. */
export function openEnvelope(envelope: Envelope, ours: PrivateKey, cache: SharedKeyCache = defaultSharedKeyCache): Message {
  const sender = envelopeSender(envelope)
  if (!ours.publicKey.equals(envelope.recipient)) {
    throw new EnvelopeError('wrong-recipient', `envelope is addressed to ${describeKeyBytes(envelope.recipient)}, not to us (${ours.publicKey})`)
  }
  const { contents } = envelope
  if (!contents) throw new EnvelopeError('malformed', `envelope from ${sender} has no contents`)
  if (contents.nonce.length !== NONCE_LENGTH) {
    throw new EnvelopeError('bad-nonce', `envelope from ${sender} has a ${contents.nonce.length}-byte nonce, not ${NONCE_LENGTH}`)
  }
  if (contents.body.length < TAG_LENGTH) {
    throw new EnvelopeError('truncated', `envelope from ${sender} has a ${contents.body.length}-byte body, shorter than the ${TAG_LENGTH}-byte tag`)
  }
  let key: Uint8Array
  try {
    key = cache.get(ours, sender)
  } catch {
    throw new EnvelopeError('bad-key', `envelope sender ${sender} is not a usable Curve25519 public key`)
  }
  let plain: Uint8Array
  try {
    plain = xsalsa20poly1305(key, contents.nonce).decrypt(contents.body)
  } catch {
    throw new EnvelopeError('authentication-failed', `envelope from ${sender} failed authentication (tampered, forged sender, or sealed for another key)`)
  }
  try {
    return Message.decode(plain)
  } catch (err) {
    throw new EnvelopeError('bad-message', `envelope from ${sender} opened but holds no valid Message: ${(err as Error).message}`)
  }
}

function describeKeyBytes(bytes: Uint8Array): string {
  return bytes.length === KEY_LENGTH ? new PublicKey(bytes).toString() : `a ${bytes.length}-byte key`
}

/** The empty envelope a server sends first on every subscription (WIRE.md §5). */
export function isSyncEnvelope(envelope: Envelope): boolean {
  return envelope.sender.length === 0 && envelope.recipient.length === 0 && envelope.contents === undefined
}
