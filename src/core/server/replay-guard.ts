// Remembers the nonces of accepted subscribe proofs until their timestamps leave the allowed skew, so a
// captured proof opens a subscription once, never twice. Memory is bounded: past `capacity` fresh proofs,
// new ones are refused (fail closed) rather than forgetting one that could then be replayed.

/** Unix milliseconds; proofs carry wall-clock timestamps, so this is the wall clock. */
export type WallClock = () => number

export type ReplayVerdict = 'fresh' | 'too-old' | 'too-new' | 'replayed' | 'full'

export class ReplayGuard {
  /** Nonce (hex) -> the wall-clock time after which its proof is too old to be accepted anyway. */
  readonly #seen = new Map<string, number>()

  constructor(
    readonly maxSkewMs: number,
    readonly capacity = 100_000,
    private readonly now: WallClock = Date.now,
  ) {}

  get size(): number {
    return this.#seen.size
  }

  /** Accepts a proof's (timestamp, nonce) at most once, and only while the timestamp is within the skew. */
  admit(timestampMs: number, nonce: Uint8Array): ReplayVerdict {
    const now = this.now()
    if (timestampMs < now - this.maxSkewMs) return 'too-old'
    if (timestampMs > now + this.maxSkewMs) return 'too-new'
    this.#prune(now)
    const id = Buffer.from(nonce).toString('hex')
    const expiresAt = this.#seen.get(id)
    if (expiresAt !== undefined && expiresAt >= now) return 'replayed'
    if (this.#seen.size >= this.capacity) this.#prune(now, true)
    if (this.#seen.size >= this.capacity) return 'full'
    this.#seen.set(id, timestampMs + this.maxSkewMs)
    return 'fresh'
  }

  clear(): void {
    this.#seen.clear()
  }

  // Insertion order is nearly expiry order (an entry added at t expires within [t, t + 2·skew]), so
  // dropping expired entries from the front keeps the map to about two skews' worth of proofs; only a
  // full map is worth a complete scan.
  #prune(now: number, complete = false): void {
    for (const [id, expiresAt] of this.#seen) {
      if (expiresAt < now) this.#seen.delete(id)
      else if (!complete) break
    }
  }
}
