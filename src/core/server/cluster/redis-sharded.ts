// signal --cluster redis-cluster://HOST:PORT[,HOST:PORT…]: instances share one key space through a Redis
// Cluster with sharded Pub/Sub (SSUBSCRIBE/SPUBLISH, Redis 7), so each envelope goes to the one shard that
// owns its channel's slot instead of being broadcast to every node as classic Pub/Sub in a cluster would.
// One channel per recipient key, as redis-cluster.ts. Over connections of our own (resp-connection.ts), two per
// master (one publishes, one subscribes), found with CLUSTER SLOTS (cluster-masters.ts).
//
// Exactly once, as redis-cluster.ts: local subscribers are served directly; what goes through Redis carries
// this instance's random id (skipped on the way back) and a sequence number, so that an envelope arriving
// twice (subscribed on an old and a new node of a shard for a moment during a failover) is delivered once.
//
// Failover: a node whose connection fails (or that answers MOVED/ASK, or drops a channel with an unasked
// SUNSUBSCRIBE) makes this transport fetch the slot map again (every HEAL_INTERVAL_MS until every master
// answers and every channel is subscribed on its slot's master), connect to new masters, drop connections
// to nodes that are no masters any more, and subscribe each channel again whose subscription died or whose
// slot's master changed: ClusterEvent 'lost' → 'recovered' {resubscribed}, stats.rediscoveries,
// stats.resubscribed (channels that moved to another master). A publish for a shard that is down fails at
// once (counted in publishFailed, never replayed late). A publish the master refused because the slot moved
// (MOVED, ASK: a planned failover, a resharding; TRYAGAIN, CLUSTERDOWN) or left unanswered when its
// connection was lost is sent again, with the same sequence number, to the slot's master after the next
// slot discovery (stats.retried), for up to RETRY_WINDOW_MS; receivers deliver it once even if the first
// try did arrive. A channel a node drops on its own (its slot moved, a planned failover) is subscribed again
// at once where that node's MOVED answer points, or on the node itself if it still takes it (stats.followed);
// moving a channel to its slot's master, the new subscription is made before the old one ends.
import { randomBytes } from 'node:crypto'
import { channelSlot, ClusterLink, commandPrefix, encodePublish, InFlight, JoinedChannels, LinkCounters, type JoinedChannel } from './channel.js'
import { ClusterError, type Cluster, type ClusterOptions, type ClusterStats } from './cluster.js'
import { ClusterMasters, type MasterNode } from './cluster-masters.js'
import { clusterTargetName, type ClusterTarget } from './cluster-url.js'
import { keySlot } from './key-slot.js'
import { PublishBatches } from './publish-batches.js'
import type { RespConnection } from './resp-connection.js'
import { SeenSequences } from './seen-sequences.js'
import type { PublishToRetry } from './unanswered-publishes.js'

const ORIGIN_BYTES = 8
const SEQUENCE_BYTES = 4
const HEADER_BYTES = ORIGIN_BYTES + SEQUENCE_BYTES
/** Between slot discoveries while a node is down: about the time a replica needs to be promoted. */
const HEAL_INTERVAL_MS = 250
/** The first discovery after an outage began: a master restarted at once is often back by then. */
const FIRST_HEAL_MS = 50
/** The whole initial discovery and connection to every master. */
const START_TIMEOUT_MS = 15_000
const SPUBLISH = commandPrefix('SPUBLISH')
/** How long a refused or unanswered publish is tried again before it counts as failed. */
const RETRY_WINDOW_MS = 2000
/** Error replies that mean "this slot is served elsewhere (or soon)": the publish is sent again. */
const SLOT_MOVED = /^(MOVED|ASK|CLUSTERDOWN|TRYAGAIN) /

interface Channel extends JoinedChannel {
  slot: number
  /** The master the SSUBSCRIBE was confirmed on, while that subscription lives. */
  node: MasterNode | undefined
  /** The address it was last subscribed on: a subscription elsewhere afterwards counts as resubscribed. */
  lastAddress: string | undefined
}

