// What the Redis transports (redis-cluster.ts, redis-sharded.ts) share: the channel a recipient key maps to,
// how long a join waits for the broker's confirmation, the publishes a drain waits for, and whether the link
// to the broker is up (told as ClusterEvents).
import type { ClusterEvent } from './cluster.js'

const CHANNEL_PREFIX = 'cunicu:env:'
/** How long join waits for a SUBSCRIBE confirmation before letting the subscriber go live anyway. */
const JOIN_TIMEOUT_MS = 3000

/** One channel per recipient key: "cunicu:env:" + base64(key). */
export function channelName(key: Uint8Array): string {
  return CHANNEL_PREFIX + Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')
}

/** Resolves once the subscribe attempt settled, or after JOIN_TIMEOUT_MS: a join never hangs on the broker. */
function untilSubscribed(pending: Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, JOIN_TIMEOUT_MS)
    void pending.finally(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/**
 * Publishes not yet answered by the broker, so that flush() (a drain) can wait for them. A count, not a set
 * of promises: this runs per envelope, and one `then` is the least a settled command can cost.
 */
export class InFlight {
  #pending = 0
  #drained: (() => void)[] = []

  /** Tracks `sent`; `onFailure` runs if the broker refused it or the connection dropped it. */
  track(sent: Promise<unknown>, onFailure: () => void): void {
    this.#pending++
    sent.then(this.#settled, (_err: unknown) => {
      onFailure()
      this.#settled()
    })
  }

  readonly #settled = (): void => {
    if (--this.#pending === 0) for (const resolve of this.#drained.splice(0)) resolve()
  }

  flush(): Promise<void> {
    return this.#pending === 0 ? Promise.resolve() : new Promise((resolve) => this.#drained.push(resolve))
  }
}

export interface JoinedChannel {
  readonly name: string
  /** Local subscribers for the key. */
  refs: number
  /** The subscribe in flight, if any. */
  pending: Promise<void> | undefined
}

export interface JoinedChannelHooks<C extends JoinedChannel> {
  /** A new channel for `key`; `subscribe` follows at once. */
  create(name: string, key: Uint8Array): C
  subscribe(channel: C): void
  /** After the last local subscriber left. */
  unsubscribe(channel: C): void
  /** True when a join need not wait for the pending subscribe (confirmed already, or the broker is down). */
  live(channel: C): boolean
}

/**
 * The keys this instance has local subscribers for, reference counted (Cluster.join/leave): the first join
 * subscribes the key's channel and waits for the broker's confirmation; the last leave unsubscribes it.
 */
export class JoinedChannels<C extends JoinedChannel> {
  readonly #byName = new Map<string, C>()

  constructor(private readonly hooks: JoinedChannelHooks<C>) {}

  join(recipient: Uint8Array): Promise<void> {
    const name = channelName(recipient)
    let channel = this.#byName.get(name)
    if (!channel) {
      channel = this.hooks.create(name, Uint8Array.from(recipient))
      this.#byName.set(name, channel)
      this.hooks.subscribe(channel)
    }
    channel.refs++
    const pending = channel.pending
    if (!pending || this.hooks.live(channel)) return Promise.resolve()
    return untilSubscribed(pending)
  }

  leave(recipient: Uint8Array): void {
    const name = channelName(recipient)
    const channel = this.#byName.get(name)
    if (!channel || --channel.refs > 0) return
    this.#byName.delete(name)
    this.hooks.unsubscribe(channel)
  }

  /** The live channel of that name; a listener compares it with its own to know it is still wanted. */
  get(name: string): C | undefined {
    return this.#byName.get(name)
  }

  has(name: string): boolean {
    return this.#byName.has(name)
  }

  values(): IterableIterator<C> {
    return this.#byName.values()
  }

  get size(): number {
    return this.#byName.size
  }

  clear(): void {
    this.#byName.clear()
  }
}

/** The counters of ClusterStats that every Redis transport keeps (see cluster.ts for their meaning). */
export class LinkCounters {
  published = 0
  publishFailed = 0
  received = 0
  outages = 0
}

/**
 * Whether a transport's link to Redis is up, told once per change: 'connected' (the first time), 'lost'
 * (counted in `outages`), 'recovered', 'closed'. Before the first connection nothing is told: a failure
 * then is connect()'s error, not an outage.
 */
export class ClusterLink {
  #everConnected = false
  #up = false

  constructor(
    private readonly url: string,
    private readonly counters: LinkCounters,
    private readonly onEvent: ((event: ClusterEvent) => void) | undefined,
  ) {}

  get everConnected(): boolean {
    return this.#everConnected
  }

  get up(): boolean {
    return this.#up
  }

  connected(): void {
    this.#everConnected = true
    this.#up = true
    this.onEvent?.({ state: 'connected', url: this.url })
  }

  /** An outage begins; false when the link was not up (not connected yet, or already lost). */
  lost(reason: string): boolean {
    if (!this.#everConnected || !this.#up) return false
    this.#up = false
    this.counters.outages++
    this.onEvent?.({ state: 'lost', url: this.url, reason })
    return true
  }

  /** The outage is over; false when there was none. */
  recovered(details: { resubscribed?: number } = {}): boolean {
    if (!this.#everConnected || this.#up) return false
    this.#up = true
    this.onEvent?.({ state: 'recovered', url: this.url, ...details })
    return true
  }

  closed(): void {
    this.#up = false
    if (this.#everConnected) this.onEvent?.({ state: 'closed', url: this.url })
  }
}
