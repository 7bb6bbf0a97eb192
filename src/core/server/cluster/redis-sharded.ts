// signal --cluster redis-cluster://HOST:PORT[,HOST:PORT…]: instances share one key space through a Redis
// Cluster with sharded Pub/Sub (SSUBSCRIBE/SPUBLISH, Redis 7), so each envelope goes to the one shard that
// owns its channel's slot instead of being broadcast to every node as classic Pub/Sub in a cluster would.
// The official `redis` client's cluster support (createCluster), loaded only here. One channel per
// recipient key, as redis-cluster.ts.
//
// Exactly once, as redis-cluster.ts: local subscribers are served directly; what goes through Redis carries
// this instance's random id (skipped on the way back) and a sequence number, so that an envelope arriving
// twice (subscribed on an old and a new node of a shard for a moment during a failover) is delivered once.
//
// The failover trap: node-redis 5.12.1 keeps a shard's sharded subscriptions on one connection to that
// shard's master. When the master dies and a replica takes over, the client never moves them: the next slot
// discovery simply destroys the dead node's connection with its listeners, and nothing triggers a discovery
// unless a command gets MOVED. So on any node error this transport re-discovers the slots itself (every
// HEAL_INTERVAL_MS until every master answers), and subscribes again each channel whose slot's master is not
// the node it was subscribed on: ClusterEvent 'lost' → 'recovered' {resubscribed}, stats.rediscoveries,
// stats.resubscribed.
import { randomBytes } from 'node:crypto'
import { createCluster } from 'redis'
import { channelName, ClusterLink, InFlight, JoinedChannels, LinkCounters, type JoinedChannel } from './channel.js'
import { ClusterError, type Cluster, type ClusterOptions, type ClusterStats } from './cluster.js'
import { clusterTargetName, formatNode, type ClusterNode, type ClusterTarget } from './cluster-url.js'
import { keySlot } from './key-slot.js'
import { SeenSequences } from './seen-sequences.js'

const ORIGIN_BYTES = 8
const SEQUENCE_BYTES = 4
const HEADER_BYTES = ORIGIN_BYTES + SEQUENCE_BYTES
/** Between slot discoveries while a node is down: about the time a replica needs to be promoted. */
const HEAL_INTERVAL_MS = 250
/** Node reconnect back-off cap: short, a lost shard splits the cluster for its keys until it is back. */
const RETRY_MAX_MS = 1000
const CONNECT_TIMEOUT_MS = 5000
/** The whole initial discovery and connection to every master. */
const START_TIMEOUT_MS = 15_000

type RedisClusterClient = ReturnType<typeof createCluster>

/** The parts of node-redis's slot map used here (documented as `cluster.slots` / `.masters`). */
interface SlotNode {
  address: string
  host: string
  port: number
  client?: { isReady: boolean }
  pubSub?: { client: { isReady: boolean } }
}
interface SlotMap {
  slots: ({ master: SlotNode } | undefined)[]
  masters: SlotNode[]
}

interface Channel extends JoinedChannel {
  slot: number
  listener: (message: Buffer) => void
  /** The master the SSUBSCRIBE was confirmed on; undefined until then or after it failed. */
  node: SlotNode | undefined
}

export class RedisShardedCluster implements Cluster {
  readonly #url: string
  readonly #options: ClusterOptions
  readonly #client: RedisClusterClient
  readonly #origin = randomBytes(ORIGIN_BYTES)
  #sequence = 0
  readonly #channels = new JoinedChannels<Channel>({
    create: (name, key) => {
      const channel: Channel = { name, slot: keySlot(name), refs: 0, node: undefined, pending: undefined, listener: (message) => this.#onMessage(channel, key, message) }
      return channel
    },
    subscribe: (channel) => this.#subscribe(channel),
    // If the node is down the listener dies with its connection; #onMessage ignores it meanwhile.
    unsubscribe: (channel) => {
      if (!this.#closed) this.#client.sUnsubscribe(channel.name, channel.listener, true).catch(() => {})
    },
    // While a shard is down the subscriber goes live for this instance's own publishers at once.
    live: (channel) => channel.node !== undefined || !this.#link.up,
  })
  readonly #seen = new SeenSequences()
  readonly #inFlight = new InFlight()
  #closed = false
  #healTimer: NodeJS.Timeout | undefined
  #healing = false
  /** Why the last discovery failed: "unreachable" alone would not say that a node is not in cluster mode. */
  #lastError: string | undefined
  /** Channels subscribed again since the last 'lost': reported with 'recovered'. */
  #movedSinceLost = 0
  readonly #counters = new LinkCounters()
  readonly #link: ClusterLink
  #rediscoveries = 0
  #resubscribed = 0
  #duplicates = 0

