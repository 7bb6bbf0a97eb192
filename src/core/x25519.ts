// X25519 (RFC 7748) shared secrets. Through node:crypto (OpenSSL) where the runtime has it: ~14× faster
// than @noble/curves, which matters wherever a peer can make us compute one (an uncached envelope, every
// `--require-auth` proof). @noble/curves stays as the portable path (runtimes without node:crypto X25519)
// and as the reference the tests compare against: both give the same bytes (test/x25519.test.ts).
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'

/**
 * @noble/curves, loaded on first use: only runtimes without node:crypto X25519 (and the tests' cross-checks)
 * need it, and evaluating it costs every start ~5 ms. Synchronous because X25519 is (require of an ES
 * module works from Node 20.19, this package's minimum).
 */
function noble(): typeof import('@noble/curves/ed25519.js').x25519 {
  return (createRequire(import.meta.url)('@noble/curves/ed25519.js') as typeof import('@noble/curves/ed25519.js')).x25519
}

export type X25519 = (privateKey: Uint8Array, publicKey: Uint8Array) => Uint8Array

// The DER prefix of an X25519 PKCS#8 private key (RFC 8410): prefix || 32 raw bytes. Public keys go in as
// JWK instead: OpenSSL's DER decoder costs ~60 µs per key on this machine, twice the X25519 itself, the
// JWK import ~5 µs.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

/**
 * Private KeyObjects by the very Uint8Array holding the key (PrivateKey.secretBytes is one array for the
 * key's lifetime): a server or peer computes every shared secret with one private key. A WeakMap, so the
 * entry goes with the key; the bytes are compared on every use, so an array reused for another key
 * cannot get the old key's object.
 */
const privateObjects = new WeakMap<Uint8Array, { bytes: Buffer; key: KeyObject }>()

function privateObject(bytes: Uint8Array): KeyObject {
  const cached = privateObjects.get(bytes)
  if (cached && cached.bytes.equals(bytes)) return cached.key
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, bytes]), format: 'der', type: 'pkcs8' })
  privateObjects.set(bytes, { bytes: Buffer.from(bytes), key })
  return key
}

export class X25519Error extends Error {
  override name = 'X25519Error'
}

/** X25519 through node:crypto. Throws X25519Error for low-order public keys (an all-zero secret), like noble. */
export const nodeX25519: X25519 = (privateKey, publicKey) => {
  if (privateKey.length !== 32 || publicKey.length !== 32) throw new X25519Error('X25519 keys are 32 bytes')
  try {
    const theirs = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' })
    return new Uint8Array(diffieHellman({ privateKey: privateObject(privateKey), publicKey: theirs }))
  } catch (err) {
    throw new X25519Error(`invalid private or public key received: ${(err as Error).message}`)
  }
}

/** X25519 through @noble/curves (pure JS): the portable path. */
export const nobleX25519: X25519 = (privateKey, publicKey) => {
  try {
    return noble().getSharedSecret(privateKey, publicKey)
  } catch (err) {
    throw new X25519Error((err as Error).message)
  }
}

// RFC 7748 §6.1: Alice's private key, Bob's public key and their shared secret. The runtime check below uses
// these constants, not @noble/curves, because a pure-JS scalar multiplication at import costs ~10 ms of every
// command's start-up (issue 10).
const RFC7748_ALICE_PRIVATE = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex')
const RFC7748_BOB_PUBLIC = Buffer.from('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f', 'hex')
const RFC7748_SHARED = Buffer.from('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742', 'hex')

/** Whether this runtime's node:crypto does X25519 (checked once, on RFC 7748's vector). */
function nodeHasX25519(): boolean {
  try {
    return Buffer.from(nodeX25519(RFC7748_ALICE_PRIVATE, RFC7748_BOB_PUBLIC)).equals(RFC7748_SHARED)
  } catch {
    return false
  }
}

/** The implementation this process uses. */
export const x25519SharedSecret: X25519 = nodeHasX25519() ? nodeX25519 : nobleX25519

export const x25519Implementation: 'node:crypto' | '@noble/curves' = x25519SharedSecret === nodeX25519 ? 'node:crypto' : '@noble/curves'

/** The public key of a private key (X25519 with the base point), through the same implementation. */
export const x25519PublicKey: (privateKey: Uint8Array) => Uint8Array =
  x25519SharedSecret === nodeX25519
    ? (privateKey) => {
        const jwk = createPublicKey(privateObject(privateKey)).export({ format: 'jwk' })
        return new Uint8Array(Buffer.from(jwk.x!, 'base64url'))
      }
    : (privateKey) => noble().getPublicKey(privateKey)
