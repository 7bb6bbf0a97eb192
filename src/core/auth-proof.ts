// The subscribe proof of `signal --require-auth` (beyond cunīcu; README "Authenticated subscriptions"):
// a client shows it holds the private key of the key it subscribes to, without changing any message of
// the service. It sends gRPC metadata `cunicu-auth` = base64(nonce(24) || crypto_box(timestamp || key)),
// sealed from the subscribed key to the server's own Curve25519 key. Only the key's owner can seal a box
// that opens with (server private, subscribed key); the timestamp bounds how long a captured proof is
// worth anything, and the server remembers nonces so that it is worth nothing a second time.
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js'
import { randomBytes } from '@noble/ciphers/utils.js'
import { NONCE_LENGTH, TAG_LENGTH } from './envelope.js'
import { KEY_LENGTH, PublicKey, type PrivateKey } from './keys.js'
import { boxSharedKey } from './shared-key-cache.js'

/** gRPC metadata key of the proof; a lower-case ASCII key, so the value is text (base64). */
export const AUTH_METADATA_KEY = 'cunicu-auth'
/** GetBuildInfo's `tag` of a server that demands proofs: "auth-key:" + its public key in base64. */
export const AUTH_KEY_TAG_PREFIX = 'auth-key:'

const TIMESTAMP_LENGTH = 8
const PLAINTEXT_LENGTH = TIMESTAMP_LENGTH + KEY_LENGTH
export const PROOF_LENGTH = NONCE_LENGTH + TAG_LENGTH + PLAINTEXT_LENGTH

export type AuthProofErrorReason = 'missing' | 'malformed' | 'bad-key' | 'not-owner' | 'key-mismatch'

export class AuthProofError extends Error {
  override name = 'AuthProofError'
  constructor(
    readonly reason: AuthProofErrorReason,
    message: string,
  ) {
    super(message)
  }
}

export interface OpenedProof {
  /** Unix milliseconds the client sealed into the proof. */
  timestampMs: number
  nonce: Uint8Array
}

/** The metadata value proving that we hold `ours` (the key we subscribe to), for the server key `server`. */
export function sealSubscribeProof(ours: PrivateKey, server: PublicKey, nowMs = Date.now(), nonce = randomBytes(NONCE_LENGTH)): string {
  const plain = new Uint8Array(PLAINTEXT_LENGTH)
  new DataView(plain.buffer).setBigUint64(0, BigInt(Math.trunc(nowMs)), false)
  plain.set(ours.publicKey.bytes, TIMESTAMP_LENGTH)
  const sealed = xsalsa20poly1305(boxSharedKey(ours, server), nonce).encrypt(plain)
  return Buffer.concat([nonce, sealed]).toString('base64')
}

/**
 * Opens a proof for a subscription to `subscribed` (32 bytes, checked by the caller). Proves ownership
 * only; whether the timestamp is fresh and the nonce new is the caller's policy.
 */
export function openSubscribeProof(value: string | undefined, subscribed: Uint8Array, server: PrivateKey): OpenedProof {
  if (value === undefined || value === '') {
    throw new AuthProofError('missing', `no ${AUTH_METADATA_KEY} metadata: this server requires proof that you hold the subscribed key (see GetBuildInfo tag ${AUTH_KEY_TAG_PREFIX}…)`)
  }
  const bytes = Buffer.from(value, 'base64')
  if (bytes.length !== PROOF_LENGTH || bytes.toString('base64') !== value.trim()) {
    throw new AuthProofError('malformed', `${AUTH_METADATA_KEY} metadata is not base64 of ${PROOF_LENGTH} bytes (nonce, box of timestamp and key)`)
  }
  let key: Uint8Array
  try {
    key = boxSharedKey(server, new PublicKey(subscribed))
  } catch {
    throw new AuthProofError('bad-key', 'the subscribed key is not a usable Curve25519 public key, so no proof for it can exist')
  }
  const nonce = bytes.subarray(0, NONCE_LENGTH)
  let plain: Uint8Array
  try {
    plain = xsalsa20poly1305(key, nonce).decrypt(bytes.subarray(NONCE_LENGTH))
  } catch {
    throw new AuthProofError('not-owner', `${AUTH_METADATA_KEY} proof was not sealed by the subscribed key to this server's key (not its owner, or an old server key)`)
  }
  if (!Buffer.from(plain.subarray(TIMESTAMP_LENGTH)).equals(Buffer.from(subscribed))) {
    throw new AuthProofError('key-mismatch', `${AUTH_METADATA_KEY} proof names another key than the one subscribed to`)
  }
  const timestampMs = Number(new DataView(plain.buffer, plain.byteOffset).getBigUint64(0, false))
  return { timestampMs, nonce: Uint8Array.from(nonce) }
}

/** The server key announced in GetBuildInfo's tag, if it demands proofs. */
export function authKeyFromTag(tag: string): PublicKey | undefined {
  if (!tag.startsWith(AUTH_KEY_TAG_PREFIX)) return undefined
  try {
    return PublicKey.parse(tag.slice(AUTH_KEY_TAG_PREFIX.length), 'server auth key')
  } catch {
    return undefined
  }
}
