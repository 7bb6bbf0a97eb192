// signal --cluster redis://HOST:PORT: instances share one key space through Redis Pub/Sub (the official
// `redis` client, loaded only here). One channel per recipient key, "cunicu:env:" + base64(key).
//
// Exactly once: an instance delivers what it accepts to its own subscribers directly (so local delivery
// never depends on Redis) and PUBLISHes it prefixed with its random instance id; every instance skips
// messages carrying its own id, and delivers the others'. Pub/Sub stores nothing, so neither do we.
// An instance SUBSCRIBEs to a key's channel only while it has local subscribers for it (reference counted
// by join/leave), and join resolves once Redis confirmed the SUBSCRIBE, so the server sends its sync
// envelope only when a publish anywhere would reach the new subscriber.
// Losing Redis is reported (ClusterEvent 'lost', stats.outages); the clients reconnect with back-off, the
// subscriber connection re-subscribes every live channel, and 'recovered' follows.
import { randomBytes } from 'node:crypto'
import { createClient } from 'redis'
import { channelName, ClusterLink, InFlight, JoinedChannels, LinkCounters, type JoinedChannel } from './channel.js'
import { ClusterError, type Cluster, type ClusterOptions, type ClusterStats } from './cluster.js'

const ORIGIN_BYTES = 8
/** Reconnect back-off cap: short, since a lost broker splits the cluster until it is back. */
const RETRY_MAX_MS = 1000

type RedisClient = ReturnType<typeof createClient>

interface Channel extends JoinedChannel {
  listener: (message: Buffer) => void
  /** SUBSCRIBE confirmed: from then on the client itself re-subscribes it after a reconnect. */
  confirmed: boolean
}

export class RedisCluster implements Cluster {
  readonly #url: string
  readonly #options: ClusterOptions
  readonly #pub: RedisClient
  readonly #sub: RedisClient
  readonly #origin = randomBytes(ORIGIN_BYTES)
  readonly #channels = new JoinedChannels<Channel>({
    create: (name, key) => {
      this.#stale.delete(name)
      return { name, refs: 0, confirmed: false, pending: undefined, listener: (message) => this.#onMessage(key, message) }
    },
    subscribe: (channel) => this.#subscribe(channel),
    unsubscribe: (channel) => {
      if (!this.#closed) this.#unsubscribe(channel.name, channel.listener)
    },
    // While Redis is down the subscriber goes live for this instance's own publishers at once.
    live: (channel) => channel.confirmed || !this.#link.up,
  })
  /** Channels whose UNSUBSCRIBE was lost with the connection: unsubscribed again once it is back. */
  readonly #stale = new Set<string>()
  #closed = false
  /** PUBLISH commands not yet answered by Redis. */
  readonly #inFlight = new InFlight()
  readonly #counters = new LinkCounters()
  readonly #link: ClusterLink

  private constructor(url: URL, options: ClusterOptions) {
    // Never echo credentials into logs or events.
    this.#url = `${url.protocol}//${url.host}`
    this.#options = options
    this.#link = new ClusterLink(this.#url, this.#counters, options.onEvent)
    const reconnectStrategy = (retries: number, cause: Error): number | Error =>
      // Before the first connection a failure ends connect() with the cause; afterwards: retry forever.
      this.#link.everConnected && !this.#closed ? Math.min(50 * 2 ** retries, RETRY_MAX_MS) : cause
    const client = (disableOfflineQueue: boolean): RedisClient => {
      const c = createClient({ url: url.href, disableOfflineQueue, socket: { connectTimeout: 5000, reconnectStrategy } })
      c.on('error', (err: Error) => this.#lost(err.message || String(err)))
      c.on('ready', () => this.#ready())
      return c
    }
    // PUBLISH fails at once while Redis is down (no backlog replayed late); SUBSCRIBE waits for it.
    this.#pub = client(true)
    this.#sub = client(false)
  }

  static async connect(url: URL, options: ClusterOptions): Promise<RedisCluster> {
    const cluster = new RedisCluster(url, options)
    try {
      await Promise.all([cluster.#pub.connect(), cluster.#sub.connect()])
    } catch (err) {
      await cluster.close()
      throw new ClusterError(`cluster ${cluster.#url} unreachable: ${(err as Error).message || String(err)}`, 'unreachable')
    }
    cluster.#link.connected()
    return cluster
  }

  join(recipient: Uint8Array): Promise<void> {
    return this.#closed ? Promise.resolve() : this.#channels.join(recipient)
  }

  leave(recipient: Uint8Array): void {
    this.#channels.leave(recipient)
  }

  publish(recipient: Uint8Array, envelope: Buffer): void {
    if (this.#closed) return
    if (!this.#pub.isReady) {
      this.#counters.publishFailed++
      return
    }
    this.#counters.published++
    this.#inFlight.track(this.#pub.publish(channelName(recipient), Buffer.concat([this.#origin, envelope])), () => this.#counters.publishFailed++)
  }

  flush(): Promise<void> {
    return this.#inFlight.flush()
  }

  stats(): ClusterStats {
    return {
      url: this.#url,
      connected: this.#link.up,
      channels: this.#channels.size,
      ...this.#counters,
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#channels.clear()
    for (const client of [this.#pub, this.#sub]) {
      try {
        client.destroy()
      } catch {
        // never connected, or already closed
      }
    }
    this.#link.closed()
  }

  #subscribe(channel: Channel): void {
    const attempt: Promise<void> = this.#sub.subscribe(channel.name, channel.listener, true).then(
      () => {
        channel.confirmed = true
        if (channel.pending === attempt) channel.pending = undefined
      },
      () => {
        // The connection went down before Redis answered: subscribed again on the next 'ready'.
        if (channel.pending === attempt) channel.pending = undefined
      },
    )
    channel.pending = attempt
  }

  #unsubscribe(name: string, listener: (message: Buffer) => void): void {
    this.#sub.unsubscribe(name, listener, true).catch(() => {
      if (!this.#channels.has(name)) this.#stale.add(name)
    })
  }

  #onMessage(key: Uint8Array, message: Buffer): void {
    if (this.#closed || message.length <= ORIGIN_BYTES) return
    // Our own publish, already delivered locally.
    if (message.subarray(0, ORIGIN_BYTES).equals(this.#origin)) return
    this.#counters.received++
    this.#options.deliver(key, Buffer.from(message.subarray(ORIGIN_BYTES)))
  }

  #lost(reason: string): void {
    if (!this.#closed) this.#link.lost(reason)
  }

  #ready(): void {
    if (this.#closed || !this.#link.everConnected || this.#link.up) return
    if (!this.#pub.isReady || !this.#sub.isReady) return
    // Confirmed channels were re-subscribed by the client before 'ready'; these never were.
    for (const channel of this.#channels.values()) if (!channel.confirmed && !channel.pending) this.#subscribe(channel)
    for (const name of this.#stale) this.#sub.unsubscribe(name).catch(() => {})
    this.#stale.clear()
    this.#link.recovered()
  }
}
