// signal --cluster redis://HOST:PORT: instances share one key space through Redis Pub/Sub, over two
// connections of our own (resp-connection.ts: one publishes, one subscribes). One channel per recipient key,
// "cunicu:env:" + base64(key).
//
// Exactly once: an instance delivers what it accepts to its own subscribers directly (so local delivery
// never depends on Redis) and PUBLISHes it prefixed with its random instance id; every instance skips
// messages carrying its own id, and delivers the others'. Pub/Sub stores nothing, so neither do we.
// An instance SUBSCRIBEs to a key's channel only while it has local subscribers for it (reference counted
// by join/leave), and join resolves once Redis confirmed the SUBSCRIBE, so the server sends its sync
// envelope only when a publish anywhere would reach the new subscriber.
// Losing Redis is reported (ClusterEvent 'lost', stats.outages); both connections are opened again with
// back-off, the new subscriber connection subscribes every live channel, and 'recovered' follows. Pub/Sub
// ignores the database number, so a /DB in the URL changes nothing.
import { randomBytes } from 'node:crypto'
import { Backoff } from '../../backoff.js'
import { ClusterLink, commandPrefix, encodePublish, InFlight, JoinedChannels, LinkCounters, type JoinedChannel } from './channel.js'
import { ClusterError, type Cluster, type ClusterOptions, type ClusterStats } from './cluster.js'
import { PublishBatches } from './publish-batches.js'
import { RespConnection, type RespConnectionEvents, type RespEndpoint } from './resp-connection.js'

const ORIGIN_BYTES = 8
const DEFAULT_PORT = 6379
/** Reconnect back-off: 50 ms doubling, capped short (1 s), since a lost broker splits the cluster until it is back. */
const RECONNECT_BACKOFF = { initialMs: 50, factor: 2, maxMs: 1000, jitter: 0 }
const CONNECT_TIMEOUT_MS = 5000
const PUBLISH = commandPrefix('PUBLISH')

interface Channel extends JoinedChannel {
  /** SUBSCRIBE confirmed on the current subscriber connection. */
  confirmed: boolean
}

