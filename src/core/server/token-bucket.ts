// A token bucket: `burst` tokens at most, refilled continuously at `ratePerSecond`. It allows short bursts
// (a session's credentials plus a flurry of candidates) while capping what one client can sustain.
// The clock is injected so tests can move time without sleeping.

/** Milliseconds from any fixed origin; monotonic, so a wall-clock step cannot refill or drain a bucket. */
export type MonotonicClock = () => number

export const monotonicNow: MonotonicClock = () => performance.now()

export class TokenBucket {
  #tokens: number
  #refilledAt: number

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: MonotonicClock = monotonicNow,
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) throw new RangeError(`a token bucket needs a rate > 0 and a burst >= 1, got ${ratePerSecond}/s and ${burst}`)
    this.#tokens = burst
    this.#refilledAt = now()
  }

  /** Takes one token if there is one. */
  tryTake(): boolean {
    this.#refill()
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  /** Tokens available now (fractional while refilling). */
  get tokens(): number {
    this.#refill()
    return this.#tokens
  }

  /** A full bucket behaves exactly like a new one, so its owner may forget it without changing any decision. */
  get full(): boolean {
    return this.tokens >= this.burst
  }

  #refill(): void {
    const now = this.now()
    // max(0, …): a clock that goes backwards (a test, or a bug) must never drain the bucket.
    const elapsedMs = Math.max(0, now - this.#refilledAt)
    this.#refilledAt = now
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsedMs * this.ratePerSecond) / 1000)
  }
}
