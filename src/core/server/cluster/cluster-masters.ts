// The masters of a Redis Cluster and our two connections to each (one publishes, one subscribes), for
// redis-sharded.ts: which master serves a slot (from CLUSTER SLOTS, asked of a live master or, when none is
// left, of every node the cluster ever named, replicas too), connecting to new masters and dropping the
// connections of nodes that are no masters any more. What to do about a failure is the transport's call:
// it hears of a lost master, a dropped master and a subscription Redis ended on its own.
import type { ClusterNode, ClusterTarget } from './cluster-url.js'
import { formatNode } from './cluster-url.js'
import type { PublishBatches } from './publish-batches.js'
import { RespConnection, type RespEndpoint } from './resp-connection.js'
import { slotMapFrom, SLOTS } from './slot-map.js'
import { UnansweredPublishes } from './unanswered-publishes.js'

const CONNECT_TIMEOUT_MS = 5000
/** A discovery tries node after node: one that does not answer must not hold the others up long. */
const DISCOVERY_CONNECT_TIMEOUT_MS = 2000

/** A master of the current slot map and our two connections to it (undefined while down or connecting). */
export interface MasterNode {
  readonly address: string
  readonly host: string
  readonly port: number
  pub: RespConnection | undefined
  sub: RespConnection | undefined
  connecting: Promise<void> | undefined
  /** What `pub` sent and this master has not answered yet (the transport appends, the answers remove). */
  readonly unanswered: UnansweredPublishes
}

export interface ClusterMastersEvents {
  /** Answers on `master`'s publish connection (RespConnectionEvents.published). */
  published(master: MasterNode, ok: number, failed: number, reason: string | undefined): void
  /** `master`'s publish connection ended with `count` publishes unanswered (RespConnectionEvents.unanswered). */
  unanswered(master: MasterNode, count: number, reason: string): void
  /** A Pub/Sub message on any master's subscriber connection (see RespConnectionEvents.message). */
  message(buffer: Buffer, channelStart: number, channelEnd: number, payloadStart: number, payloadEnd: number): void
  /** A connection of `master` failed; both are closed already, the subscriptions on it are gone. */
  lost(master: MasterNode, reason: string): void
  /** `master` is no master any more (a discovery said so); its connections are closed. */
  dropped(master: MasterNode): void
  /** Redis ended the subscription of `channel` on `master` on its own (its slot moved). */
  unsubscribed(master: MasterNode, channel: string): void
}

export class ClusterMasters {
  /** Slot → its master, from the last CLUSTER SLOTS. */
  #slots: (MasterNode | undefined)[] = new Array<MasterNode | undefined>(SLOTS)
  readonly #masters = new Map<string, MasterNode>()
  /** Every node address the cluster named (replicas too): where a discovery may start when the masters are gone. */
  readonly #known = new Set<string>()
  #closed = false
  /** Why the last discovery or connection failed: "unreachable" alone would not say that a node is not in cluster mode. */
  lastError: string | undefined

  constructor(
    private readonly target: Extract<ClusterTarget, { kind: 'redis-cluster' }>,
    private readonly batches: PublishBatches,
    private readonly events: ClusterMastersEvents,
  ) {
    for (const node of target.nodes) this.#known.add(formatNode(node))
  }

  masterOf(slot: number): MasterNode | undefined {
    return this.#slots[slot]
  }

  allReady(): boolean {
    return this.#masters.size > 0 && [...this.#masters.values()].every((m) => m.pub?.ready && m.sub?.ready)
  }

