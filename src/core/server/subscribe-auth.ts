// `signal --require-auth`: a Subscribe must carry a proof (src/core/auth-proof.ts) that the caller holds
// the private key of the subscribed key, fresh (within the allowed clock skew) and never seen before.
// Everything refused here is PERMISSION_DENIED except a full replay cache, which is the server's
// capacity, not the caller's fault (RESOURCE_EXHAUSTED).
import { status } from '@grpc/grpc-js'
import { AUTH_KEY_TAG_PREFIX, AuthProofError, openSubscribeProof } from '../auth-proof.js'
import type { PrivateKey, PublicKey } from '../keys.js'
import { ReplayGuard, type WallClock } from './replay-guard.js'

export const DEFAULT_AUTH_SKEW_MS = 30_000

export interface SubscribeAuthOptions {
  /** The server's own key; clients seal their proofs to its public half. */
  serverKey: PrivateKey
  /** How far a proof's timestamp may be from the server's clock, either way. */
  maxSkewMs?: number
  /** Fresh proofs remembered at once (replay protection); beyond it new proofs are refused. */
  replayCapacity?: number
  now?: WallClock
}

export interface AuthRefusal {
  code: status
  details: string
}

export class SubscribeAuthenticator {
  readonly #serverKey: PrivateKey
  readonly #replays: ReplayGuard

  constructor(options: SubscribeAuthOptions) {
    this.#serverKey = options.serverKey
    const skew = options.maxSkewMs ?? DEFAULT_AUTH_SKEW_MS
    if (!Number.isSafeInteger(skew) || skew < 1) throw new RangeError(`auth skew must be a positive number of milliseconds, got ${skew}`)
    this.#replays = new ReplayGuard(skew, options.replayCapacity, options.now)
  }

  get publicKey(): PublicKey {
    return this.#serverKey.publicKey
  }

  /** What GetBuildInfo announces in `tag`, so clients find the key to seal to. */
  get buildInfoTag(): string {
    return AUTH_KEY_TAG_PREFIX + this.publicKey.toString()
  }

  /** Nonces remembered now. */
  get rememberedProofs(): number {
    return this.#replays.size
  }

  /** Checks the proof for a subscription to `subscribed` (already checked to be 32 bytes). */
  check(proof: string | undefined, subscribed: Uint8Array): AuthRefusal | undefined {
    let opened
    try {
      opened = openSubscribeProof(proof, subscribed, this.#serverKey)
    } catch (err) {
      if (!(err instanceof AuthProofError)) throw err
      return { code: status.PERMISSION_DENIED, details: `subscribe refused: ${err.message}` }
    }
    const skewS = this.#replays.maxSkewMs / 1000
    switch (this.#replays.admit(opened.timestampMs, opened.nonce)) {
      case 'fresh':
        return undefined
      case 'too-old':
        return { code: status.PERMISSION_DENIED, details: `subscribe refused: proof timestamp ${new Date(opened.timestampMs).toISOString()} is older than the allowed skew of ${skewS} s (signal --auth-skew); check the clock, then retry with a fresh proof` }
      case 'too-new':
        return { code: status.PERMISSION_DENIED, details: `subscribe refused: proof timestamp ${safeIso(opened.timestampMs)} is more than the allowed skew of ${skewS} s ahead of the server's clock (signal --auth-skew)` }
      case 'replayed':
        return { code: status.PERMISSION_DENIED, details: 'subscribe refused: this proof was already used (replay); every subscribe needs a fresh one' }
      case 'full':
        return { code: status.RESOURCE_EXHAUSTED, details: `subscribe refused: the server remembers ${this.#replays.capacity} recent proofs, its limit against replays; retry shortly` }
    }
  }

  close(): void {
    this.#replays.clear()
  }
}

function safeIso(ms: number): string {
  const date = new Date(ms)
  return Number.isNaN(date.getTime()) ? `${ms} ms` : date.toISOString()
}
