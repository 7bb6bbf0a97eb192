// Per-connection budgets: how many Subscribe streams one HTTP/2 connection may hold open, and how fast it
// may publish (a token bucket). A connection is named by its peer address ("ip:port", grpc-js
// call.getPeer()): every call on one HTTP/2 connection shares it, and two connections never do at once.
// Refusals are messages a client's user can act on: they name the limit and the `signal` flag that sets it.
import { TokenBucket, monotonicNow, type MonotonicClock } from './token-bucket.js'

export interface ConnectionLimitSettings {
  maxSubscriptions: number
  publishRatePerSecond: number
  publishBurst: number
}

interface Connection {
  subscriptions: number
  publishes: TokenBucket
}

/** Publishes between sweeps of idle connections: keeps the sweep's cost per publish constant. */
const SWEEP_EVERY = 1024

export class ConnectionLimits {
  readonly #connections = new Map<string, Connection>()
  #sinceSweep = 0

  constructor(
    private readonly settings: ConnectionLimitSettings,
    private readonly now: MonotonicClock = monotonicNow,
  ) {}

  /** Connections with state: open subscriptions, or a bucket that has not refilled yet. */
  get size(): number {
    return this.#connections.size
  }

  subscriptions(peer: string): number {
    return this.#connections.get(peer)?.subscriptions ?? 0
  }

  /** Counts one more subscription for `peer`, or returns why not. Pair every success with releaseSubscription. */
  admitSubscription(peer: string): string | undefined {
    const connection = this.#connection(peer)
    if (connection.subscriptions >= this.settings.maxSubscriptions) {
      return `subscription limit of ${this.settings.maxSubscriptions} per connection reached (signal --max-subscriptions-per-connection); unsubscribe a key or open another connection`
    }
    connection.subscriptions++
    return undefined
  }

  releaseSubscription(peer: string): void {
    const connection = this.#connections.get(peer)
    if (!connection) return
    connection.subscriptions = Math.max(0, connection.subscriptions - 1)
    this.#forgetIfIdle(peer, connection)
  }

  /** Takes a publish token for `peer`, or returns why not. */
  admitPublish(peer: string): string | undefined {
    if (++this.#sinceSweep >= SWEEP_EVERY) this.#sweep()
    if (this.#connection(peer).publishes.tryTake()) return undefined
    return `publish rate limit of ${this.settings.publishRatePerSecond}/s per connection exceeded (burst ${this.settings.publishBurst}; signal --publish-rate, --publish-burst); retry later`
  }

  clear(): void {
    this.#connections.clear()
  }

  #connection(peer: string): Connection {
    let connection = this.#connections.get(peer)
    if (!connection) {
      connection = { subscriptions: 0, publishes: new TokenBucket(this.settings.publishRatePerSecond, this.settings.publishBurst, this.now) }
      this.#connections.set(peer, connection)
    }
    return connection
  }

  // A connection that only publishes never says goodbye (grpc-js tells handlers nothing about the
  // connection), so its entry goes once its bucket is full again: then a new entry would decide the same.
  #sweep(): void {
    this.#sinceSweep = 0
    for (const [peer, connection] of this.#connections) this.#forgetIfIdle(peer, connection)
  }

  #forgetIfIdle(peer: string, connection: Connection): void {
    if (connection.subscriptions === 0 && connection.publishes.full) this.#connections.delete(peer)
  }
}
