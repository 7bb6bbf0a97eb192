// X25519 keys in WireGuard's text form (WIRE.md §1) and the ICE role rule (WIRE.md §2).
import { generatePrivateKeyBytes } from './key-generation.js'
import { x25519PublicKey } from './x25519.js'

export const KEY_LENGTH = 32

export class KeyError extends Error {
  override name = 'KeyError'
}

/** A Curve25519 public key: 32 bytes, shown as standard base64 like `wg pubkey`. */
export class PublicKey {
  readonly bytes: Uint8Array

  constructor(bytes: Uint8Array) {
    if (bytes.length !== KEY_LENGTH) throw new KeyError(`a key must be ${KEY_LENGTH} bytes, got ${bytes.length}`)
    this.bytes = Uint8Array.from(bytes)
  }

  /** Parses base64 text; `what` names the input in the error ("--from", "line 3"). */
  static parse(text: string, what = 'public key'): PublicKey {
    return new PublicKey(decodeKey(text, what, true))
  }

  static readonly ANY = new PublicKey(new Uint8Array(KEY_LENGTH))

  /** cunīcu's zero key: a subscription for messages from any sender. */
  get isAny(): boolean {
    return this.bytes.every((b) => b === 0)
  }

  equals(other: PublicKey | Uint8Array): boolean {
    const bytes = other instanceof PublicKey ? other.bytes : other
    return compareKeyBytes(this.bytes, bytes) === 0
  }

  toString(): string {
    return Buffer.from(this.bytes).toString('base64')
  }

  toJSON(): string {
    return this.toString()
  }

  /** First 8 base64 characters: enough to tell peers apart on a screen. */
  get short(): string {
    return this.toString().slice(0, 8)
  }
}

/**
 * A Curve25519 private key. Its text form never appears by accident: toString, toJSON and
 * util.inspect are redacted, and only `toBase64()` reveals it, so a log line or event cannot leak it.
 */
export class PrivateKey {
  readonly #bytes: Uint8Array
  readonly publicKey: PublicKey

  constructor(bytes: Uint8Array) {
    if (bytes.length !== KEY_LENGTH) throw new KeyError(`a key must be ${KEY_LENGTH} bytes, got ${bytes.length}`)
    this.#bytes = Uint8Array.from(bytes)
    this.publicKey = new PublicKey(x25519PublicKey(this.#bytes))
  }

  /** A fresh key, clamped like `wg genkey`. */
  static generate(): PrivateKey {
    return new PrivateKey(generatePrivateKeyBytes())
  }

  /** Parses base64 text. The error names `what` but never echoes the secret text. */
  static parse(text: string, what = 'private key'): PrivateKey {
    return new PrivateKey(decodeKey(text, what, false))
  }

  /** The raw secret, for the crypto primitives only. */
  get secretBytes(): Uint8Array {
    return this.#bytes
  }

  toBase64(): string {
    return Buffer.from(this.#bytes).toString('base64')
  }

  toString(): string {
    return `PrivateKey(public=${this.publicKey.toString()})`
  }

  toJSON(): string {
    return this.toString()
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString()
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

function decodeKey(text: string, what: string, echo: boolean): Uint8Array {
  const trimmed = text.trim()
  const shown = echo ? ` "${trimmed.length > 60 ? trimmed.slice(0, 60) + '…' : trimmed}"` : ''
  if (trimmed === '') throw new KeyError(`${what} is empty: expected 44 characters of base64 (like \`wg genkey\` prints)`)
  if (!BASE64.test(trimmed) || trimmed.length % 4 !== 0) {
    throw new KeyError(`${what}${shown} is not valid base64: expected 44 characters like \`wg genkey\` prints`)
  }
  const bytes = Buffer.from(trimmed, 'base64')
  if (bytes.length !== KEY_LENGTH) {
    throw new KeyError(`${what}${shown} decodes to ${bytes.length} bytes, but a key is ${KEY_LENGTH} bytes`)
  }
  return new Uint8Array(bytes)
}

/** Unsigned big-endian comparison of two keys' raw bytes: negative when a < b. */
export function compareKeyBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!
  }
  return a.length - b.length
}

export type IceRole = 'controlling' | 'controlled'

/** The peer with the smaller public key controls (WIRE.md §2); equal keys are a peer talking to itself. */
export function iceRole(ours: PublicKey, theirs: PublicKey): IceRole {
  const order = compareKeyBytes(ours.bytes, theirs.bytes)
  if (order === 0) throw new KeyError(`our public key and the peer's are the same (${ours}): a peer cannot open a session with itself`)
  return order < 0 ? 'controlling' : 'controlled'
}
