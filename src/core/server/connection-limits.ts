// Per-connection budgets: how many Subscribe streams one HTTP/2 connection may hold open, how fast it
// may publish and subscribe (token buckets), and how many `--require-auth` proofs it failed. A connection is named by its peer address ("ip:port", grpc-js
// call.getPeer()): every call on one HTTP/2 connection shares it, and two connections never do at once.
// Refusals are messages a client's user can act on: they name the limit and the `signal` flag that sets it.
import { TokenBucket, monotonicNow, type MonotonicClock } from './token-bucket.js'

export interface ConnectionLimitSettings {
  maxSubscriptions: number
  publishRatePerSecond: number
  publishBurst: number
  subscribeRatePerSecond: number
  subscribeBurst: number
}

interface Connection {
  subscriptions: number
  publishes: TokenBucket
  subscribes: TokenBucket
  authFailures: number
  /** Failed too many proofs: every further call is refused until the connection is gone. */
  shed: boolean
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

  /** Takes a subscribe token for `peer`, or returns why not. */
  admitSubscribe(peer: string): string | undefined {
    if (this.#connection(peer).subscribes.tryTake()) return undefined
    return `subscribe rate limit of ${this.settings.subscribeRatePerSecond}/s per connection exceeded (burst ${this.settings.subscribeBurst}; signal --subscribe-rate, --subscribe-burst); retry later`
  }

  /** Counts a failed subscribe proof; returns the connection's failures so far. */
  authFailed(peer: string): number {
    return ++this.#connection(peer).authFailures
  }

  markShed(peer: string): void {
    this.#connection(peer).shed = true
  }

  shed(peer: string): boolean {
    return this.#connections.get(peer)?.shed ?? false
  }

  /** The connection is gone: its budgets and failures with it. */
  forget(peer: string): void {
    this.#connections.delete(peer)
  }

  clear(): void {
    this.#connections.clear()
  }

  #connection(peer: string): Connection {
    let connection = this.#connections.get(peer)
    if (!connection) {
      connection = {
        subscriptions: 0,
        publishes: new TokenBucket(this.settings.publishRatePerSecond, this.settings.publishBurst, this.now),
        subscribes: new TokenBucket(this.settings.subscribeRatePerSecond, this.settings.subscribeBurst, this.now),
        authFailures: 0,
        shed: false,
      }
      this.#connections.set(peer, connection)
    }
    return connection
  }

  // Entries also go when their connection closes (forget); a full entry is forgotten earlier, once its
  // buckets are full again, since a new entry would then decide the same. Failed proofs are kept.
  #sweep(): void {
    this.#sinceSweep = 0
    for (const [peer, connection] of this.#connections) this.#forgetIfIdle(peer, connection)
  }

  #forgetIfIdle(peer: string, connection: Connection): void {
    if (connection.subscriptions === 0 && connection.authFailures === 0 && connection.publishes.full && connection.subscribes.full) this.#connections.delete(peer)
  }
}
