// Exponential back-off with jitter, as cunīcu retries its credentials (cenkalti/backoff defaults it uses):
// first 0.5 s, ×1.5 per attempt, ±50 % jitter, never more than a minute.
export interface BackoffOptions {
  initialMs?: number
  factor?: number
  maxMs?: number
  /** Fraction of the delay added or removed at random: 0.5 gives 50 %..150 %. */
  jitter?: number
}

export const CUNICU_BACKOFF: Required<BackoffOptions> = { initialMs: 500, factor: 1.5, maxMs: 60_000, jitter: 0.5 }

/** The range the `attempt`-th delay (0-based) falls in. */
export function backoffBounds(attempt: number, options: BackoffOptions = {}): { minMs: number; maxMs: number } {
  const o = { ...CUNICU_BACKOFF, ...options }
  const base = Math.min(o.initialMs * o.factor ** attempt, o.maxMs)
  return { minMs: Math.max(0, base * (1 - o.jitter)), maxMs: Math.min(base * (1 + o.jitter), o.maxMs) }
}

export class Backoff {
  readonly #options: Required<BackoffOptions>
  readonly #random: () => number
  #attempt = 0
  #count = 0

  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    this.#options = { ...CUNICU_BACKOFF, ...options }
    if (!(this.#options.initialMs >= 0 && this.#options.factor >= 1 && this.#options.maxMs >= 0)) {
      throw new RangeError(`back-off needs initialMs ≥ 0, factor ≥ 1 and maxMs ≥ 0, got ${JSON.stringify(options)}`)
    }
    this.#options.jitter = Math.min(Math.max(this.#options.jitter, 0), 1)
    this.#random = random
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.#count
  }

  /** The next delay in milliseconds; each call grows the base delay until maxMs. */
  next(): number {
    const { minMs, maxMs } = backoffBounds(this.#attempt, this.#options)
    // Stop growing the exponent once the cap is reached, so a long-running session cannot overflow to Infinity.
    if (this.#options.initialMs * this.#options.factor ** this.#attempt < this.#options.maxMs) this.#attempt++
    this.#count++
    return Math.round(minMs + (maxMs - minMs) * this.#random())
  }

  reset(): void {
    this.#attempt = 0
    this.#count = 0
  }
}