  private constructor(target: Extract<ClusterTarget, { kind: 'redis-cluster' }>, options: ClusterOptions) {
    this.#url = clusterTargetName(target)
    this.#options = options
    this.#link = new ClusterLink(this.#url, this.#counters, options.onEvent)
    const node = ({ host, port }: ClusterNode) => ({ socket: { host, port } })
    this.#client = createCluster({
      rootNodes: target.nodes.map(node),
      defaults: {
        ...(target.username !== undefined ? { username: target.username } : {}),
        ...(target.password !== undefined ? { password: target.password } : {}),
        // A publish to a shard that is down fails at once (counted, not replayed late); a subscribe to it
        // fails too and is retried by the healing discovery.
        disableOfflineQueue: true,
        socket: {
          connectTimeout: CONNECT_TIMEOUT_MS,
          reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, RETRY_MAX_MS),
          ...(target.tls ? { tls: true as const } : {}),
        },
      },
    })
    // Discovery failures come as 'error', a node's as 'node-error': both mean "look at the topology again".
    this.#client.on('error', (err: Error) => {
      this.#lastError = err.message || String(err)
      this.#nodeFailed(this.#lastError)
    })
    this.#client.on('node-error', (err: Error, node: ClusterNode) => this.#nodeFailed(`${formatNode(node)}: ${err.message || String(err)}`))
    // A slot moved and node-redis could not move a channel's listener with it (its own event name, sic).
    this.#client.on('sharded-shannel-moved-error', () => this.#nodeFailed('a sharded channel could not follow its slot'))
  }

  static async connect(target: Extract<ClusterTarget, { kind: 'redis-cluster' }>, options: ClusterOptions): Promise<RedisShardedCluster> {
    const cluster = new RedisShardedCluster(target, options)
    if (typeof rediscoverOf(cluster.#client) !== 'function') {
      throw new ClusterError('the installed redis client has no slot rediscovery (node-redis 5.12.x expected)', 'invalid')
    }
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        cluster.#client.connect(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS))),
      ])
      if (!cluster.#allMastersReady()) throw new Error('not every master answered')
    } catch (err) {
      await cluster.close()
      const reason = [(err as Error).message || String(err), cluster.#lastError].filter(Boolean).join(': ')
      throw new ClusterError(`cluster ${cluster.#url} unreachable: ${reason}`, 'unreachable')
    } finally {
      clearTimeout(timer)
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
    this.#counters.published++
    const message = Buffer.allocUnsafe(HEADER_BYTES + envelope.length)
    this.#origin.copy(message, 0)
    message.writeUInt32BE(this.#sequence, ORIGIN_BYTES)
    this.#sequence = (this.#sequence + 1) >>> 0
    envelope.copy(message, HEADER_BYTES)
    this.#inFlight.track(this.#client.sPublish(channelName(recipient), message), () => {
      this.#counters.publishFailed++
      this.#nodeFailed('a publish failed')
    })
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
      rediscoveries: this.#rediscoveries,
      resubscribed: this.#resubscribed,
      duplicates: this.#duplicates,
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#healTimer)
    this.#channels.clear()
    try {
      this.#client.destroy()
    } catch {
      // never connected, or already closed
    }
    this.#link.closed()
  }

  #subscribe(channel: Channel): void {
    const attempt: Promise<void> = this.#client.sSubscribe(channel.name, channel.listener, true).then(
      () => {
        if (channel.pending === attempt) channel.pending = undefined
        // The node it went to: the slot's master now (the client routes by the same map).
        channel.node = this.#slotMap().slots[channel.slot]?.master
      },
      () => {
        // The shard is down: the healing discovery subscribes it again once the slot has a live master.
        if (channel.pending === attempt) channel.pending = undefined
        channel.node = undefined
        this.#nodeFailed(`subscribing ${channel.name} failed`)
      },
    )
    channel.pending = attempt
  }

  #onMessage(channel: Channel, key: Uint8Array, message: Buffer): void {
    // A listener left behind on a connection that came back after leave(): not ours any more.
    if (this.#closed || message.length <= HEADER_BYTES || this.#channels.get(channel.name) !== channel) return
    if (this.#origin.compare(message, 0, ORIGIN_BYTES) === 0) return
    if (this.#seen.isDuplicate(message.toString('latin1', 0, ORIGIN_BYTES), message.readUInt32BE(ORIGIN_BYTES))) {
      this.#duplicates++
      return
    }
    this.#counters.received++
    this.#options.deliver(key, Buffer.from(message.subarray(HEADER_BYTES)))
  }

  /** A node failed (or something routed to one did): report the outage once, and heal soon. */
  #nodeFailed(reason: string): void {
    if (this.#closed || !this.#link.everConnected) return
    if (this.#link.up) {
      this.#movedSinceLost = 0
      this.#link.lost(reason)
    }
    this.#scheduleHeal()
  }

  #scheduleHeal(): void {
    if (this.#closed || this.#healTimer || this.#healing) return
    this.#healTimer = setTimeout(() => void this.#heal(), HEAL_INTERVAL_MS)
  }

  /** Fetches the slot map again and subscribes every channel whose slot now has another (or no confirmed) master. */
  async #heal(): Promise<void> {
    this.#healTimer = undefined
    this.#healing = true
    try {
      await this.#rediscover()
      this.#rediscoveries++
      if (this.#closed) return
      const map = this.#slotMap()
      for (const channel of this.#channels.values()) {
        if (channel.pending) continue
        const master = map.slots[channel.slot]?.master
        if (!master || channel.node === master) continue
        if (channel.node) {
          this.#resubscribed++
          this.#movedSinceLost++
        }
        channel.node = undefined
        this.#subscribe(channel)
      }
      await Promise.allSettled([...this.#channels.values()].map((c) => c.pending))
    } catch {
      // No node answered the discovery: tried again below.
    } finally {
      this.#healing = false
    }
    if (this.#closed) return
    const healthy = this.#allMastersReady() && [...this.#channels.values()].every((c) => c.node !== undefined)
    if (!healthy) return this.#scheduleHeal()
    this.#link.recovered({ resubscribed: this.#movedSinceLost })
  }

  #rediscover(): Promise<void> {
    // Start with a master that answers, so a dead seed node does not slow the discovery down.
    const live = this.#slotMap().masters.find((m) => m.client?.isReady)
    const start = live ? { options: { socket: { host: live.host, port: live.port } } } : { options: undefined }
    return rediscoverOf(this.#client)!(start)
  }

  #allMastersReady(): boolean {
    const masters = this.#slotMap().masters
    return masters.length > 0 && masters.every((m) => m.client?.isReady && (!m.pubSub || m.pubSub.client.isReady))
  }

  #slotMap(): SlotMap {
    return this.#client as unknown as SlotMap
  }
}

/**
 * node-redis 5.12.1 re-discovers the slots (RedisClusterSlots.rediscover, which tries the given node and then
 * every root node) only from inside: after MOVED/ASK. Reached here through the client's slot holder; checked
 * at connect, so a client upgrade that renames it fails loudly instead of silently losing failovers.
 */
function rediscoverOf(client: RedisClusterClient): ((start: { options: unknown }) => Promise<void>) | undefined {
  const slots = (client as unknown as { _slots?: { rediscover?: (start: { options: unknown }) => Promise<void> } })._slots
  return typeof slots?.rediscover === 'function' ? slots.rediscover.bind(slots) : undefined
}
