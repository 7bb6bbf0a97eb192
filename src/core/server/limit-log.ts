// Limit hits are logged once per connection, limit and interval, with the number of refusals it stands
// for: a client hammering a limit must not turn the log into a second flood (one line per refused call).
import type { ServerLog } from './server-log.js'

export interface LimitHit {
  /** The connection ("ip:port"), or the source address for STUN. */
  peer: string
  /** The limit's name, as in the metrics' reason label ("publish_rate", "subscribe_rate", ...). */
  limit: string
}

interface Window {
  startedAt: number
  /** Refusals since the last line was written. */
  suppressed: number
}

export class LimitLog {
  /** peer -> limit -> window; peers in insertion order, so the oldest go first past `capacity`. */
  readonly #windows = new Map<string, Map<string, Window>>()

  constructor(
    private readonly log: ServerLog,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = () => performance.now(),
    /** Windows remembered at most; past it the oldest are forgotten (a new line is then written early). */
    private readonly capacity = 10_000,
  ) {}

  hit({ peer, limit }: LimitHit, details: string): void {
    const now = this.now()
    let limits = this.#windows.get(peer)
    if (!limits) {
      this.#windows.set(peer, (limits = new Map()))
      if (this.#windows.size > this.capacity) this.#windows.delete(this.#windows.keys().next().value!)
    }
    const window = limits.get(limit)
    if (window && now - window.startedAt < this.intervalMs) {
      window.suppressed++
      return
    }
    const refusedSinceLastLine = (window?.suppressed ?? 0) + 1
    limits.set(limit, { startedAt: now, suppressed: 0 })
    this.log.warn({ event: 'limit', limit, peer, refused: refusedSinceLastLine, intervalMs: this.intervalMs }, details)
  }

  /** A connection closed: its windows go (no line owed: the refusals were counted in the metrics). */
  forget(peer: string): void {
    this.#windows.delete(peer)
  }
}