export class RedisCluster implements Cluster {
  readonly #url: string
  readonly #endpoint: RespEndpoint
  readonly #options: ClusterOptions
  #pub: RespConnection | undefined
  #sub: RespConnection | undefined
  readonly #origin = randomBytes(ORIGIN_BYTES)
  readonly #channels = new JoinedChannels<Channel>({
    create: (name, key) => ({ name, key, refs: 0, confirmed: false, pending: undefined }),
    subscribe: (channel) => this.#subscribe(channel),
    // A new subscriber connection starts without it anyway.
    unsubscribe: (channel) => {
      if (this.#sub?.ready) this.#sub.command(['UNSUBSCRIBE', channel.name]).catch(() => {})
    },
    // While Redis is down the subscriber goes live for this instance's own publishers at once.
    live: (channel) => channel.confirmed || !this.#link.up,
  })
  #closed = false
  #retryTimer: NodeJS.Timeout | undefined
  readonly #reconnects = new Backoff(RECONNECT_BACKOFF)
  /** PUBLISH commands not yet answered by Redis. */
  readonly #inFlight = new InFlight()
  /** When the publish connections write (shared, so that every shard's batch leaves at once). */
  readonly #batches = new PublishBatches()
  readonly #counters = new LinkCounters()
  readonly #link: ClusterLink
  readonly #publisherEvents: RespConnectionEvents = {
    published: (ok, failed) => {
      this.#counters.publishFailed += failed
      this.#inFlight.settle(ok + failed)
    },
    // Classic Pub/Sub messages carry no sequence number, so a publish that may have arrived is not sent again.
    unanswered: (count) => {
      this.#counters.publishFailed += count
      this.#inFlight.settle(count)
    },
    closed: (reason) => this.#lost(reason),
  }
  readonly #subscriberEvents: RespConnectionEvents = {
    message: (buffer, channelStart, channelEnd, payloadStart, payloadEnd) => this.#onMessage(buffer, channelStart, channelEnd, payloadStart, payloadEnd),
    closed: (reason) => this.#lost(reason),
  }

  private constructor(url: URL, options: ClusterOptions) {
    // Never echo credentials into logs or events.
    this.#url = `${url.protocol}//${url.host}`
    this.#endpoint = {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port ? Number(url.port) : DEFAULT_PORT,
      tls: url.protocol === 'rediss:',
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    }
    this.#options = options
    this.#link = new ClusterLink(this.#url, this.#counters, options.onEvent)
  }

  static async connect(url: URL, options: ClusterOptions): Promise<RedisCluster> {
    const cluster = new RedisCluster(url, options)
    try {
      await cluster.#open()
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
    const pub = this.#pub
    // Fails at once while Redis is down: no backlog replayed late.
    if (!pub?.ready) {
      this.#counters.publishFailed++
      return
    }
    this.#counters.published++
    this.#inFlight.begin()
    encodePublish(pub.writer, PUBLISH, recipient, this.#origin, undefined, envelope)
    pub.sentPublish()
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
    this.#batches.close()
    clearTimeout(this.#retryTimer)
    this.#channels.clear()
    this.#pub?.close()
    this.#sub?.close()
    this.#link.closed()
  }

  /** Both connections, then every live channel subscribed on the new subscriber connection. */
  async #open(): Promise<void> {
    const opened = await Promise.allSettled([
      RespConnection.open(this.#endpoint, this.#publisherEvents, { connectTimeoutMs: CONNECT_TIMEOUT_MS, batches: this.#batches }),
      RespConnection.open(this.#endpoint, this.#subscriberEvents, { subscriber: true, connectTimeoutMs: CONNECT_TIMEOUT_MS }),
    ])
    const [pub, sub] = opened.map((o) => (o.status === 'fulfilled' ? o.value : undefined))
    const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected')
    if (failed || this.#closed || !pub!.ready || !sub!.ready) {
      pub?.close()
      sub?.close()
      throw failed ? failed.reason : new Error(this.#closed ? 'closed' : 'connection closed')
    }
    this.#pub = pub
    this.#sub = sub
    for (const channel of this.#channels.values()) {
      channel.confirmed = false
      this.#subscribe(channel)
    }
  }

  #subscribe(channel: Channel): void {
    const sub = this.#sub
    // Redis is down: the next subscriber connection subscribes it.
    if (!sub?.ready) return
    const attempt: Promise<void> = sub.command(['SUBSCRIBE', channel.name]).then(
      () => {
        if (this.#sub === sub) channel.confirmed = true
        if (channel.pending === attempt) channel.pending = undefined
      },
      () => {
        // The connection went down before Redis answered: subscribed again on the next connection.
        if (channel.pending === attempt) channel.pending = undefined
      },
    )
    channel.pending = attempt
  }

  #onMessage(buffer: Buffer, channelStart: number, channelEnd: number, payloadStart: number, payloadEnd: number): void {
    if (this.#closed || payloadEnd - payloadStart <= ORIGIN_BYTES) return
    // Our own publish, already delivered locally.
    if (this.#origin.compare(buffer, payloadStart, payloadStart + ORIGIN_BYTES) === 0) return
    const channel = this.#channels.find(buffer, channelStart, channelEnd)
    // Left already (its UNSUBSCRIBE still on the way).
    if (!channel) return
    this.#counters.received++
    // A view of the received bytes: deliver copies what it keeps (the gRPC frame).
    this.#options.deliver(channel.key, buffer.subarray(payloadStart + ORIGIN_BYTES, payloadEnd))
  }

  /** Either connection failed: both are dropped, and opened again with back-off until Redis answers. */
  #lost(reason: string): void {
    if (this.#closed) return
    this.#pub?.close()
    this.#sub?.close()
    this.#pub = undefined
    this.#sub = undefined
    for (const channel of this.#channels.values()) channel.confirmed = false
    this.#link.lost(reason)
    this.#scheduleReconnect()
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retryTimer) return
    this.#retryTimer = setTimeout(() => void this.#reconnect(), this.#reconnects.next())
  }

  async #reconnect(): Promise<void> {
    this.#retryTimer = undefined
    try {
      await this.#open()
    } catch {
      return this.#scheduleReconnect()
    }
    this.#reconnects.reset()
    this.#link.recovered()
  }
}