export class RedisShardedCluster implements Cluster {
  readonly #url: string
  readonly #options: ClusterOptions
  readonly #origin = randomBytes(ORIGIN_BYTES)
  #sequence = 0
  readonly #channels = new JoinedChannels<Channel>({
    create: (name, key) => ({ name, key, slot: keySlot(name), refs: 0, node: undefined, lastAddress: undefined, pending: undefined }),
    subscribe: (channel) => this.#subscribe(channel),
    // If the node is down the subscription died with its connection.
    unsubscribe: (channel) => {
      unsubscribe(channel.node?.sub, channel.name)
      channel.node = undefined
    },
    // While a shard is down the subscriber goes live for this instance's own publishers at once.
    live: (channel) => channel.node !== undefined || !this.#link.up,
  })
  readonly #seen = new SeenSequences()
  readonly #inFlight = new InFlight()
  /** When the publish connections write (shared, so that every shard's batch leaves at once). */
  readonly #batches = new PublishBatches()
  #closed = false
  #healTimer: NodeJS.Timeout | undefined
  #healing = false
  /** Channels subscribed again since the last 'lost': reported with 'recovered'. */
  #movedSinceLost = 0
  readonly #counters = new LinkCounters()
  readonly #link: ClusterLink
  #rediscoveries = 0
  #resubscribed = 0
  #duplicates = 0
  #retried = 0
  #followed = 0
  /** Publishes waiting for the next slot discovery to be sent again. */
  #retries: PublishToRetry[] = []
  /** The last origin seen and its id as a string (SeenSequences' key): one string per origin, not per message. */
  #lastOrigin = Buffer.alloc(ORIGIN_BYTES)
  #lastOriginKey: string | undefined
  readonly #masters: ClusterMasters

  private constructor(target: Extract<ClusterTarget, { kind: 'redis-cluster' }>, options: ClusterOptions) {
    this.#url = clusterTargetName(target)
    this.#options = options
    this.#link = new ClusterLink(this.#url, this.#counters, options.onEvent)
    this.#masters = new ClusterMasters(target, this.#batches, {
      published: (master, ok, failed, reason) => {
        if (ok > 0) {
          master.unanswered.answered(ok)
          this.#inFlight.settle(ok)
        }
        if (failed === 0) return
        if (reason !== undefined && SLOT_MOVED.test(reason)) {
          // The slot map is out of date: the discovery it starts tells where these go now.
          this.#retry(master.unanswered.take(failed))
          this.#nodeFailed(`a publish was refused: ${reason}`)
          return
        }
        master.unanswered.answered(failed)
        this.#giveUp(failed)
      },
      // The connection's loss starts a discovery itself (`lost`).
      unanswered: (master, count) => this.#retry(master.unanswered.take(count)),
      message: (buffer, cs, ce, ps, pe) => this.#onMessage(buffer, cs, ce, ps, pe),
      lost: (master, reason) => {
        this.#forget(master)
        this.#nodeFailed(`${master.address}: ${reason}`)
      },
      dropped: (master) => this.#forget(master),
      unsubscribed: (master, name) => {
        // Redis ended the subscription itself: the slot moved (or the node stopped being its master).
        const channel = this.#channels.get(name)
        if (channel?.node !== master) return
        channel.node = undefined
        this.#nodeFailed(`${master.address} dropped ${name}`)
        this.#follow(channel, master)
      },
    })
  }

  static async connect(target: Extract<ClusterTarget, { kind: 'redis-cluster' }>, options: ClusterOptions): Promise<RedisShardedCluster> {
    const cluster = new RedisShardedCluster(target, options)
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        (async () => {
          await cluster.#masters.discover()
          await cluster.#masters.connectAll()
        })(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS))),
      ])
      if (!cluster.#masters.allReady()) throw new Error('not every master answered')
    } catch (err) {
      await cluster.close()
      const reason = [...new Set([(err as Error).message || String(err), cluster.#masters.lastError].filter(Boolean))].join(': ')
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
    const master = this.#masters.masterOf(channelSlot(recipient))
    if (!master?.pub?.ready) {
      this.#counters.publishFailed++
      this.#nodeFailed('a publish found its shard down')
      return
    }
    this.#inFlight.begin()
    this.#send(master, recipient, envelope, this.#sequence)
    this.#sequence = (this.#sequence + 1) >>> 0
  }

  /** Encodes one SPUBLISH on `master`'s publish connection (ready) and remembers it until answered. */
  #send(master: MasterNode, recipient: Uint8Array, envelope: Uint8Array, sequence: number, failedAt?: number): void {
    const pub = master.pub!
    encodePublish(pub.writer, SPUBLISH, recipient, this.#origin, sequence, envelope)
    master.unanswered.push(recipient, envelope, sequence, failedAt)
    pub.sentPublish()
  }

  /** Publishes to send again after the next discovery (they stay in flight for flush() meanwhile). */
  #retry(publishes: PublishToRetry[]): void {
    if (publishes.length === 0) return
    if (this.#closed) return this.#giveUp(publishes.length)
    const now = performance.now()
    for (const p of publishes) p.failedAt ??= now
    this.#retries.push(...publishes)
  }

  /**
   * After a discovery: each waiting publish goes to its slot's master if that one is connected; one whose
   * window ran out counts as failed; the rest wait for the next discovery.
   */
  #resend(): void {
    const now = performance.now()
    const waiting: PublishToRetry[] = []
    for (const p of this.#retries.splice(0)) {
      const master = this.#masters.masterOf(channelSlot(p.recipient))
      if (!this.#closed && master?.pub?.ready) {
        this.#retried++
        this.#send(master, p.recipient, p.envelope, p.sequence, p.failedAt)
      } else if (this.#closed || now - (p.failedAt ?? now) >= RETRY_WINDOW_MS) {
        this.#giveUp(1)
      } else {
        waiting.push(p)
      }
    }
    this.#retries = waiting
    if (this.#retries.length > 0) this.#scheduleHeal()
  }

  /** `count` publishes end as failed: counted, and no longer in flight for flush(). */
  #giveUp(count: number): void {
    this.#counters.publishFailed += count
    this.#inFlight.settle(count)
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
      retried: this.#retried,
      followed: this.#followed,
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#batches.close()
    clearTimeout(this.#healTimer)
    this.#channels.clear()
    this.#masters.close()
    this.#giveUp(this.#retries.splice(0).length)
    this.#link.closed()
  }

  /** `previous`: a node the channel is still subscribed on, unsubscribed once the new subscription is confirmed. */
  #subscribe(channel: Channel, previous?: MasterNode): void {
    const master = this.#masters.masterOf(channel.slot)
    const sub = master?.sub
    if (!master || !sub?.ready) {
      // The shard is down: the healing discovery subscribes it once the slot has a live master.
      channel.pending = undefined
      this.#nodeFailed(`no live master for ${channel.name}`)
      return
    }
    const attempt: Promise<void> = sub.command(['SSUBSCRIBE', channel.name]).then(
      () => {
        if (channel.pending === attempt) channel.pending = undefined
        // Left meanwhile: the subscription it made is not wanted (leave() could not name its node yet).
        if (this.#channels.get(channel.name) !== channel) {
          unsubscribe(sub, channel.name)
          return
        }
        // The connection is gone already: nothing lives there (the previous subscription, if any, still does).
        if (master.sub !== sub || !sub.ready) {
          if (previous?.sub?.ready && channel.node === undefined) channel.node = previous
          return
        }
        channel.node = master
        if (previous !== master) unsubscribe(previous?.sub, channel.name)
        if (channel.lastAddress !== undefined && channel.lastAddress !== master.address) {
          this.#resubscribed++
          this.#movedSinceLost++
        }
        channel.lastAddress = master.address
      },
      (err: Error) => {
        if (channel.pending === attempt) channel.pending = undefined
        // Still subscribed on the previous node: keep receiving there until a discovery finds a way.
        if (previous?.sub?.ready && channel.node === undefined && this.#channels.get(channel.name) === channel) channel.node = previous
        this.#nodeFailed(`subscribing ${channel.name} failed: ${err.message}`)
      },
    )
    channel.pending = attempt
  }

  /**
   * `from` dropped `channel` on its own: its slot moved, or `from` stopped being the shard's master. Asks
   * `from` again: it takes the subscription (as a replica now), or its MOVED answer names the new master,
   * where the channel is subscribed at once. Until then what is published to the channel does not reach us,
   * so this does not wait for the next discovery (which follows anyway and settles what this misses).
   */
  #follow(channel: Channel, from: MasterNode): void {
    const sub = from.sub
    if (!sub?.ready || channel.pending) return
    const attempt: Promise<void> = sub.command(['SSUBSCRIBE', channel.name]).then(
      () => {
        if (channel.pending === attempt) channel.pending = undefined
        // `from` takes it again: the move was undone, or `from` is a replica of the shard now (a planned
        // failover), which Redis 7 hands the shard's messages too. Until the next discovery moves it to the
        // master, the subscription lives there.
        if (this.#channels.get(channel.name) === channel && from.sub === sub && sub.ready) {
          channel.node = from
          this.#followed++
        } else unsubscribe(sub, channel.name)
      },
      async (err: Error) => {
        const to = await this.#masters.redirected(err.message, from.host)
        if (channel.pending === attempt) channel.pending = undefined
        if (!to || this.#closed || this.#channels.get(channel.name) !== channel || channel.node !== undefined || channel.pending) return
        this.#followed++
        this.#subscribe(channel)
      },
    )
    channel.pending = attempt
  }

  #onMessage(buffer: Buffer, channelStart: number, channelEnd: number, payloadStart: number, payloadEnd: number): void {
    if (this.#closed || payloadEnd - payloadStart <= HEADER_BYTES) return
    if (this.#origin.compare(buffer, payloadStart, payloadStart + ORIGIN_BYTES) === 0) return
    // A subscription left behind on a connection after leave(): not ours any more.
    const channel = this.#channels.find(buffer, channelStart, channelEnd)
    if (!channel) return
    if (this.#seen.isDuplicate(this.#originKey(buffer, payloadStart), buffer.readUInt32BE(payloadStart + ORIGIN_BYTES))) {
      this.#duplicates++
      return
    }
    this.#counters.received++
    // A view of the received bytes: deliver copies what it keeps (the gRPC frame).
    this.#options.deliver(channel.key, buffer.subarray(payloadStart + HEADER_BYTES, payloadEnd))
  }

  #originKey(buffer: Buffer, at: number): string {
    if (this.#lastOriginKey === undefined || this.#lastOrigin.compare(buffer, at, at + ORIGIN_BYTES) !== 0) {
      buffer.copy(this.#lastOrigin, 0, at, at + ORIGIN_BYTES)
      this.#lastOriginKey = this.#lastOrigin.toString('latin1')
    }
    return this.#lastOriginKey
  }

  /** A node failed (or something routed to one did): report the outage once, and heal soon. */
  #nodeFailed(reason: string): void {
    if (this.#closed || !this.#link.everConnected) return
    if (this.#link.up) {
      this.#movedSinceLost = 0
      this.#link.lost(reason)
      return this.#scheduleHeal(FIRST_HEAL_MS)
    }
    this.#scheduleHeal()
  }

  /** The subscriptions on `master` are gone with its connections. */
  #forget(master: MasterNode): void {
    for (const channel of this.#channels.values()) if (channel.node === master) channel.node = undefined
  }

  #scheduleHeal(delayMs = HEAL_INTERVAL_MS): void {
    if (this.#closed || this.#healTimer || this.#healing) return
    this.#healTimer = setTimeout(() => void this.#heal(), delayMs)
  }

  /** Fetches the slot map again, connects its masters and subscribes every channel not live on its slot's master. */
  async #heal(): Promise<void> {
    this.#healTimer = undefined
    this.#healing = true
    try {
      await this.#masters.discover()
      this.#rediscoveries++
      if (this.#closed) return
      await this.#masters.connectAll()
      if (this.#closed) return
      for (const channel of this.#channels.values()) {
        const master = this.#masters.masterOf(channel.slot)
        if (channel.pending || !master?.sub?.ready || channel.node === master) continue
        // Its slot moved away from a node that still answers: subscribe on the new master first and only then
        // stop the copy arriving from the old node, so that nothing falls between (what arrives on both
        // meanwhile is delivered once: SeenSequences).
        const previous = channel.node?.sub?.ready ? channel.node : undefined
        channel.node = undefined
        this.#subscribe(channel, previous)
      }
      await Promise.allSettled([...this.#channels.values()].map((c) => c.pending))
    } catch {
      // No node answered the discovery: tried again below.
    } finally {
      this.#healing = false
    }
    if (this.#closed) return
    this.#resend()
    const healthy = this.#masters.allReady() && [...this.#channels.values()].every((c) => c.node !== undefined && c.node === this.#masters.masterOf(c.slot))
    if (!healthy) return this.#scheduleHeal()
    this.#link.recovered({ resubscribed: this.#movedSinceLost })
  }
}

/** Ends our subscription of `name` on `sub` while that connection is up (best effort: it may go meanwhile). */
function unsubscribe(sub: RespConnection | undefined, name: string): void {
  if (sub?.ready) sub.command(['SUNSUBSCRIBE', name]).catch(() => {})
}
