// What the Redis transports (redis-cluster.ts, redis-sharded.ts) share: the channel a recipient key maps to,
// how long a join waits for the broker's confirmation, the publishes a drain waits for, and whether the link
// to the broker is up (told as ClusterEvents).
import type { ClusterEvent } from './cluster.js'
import { keySlot, keySlotOfBytes } from './key-slot.js'
import { base64Into, base64Length, type RespWriter } from './resp.js'

const CHANNEL_PREFIX = 'cunicu:env:'
const CHANNEL_PREFIX_BYTES = Buffer.from(CHANNEL_PREFIX)
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
 * Publishes not yet answered by the broker, so that flush() (a drain) can wait for them. A count, nothing per
 * envelope: the connections report answers in numbers (resp-connection.ts `published`).
 */
export class InFlight {
  #pending = 0
  #drained: (() => void)[] = []

  begin(): void {
    this.#pending++
  }

  /** `count` publishes answered, refused or lost. */
  settle(count: number): void {
    this.#pending -= count
    if (this.#pending <= 0) {
      this.#pending = 0
      for (const resolve of this.#drained.splice(0)) resolve()
    }
  }

  flush(): Promise<void> {
    return this.#pending === 0 ? Promise.resolve() : new Promise((resolve) => this.#drained.push(resolve))
  }
}

/**
 * A publish of `envelope` for `recipient` as one RESP command (PUBLISH or SPUBLISH), into `writer`: the channel
 * name and the payload (`header` + `sequence` if given + envelope) written piece by piece, no string or
 * concatenated Buffer per envelope.
 */
export function encodePublish(writer: RespWriter, command: Buffer, recipient: Uint8Array, header: Buffer, sequence: number | undefined, envelope: Uint8Array): void {
  const payload = header.length + (sequence === undefined ? 0 : 4) + envelope.length
  const nameLength = CHANNEL_PREFIX_BYTES.length + base64Length(recipient.length)
  writer.reserve(command.length + nameLength + payload + 40)
  writer.bytes(command).byte(0x24).decimal(nameLength).crlf().bytes(CHANNEL_PREFIX_BYTES).base64(recipient).crlf()
  writer.byte(0x24).decimal(payload).crlf().bytes(header)
  if (sequence !== undefined) writer.uint32(sequence)
  writer.bytes(envelope).crlf()
}

/** `*3\r\n$N\r\nNAME\r\n`: the start of a three-argument command, for encodePublish. */
export function commandPrefix(name: string): Buffer {
  return Buffer.from(`*3\r\n$${name.length}\r\n${name}\r\n`)
}

const slotScratch = Buffer.allocUnsafe(256)

/** The Redis Cluster slot of `recipient`'s channel, without building the name as a string. */
export function channelSlot(recipient: Uint8Array): number {
  if (CHANNEL_PREFIX_BYTES.length + base64Length(recipient.length) > slotScratch.length) return keySlot(channelName(recipient))
  CHANNEL_PREFIX_BYTES.copy(slotScratch, 0)
  return keySlotOfBytes(slotScratch, base64Into(recipient, slotScratch, CHANNEL_PREFIX_BYTES.length))
}

export interface JoinedChannel {
  readonly name: string
  /** The recipient key the channel carries (what deliver() is called with). */
  readonly key: Uint8Array
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
  /** The same channels by a hash of the name's bytes, so that a received message finds its channel without a string. */
  readonly #byHash = new Map<number, { name: Buffer; channel: C }[]>()

  constructor(private readonly hooks: JoinedChannelHooks<C>) {}

  join(recipient: Uint8Array): Promise<void> {
    const name = channelName(recipient)
    let channel = this.#byName.get(name)
    if (!channel) {
      channel = this.hooks.create(name, Uint8Array.from(recipient))
      this.#byName.set(name, channel)
      const bytes = Buffer.from(name, 'latin1')
      const hash = nameHash(bytes, 0, bytes.length)
      const bucket = this.#byHash.get(hash)
      if (bucket) bucket.push({ name: bytes, channel })
      else this.#byHash.set(hash, [{ name: bytes, channel }])
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
    const hash = nameHash(Buffer.from(name, 'latin1'), 0, name.length)
    const bucket = this.#byHash.get(hash)?.filter((entry) => entry.channel !== channel)
    if (bucket?.length) this.#byHash.set(hash, bucket)
    else this.#byHash.delete(hash)
    this.hooks.unsubscribe(channel)
  }

  /** The live channel whose name is `buffer[start, end)` (a received message's channel). */
  find(buffer: Buffer, start: number, end: number): C | undefined {
    const bucket = this.#byHash.get(nameHash(buffer, start, end))
    if (!bucket) return undefined
    for (const entry of bucket) if (entry.name.length === end - start && entry.name.compare(buffer, start, end) === 0) return entry.channel
    return undefined
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
    this.#byHash.clear()
  }
}

/** FNV-1a over the bytes of a channel name (ASCII). */
function nameHash(buffer: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ buffer[i]!, 0x01000193)
  return hash >>> 0
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
