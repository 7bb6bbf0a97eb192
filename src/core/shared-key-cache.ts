// crypto_box_beforenm keys, computed once per (our private, their public) pair and kept in a bounded LRU:
// the X25519 multiplication is ~20× the cost of sealing a small message (node:crypto's, see x25519.ts).
import { hsalsa } from '@noble/ciphers/salsa.js'
import type { PrivateKey, PublicKey } from './keys.js'
import { x25519SharedSecret, type X25519 } from './x25519.js'

const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]) // "expand 32-byte k"

function littleEndianWords(bytes: Uint8Array): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Uint32Array.from({ length: bytes.length / 4 }, (_, i) => view.getUint32(4 * i, true))
}

/** NaCl crypto_box_beforenm: HSalsa20(X25519(ours, theirs), 16 zero bytes). Throws on low-order public keys. */
export function boxSharedKey(ours: PrivateKey, theirs: PublicKey, x25519: X25519 = x25519SharedSecret): Uint8Array {
  const words = new Uint32Array(8)
  hsalsa(SIGMA, littleEndianWords(x25519(ours.secretBytes, theirs.bytes)), new Uint32Array(4), words)
  const key = new Uint8Array(32)
  const view = new DataView(key.buffer)
  words.forEach((w, i) => view.setUint32(4 * i, w, true))
  return key
}

export class SharedKeyCache {
  readonly #keys = new Map<string, Uint8Array>()

  constructor(readonly capacity = 4096) {}

  get size(): number {
    return this.#keys.size
  }

  get(ours: PrivateKey, theirs: PublicKey): Uint8Array {
    const id = ours.publicKey.toString() + theirs.toString()
    const hit = this.#keys.get(id)
    if (hit) {
      // Map keeps insertion order: re-inserting marks the entry most recently used.
      this.#keys.delete(id)
      this.#keys.set(id, hit)
      return hit
    }
    const key = boxSharedKey(ours, theirs)
    this.#keys.set(id, key)
    if (this.#keys.size > this.capacity) this.#keys.delete(this.#keys.keys().next().value!)
    return key
  }
}

/** The process-wide cache used unless a caller brings its own. */
export const defaultSharedKeyCache = new SharedKeyCache()
