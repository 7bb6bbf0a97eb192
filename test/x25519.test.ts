// X25519 through node:crypto and through @noble/curves must be byte-identical: the server and the
// envelopes use node:crypto where the runtime has it, noble elsewhere, and peers of either kind interoperate.
import { describe, expect, it } from 'vitest'
import { x25519 } from '@noble/curves/ed25519.js'
import { boxSharedKey } from '../src/core/shared-key-cache.js'
import { PrivateKey, PublicKey } from '../src/core/keys.js'
import { nobleX25519, nodeX25519, x25519Implementation, x25519PublicKey, x25519SharedSecret, X25519Error } from '../src/core/x25519.js'
import { b64, boxVectors, keyPairs, toB64 } from './helpers/vectors.js'

const BASEPOINT = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 9 : 0))
const LOW_ORDER = [new Uint8Array(32), Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0)), b64('4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=')]

describe('X25519: node:crypto and @noble/curves give the same bytes', () => {
  it('this runtime uses node:crypto', () => {
    expect(x25519Implementation).toBe('node:crypto')
    expect(x25519SharedSecret).toBe(nodeX25519)
  })

  it('keys.json: X25519(private, basepoint) is the public key with both, including the unclamped keys', () => {
    for (const pair of keyPairs) {
      expect(toB64(nodeX25519(b64(pair.private), BASEPOINT))).toBe(pair.public)
      expect(toB64(nobleX25519(b64(pair.private), BASEPOINT))).toBe(pair.public)
    }
  })

  it('box.json: both sides of every vector derive one shared secret, identical with both implementations', () => {
    for (const v of boxVectors) {
      const fromSender = nodeX25519(b64(v.senderPrivate), b64(v.recipientPublic))
      const fromRecipient = nodeX25519(b64(v.recipientPrivate), b64(v.senderPublic))
      expect(toB64(fromSender), v.name).toBe(toB64(fromRecipient))
      expect(toB64(fromSender), v.name).toBe(toB64(nobleX25519(b64(v.senderPrivate), b64(v.recipientPublic))))
      const sender = PrivateKey.parse(v.senderPrivate)
      const recipient = PublicKey.parse(v.recipientPublic)
      expect(toB64(boxSharedKey(sender, recipient, nodeX25519))).toBe(toB64(boxSharedKey(sender, recipient, nobleX25519)))
    }
  })

  it('x25519PublicKey (what PrivateKey uses) gives keys.json\'s public keys and noble\'s for random keys', () => {
    for (const pair of keyPairs) {
      expect(toB64(x25519PublicKey(b64(pair.private)))).toBe(pair.public)
      expect(PrivateKey.parse(pair.private).publicKey.toString()).toBe(pair.public)
    }
    for (let i = 0; i < 100; i++) {
      const secret = x25519.utils.randomSecretKey()
      expect(toB64(x25519PublicKey(secret))).toBe(toB64(x25519.getPublicKey(secret)))
    }
  })

  it('random pairs agree (200 pairs)', () => {
    for (let i = 0; i < 200; i++) {
      const a = x25519.utils.randomSecretKey()
      const b = x25519.getPublicKey(x25519.utils.randomSecretKey())
      expect(toB64(nodeX25519(a, b))).toBe(toB64(nobleX25519(a, b)))
    }
  })

  it('both refuse low-order public keys (an all-zero shared secret)', () => {
    const ours = PrivateKey.generate().secretBytes
    for (const bad of LOW_ORDER) {
      expect(() => nodeX25519(ours, bad)).toThrow(X25519Error)
      expect(() => nobleX25519(ours, bad)).toThrow(X25519Error)
    }
  })
})

describe('node:crypto X25519 private key objects', () => {
  it('an array reused for another private key gives that key’s secret, not a cached one', () => {
    const reused = x25519.utils.randomSecretKey()
    const peer = x25519.getPublicKey(x25519.utils.randomSecretKey())
    const first = toB64(nodeX25519(reused, peer))
    reused.set(x25519.utils.randomSecretKey())
    expect(toB64(nodeX25519(reused, peer))).toBe(toB64(nobleX25519(reused, peer)))
    expect(toB64(nodeX25519(reused, peer))).not.toBe(first)
  })
})