  /** CLUSTER SLOTS from the first node that answers (a live master first, then every node ever named). */
  async discover(): Promise<void> {
    const live = [...this.#masters.values()].filter((m) => m.pub?.ready)
    const others = [...this.#known].filter((address) => !live.some((m) => m.address === address))
    for (const master of live) {
      try {
        return this.#adopt(await master.pub!.command(['CLUSTER', 'SLOTS']), master.host)
      } catch (err) {
        this.lastError = (err as Error).message
      }
    }
    for (const address of others) {
      if (this.#closed) return
      const node = parseAddress(address)
      let connection: RespConnection | undefined
      try {
        connection = await RespConnection.open(this.#endpoint(node), {}, { connectTimeoutMs: DISCOVERY_CONNECT_TIMEOUT_MS })
        return this.#adopt(await connection.command(['CLUSTER', 'SLOTS']), node.host)
      } catch (err) {
        this.lastError = (err as Error).message || String(err)
      } finally {
        connection?.close()
      }
    }
    throw new Error(this.lastError ?? 'no node answered')
  }

  /**
   * A node answered "MOVED <slot> <host>:<port>" (or ASK): that node serves the slot now, until the next
   * discovery says otherwise. Connects to it if it is new to us; resolves with it once both its connections
   * are up (undefined if the answer is no redirect, or the node cannot be reached).
   */
  async redirected(answer: string, askedHost: string): Promise<MasterNode | undefined> {
    const match = /^(?:MOVED|ASK) (\d+) (.+)$/.exec(answer)
    const slot = Number(match?.[1])
    if (!match || this.#closed || !(slot >= 0 && slot < SLOTS)) return undefined
    const { host, port } = parseAddress(match[2]!)
    if (!(port > 0 && port < 65_536)) return undefined
    // An empty host means the node that answered (Redis leaves it out when it does not know its own address).
    const node = { host: host || askedHost, port }
    const address = formatNode(node)
    let master = this.#masters.get(address)
    if (!master) {
      master = newMaster(address, node)
      this.#masters.set(address, master)
      this.#known.add(address)
    }
    this.#slots[slot] = master
    await this.#connect(master)
    return master.pub?.ready && master.sub?.ready ? master : undefined
  }

  /** Opens both connections of every master that has none; resolves when every attempt settled. */
  async connectAll(): Promise<void> {
    await Promise.allSettled([...this.#masters.values()].map((master) => this.#connect(master)))
  }

  /** Closes both connections of `master` (they tell nothing more). */
  disconnect(master: MasterNode): void {
    master.pub?.close()
    master.sub?.close()
    master.pub = undefined
    master.sub = undefined
  }

  close(): void {
    this.#closed = true
    for (const master of this.#masters.values()) this.disconnect(master)
    this.#masters.clear()
  }

  /** Takes a CLUSTER SLOTS reply as the slot map: new masters are added, nodes no longer masters dropped. */
  #adopt(reply: unknown, askedHost: string): void {
    const map = slotMapFrom(reply, askedHost)
    if (map.ranges.length === 0) throw new Error('the cluster serves no slots')
    for (const address of map.nodes) this.#known.add(address)
    const slots = new Array<MasterNode | undefined>(SLOTS)
    const masters = new Map<string, MasterNode>()
    for (const range of map.ranges) {
      const address = formatNode(range.master)
      let master = masters.get(address) ?? this.#masters.get(address)
      if (!master) master = newMaster(address, range.master)
      masters.set(address, master)
      for (let slot = range.from; slot <= range.to; slot++) slots[slot] = master
    }
    const dropped = [...this.#masters.values()].filter((old) => !masters.has(old.address))
    this.#masters.clear()
    for (const [address, master] of masters) this.#masters.set(address, master)
    this.#slots = slots
    for (const old of dropped) {
      this.disconnect(old)
      this.events.dropped(old)
    }
  }

  #connect(master: MasterNode): Promise<void> {
    if (master.pub?.ready && master.sub?.ready) return Promise.resolve()
    if (master.connecting) return master.connecting
    this.disconnect(master)
    const endpoint = this.#endpoint(master)
    const lost = (reason: string): void => {
      if (this.#closed) return
      this.disconnect(master)
      this.events.lost(master, reason)
    }
    const attempt = Promise.allSettled([
      RespConnection.open(
        endpoint,
        {
          published: (ok, failed, reason) => this.events.published(master, ok, failed, reason),
          unanswered: (count, reason) => this.events.unanswered(master, count, reason),
          closed: lost,
        },
        { connectTimeoutMs: CONNECT_TIMEOUT_MS, batches: this.batches },
      ),
      RespConnection.open(
        endpoint,
        { closed: lost, message: this.events.message, unsubscribed: (_kind, channel) => this.events.unsubscribed(master, channel) },
        { subscriber: true, connectTimeoutMs: CONNECT_TIMEOUT_MS },
      ),
    ]).then((opened) => {
      master.connecting = undefined
      const [pub, sub] = opened.map((o) => (o.status === 'fulfilled' ? o.value : undefined))
      const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected')
      if (failed || this.#closed || this.#masters.get(master.address) !== master || !pub!.ready || !sub!.ready) {
        pub?.close()
        sub?.close()
        if (failed) this.lastError = `${master.address}: ${(failed.reason as Error).message}`
        return
      }
      master.pub = pub
      master.sub = sub
    })
    master.connecting = attempt
    return attempt
  }

  #endpoint(node: ClusterNode): RespEndpoint {
    const t = this.target
    return {
      host: node.host,
      port: node.port,
      tls: t.tls,
      ...(t.username !== undefined ? { username: t.username } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
    }
  }
}

/** A master we have no connection to yet. */
function newMaster(address: string, node: ClusterNode): MasterNode {
  return { address, host: node.host, port: node.port, pub: undefined, sub: undefined, connecting: undefined, unanswered: new UnansweredPublishes() }
}

function parseAddress(address: string): ClusterNode {
  const colon = address.lastIndexOf(':')
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(colon + 1)) }
}
