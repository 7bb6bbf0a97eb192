// One connection to one Redis node for the cluster transports, for the lifetime of one socket: connect (TCP or
// TLS), AUTH, then commands whose replies come back in order. A lost connection is not reconnected here: the
// transport that owns it decides when and where to connect again (redis-cluster.ts with a back-off,
// redis-sharded.ts after a slot discovery).
//
// The hot operations avoid node-redis's per-command objects and promises (BENCHMARKS.md finding 8a):
// publishes are encoded by the caller into the connection's RespWriter, sent in one write per batch
// (publish-batches.ts: per tick while idle, at most one a millisecond while busy), and their
// integer replies are only counted (the pending ones as runs of numbers in the reply queue); a subscriber
// connection hands each Pub/Sub message to `message` as offsets into the received bytes.
import { connect as connectTcp, type Socket } from 'node:net'
import { connect as connectTls } from 'node:tls'
import { PublishBatches } from './publish-batches.js'
import { RespError, RespParser, RespWriter, type RespValue } from './resp.js'

export interface RespEndpoint {
  host: string
  port: number
  tls?: boolean
  username?: string
  password?: string
}

export interface RespConnectionEvents {
  /** The connection failed after it was open (not after close()); nothing more is called afterwards. */
  closed?(reason: string): void
  /** Publishes answered (`failed`: refused, `reason` is the error reply). */
  published?(ok: number, failed: number, reason: string | undefined): void
  /** The connection ended with `count` publishes unanswered: each may or may not have reached Redis. */
  unanswered?(count: number, reason: string): void
  /** A Pub/Sub message: channel and payload are `buffer[start, end)`, valid only during the call. */
  message?(buffer: Buffer, channelStart: number, channelEnd: number, payloadStart: number, payloadEnd: number): void
  /** Redis ended a subscription nobody asked to end (a sharded channel's slot moved away): kind and channel. */
  unsubscribed?(kind: string, channel: string): void
}

export interface RespConnectionOptions {
  /** A subscriber connection: Pub/Sub messages go to `message`, subscribe confirmations answer their commands. */
  subscriber?: boolean
  connectTimeoutMs?: number
  /** When publishes are written; shared by a transport's connections. Default: this connection's own. */
  batches?: PublishBatches
}

/** A command waiting for its reply; the reply queue holds these and, for publishes, counts (see #queue). */
interface Waiter {
  resolve(value: RespValue): void
  reject(err: Error): void
  /**
   * SUBSCRIBE & co. ("ssubscribe CHANNEL"): answered by the confirmation array of that kind and channel (one per
   * channel: we send one channel per command), so that one Redis sends on its own is not taken for it.
   */
  confirmation: string | undefined
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000
const KEEPALIVE_MS = 5000
const CONFIRMATIONS = new Set(['subscribe', 'unsubscribe', 'ssubscribe', 'sunsubscribe', 'psubscribe', 'punsubscribe'])
/** Queue entries consumed before the array is compacted. */
const COMPACT_AT = 1024

export class RespConnection {
  readonly writer = new RespWriter()
  readonly #socket: Socket
  readonly #events: RespConnectionEvents
  readonly #parser: RespParser
  /** Reply order: a Waiter per command, a number per run of consecutive publishes still unanswered. */
  #queue: (Waiter | number)[] = []
  #head = 0
  #pendingPublishes = 0
  readonly #batches: PublishBatches
  /** The batches were made for this connection alone (not shared by a transport): closed with it. */
  readonly #ownBatches: boolean
  /** Handed to #batches already: flushed with its next batch. */
  #flushDue = false
  #open = false
  #ended = false

  private constructor(socket: Socket, events: RespConnectionEvents, subscriber: boolean, batches: PublishBatches | undefined) {
    this.#ownBatches = batches === undefined
    this.#batches = batches ?? new PublishBatches()
    this.#socket = socket
    this.#events = events
    this.#parser = new RespParser(
      {
        integer: (value) => this.#reply(value),
        value: (value, push) => this.#value(value, push),
        message: (buffer, cs, ce, ps, pe) => {
          if (!this.#ended) this.#events.message?.(buffer, cs, ce, ps, pe)
        },
      },
      subscriber,
    )
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#parser.feed(chunk)
      } catch (err) {
        this.#fail((err as Error).message)
      }
    })
    socket.on('error', (err) => this.#fail(err.message || String(err)))
    socket.on('close', () => this.#fail('connection closed'))
  }

  /** Connects and authenticates; rejects with the reason (timeout, refused, AUTH failed). */
  static async open(endpoint: RespEndpoint, events: RespConnectionEvents, options: RespConnectionOptions = {}): Promise<RespConnection> {
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    const { host, port } = endpoint
    const socket = endpoint.tls ? connectTls({ host, port, servername: isIp(host) ? undefined : host }) : connectTcp({ host, port })
    const connection = new RespConnection(socket, events, options.subscriber ?? false, options.batches)
    const timer = setTimeout(() => connection.#fail(`no answer within ${timeoutMs} ms`), timeoutMs)
    try {
      await new Promise<void>((resolve, reject) => {
        connection.#whenFailed = reject
        socket.once(endpoint.tls ? 'secureConnect' : 'connect', () => resolve())
      })
      socket.setNoDelay(true)
      socket.setKeepAlive(true, KEEPALIVE_MS)
      if (endpoint.password !== undefined) {
        await connection.command(endpoint.username !== undefined ? ['AUTH', endpoint.username, endpoint.password] : ['AUTH', endpoint.password])
      }
    } catch (err) {
      connection.close()
      throw err
    } finally {
      clearTimeout(timer)
      connection.#whenFailed = undefined
    }
    connection.#open = true
    return connection
  }

  /** Rejects open() while it runs. */
  #whenFailed: ((err: Error) => void) | undefined

  get ready(): boolean {
    return this.#open && !this.#ended
  }

  get pendingPublishes(): number {
    return this.#pendingPublishes
  }

  /** Sends a command at once; resolves with its reply, rejects with RespError for an error reply or on loss. */
  command(args: readonly (string | Uint8Array)[]): Promise<RespValue> {
    if (this.#ended) return Promise.reject(new Error('connection closed'))
    const kind = String(args[0]).toLowerCase()
    const confirmation = CONFIRMATIONS.has(kind) ? `${kind} ${String(args[1])}` : undefined
    return new Promise<RespValue>((resolve, reject) => {
      this.#queue.push({ resolve, reject, confirmation })
      this.writer.command(args)
      this.flush()
    })
  }

  /**
   * One publish the caller just encoded into `writer` (a whole PUBLISH/SPUBLISH command): its reply is
   * counted, and the writer goes out with everything else this tick.
   */
  sentPublish(): void {
    this.#pendingPublishes++
    const last = this.#queue.length - 1
    if (last >= this.#head && typeof this.#queue[last] === 'number') (this.#queue[last] as number)++
    else this.#queue.push(1)
    if (!this.#flushDue) {
      this.#flushDue = true
      this.#batches.add(this)
    }
  }

  /** Idempotent. Pending commands fail, pending publishes are reported `unanswered`; `closed` is not called. */
  close(): void {
    this.#end('connection closed by us')
    this.#socket.destroy()
  }

  /** Writes what the writer holds (PublishBatches calls it). */
  flush(): void {
    this.#flushDue = false
    if (this.#ended || this.writer.length === 0) return
    this.#socket.write(this.writer.take())
  }

  /** An integer reply: a publish's (the common case) or a command's. */
  #reply(value: RespValue): void {
    if (this.#ended) return
    const head = this.#queue[this.#head]
    if (head === undefined) return this.#fail('a reply nobody asked for')
    if (typeof head === 'number') {
      this.#pendingPublishes--
      if (head === 1) this.#shift()
      else this.#queue[this.#head] = head - 1
      this.#events.published?.(value instanceof RespError ? 0 : 1, value instanceof RespError ? 1 : 0, value instanceof RespError ? value.message : undefined)
      return
    }
    this.#shift()
    if (value instanceof RespError) head.reject(value)
    else head.resolve(value)
  }

  #value(value: RespValue, push: boolean): void {
    if (this.#ended) return
    // A subscribe-family array: the confirmation of the command at the head, or Redis ending one on its own.
    const kind = Array.isArray(value) && value[0] instanceof Buffer ? value[0].toString('latin1').toLowerCase() : undefined
    if (kind !== undefined && CONFIRMATIONS.has(kind)) {
      const head = this.#queue[this.#head]
      const channel = String((value as RespValue[])[1])
      if (typeof head === 'object' && head.confirmation === `${kind} ${channel}`) {
        this.#shift()
        head.resolve(value)
      } else if (kind === 'unsubscribe' || kind === 'sunsubscribe') {
        this.#events.unsubscribed?.(kind, channel)
      }
      return
    }
    // Other pushes (RESP3 invalidations and the like) answer nothing.
    if (push) return
    this.#reply(value)
  }

  #shift(): void {
    this.#queue[this.#head++] = 0
    if (this.#head === this.#queue.length) {
      this.#queue = []
      this.#head = 0
    } else if (this.#head >= COMPACT_AT) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
  }

  #fail(reason: string): void {
    const wasOpen = this.#open
    if (!this.#end(reason)) return
    this.#socket.destroy()
    this.#whenFailed?.(new Error(reason))
    if (wasOpen) this.#events.closed?.(reason)
  }

  /** Fails everything pending; false when it had ended already. */
  #end(reason: string): boolean {
    if (this.#ended) return false
    this.#ended = true
    if (this.#ownBatches) this.#batches.close()
    const queue = this.#queue.slice(this.#head)
    const lost = this.#pendingPublishes
    this.#queue = []
    this.#head = 0
    this.#pendingPublishes = 0
    for (const entry of queue) if (typeof entry === 'object') entry.reject(new Error(reason))
    if (lost > 0) this.#events.unanswered?.(lost, reason)
    return true
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':')
}
