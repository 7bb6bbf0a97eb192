// `session --forward`: carries UDP datagrams between a local UDP port and the peer over the selected ICE pair.
//
// Raw (the default, WIRE.md §8, what cunīcu does): each datagram goes over the pair unchanged, and the
// reverse, from the moment ICE is connected. Nothing authenticates a datagram for us then, so the agent's
// datagram tap (pair-datagrams.ts) lets only datagrams from the selected pair's remote address through to
// here; the app (WireGuard) authenticates its own packets.
//
// Sealed (`--seal`, both peers cunicu-ts, forward-seal.ts): each datagram sealed with a key of the ICE
// agent generation, so datagrams of an earlier agent (or a replay) never open later.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { isIP } from 'node:net'
import { Emitter } from '../emitter.js'
import type { IceRole } from '../keys.js'
import { isForwardDatagram, MAX_FORWARD_PAYLOAD, openForward, ReplayWindow, sealForward } from './forward-seal.js'

export class ForwardError extends Error {
  override name = 'ForwardError'
}

export interface ForwardCounters {
  datagrams: number
  bytes: number
}

/** What a 'forward' event tells: cumulative counters for the session, rates over the last interval. */
export interface ForwardStats {
  /** The local UDP address we listen on. */
  local: string
  /** Where datagrams from the peer go: --forward-to, or the last local sender. */
  app?: string
  /** "raw" (WIRE.md §8, cunīcu's data plane) or "sealed" (--seal). */
  mode: ForwardMode
  /** Whether a connected ICE path is attached. */
  active: boolean
  /** From the local app to the peer. */
  sent: ForwardCounters
  /** From the peer to the local app. */
  received: ForwardCounters
  /** Sealed only: peer datagrams never received (gaps in its counter). */
  lost: number
  /** Sealed only: lost / (received + lost), percent. */
  lossPercent: number
  /** Sealed only: valid datagrams that arrived a second time (refused). */
  replayed: number
  /** Sealed only: datagrams with our magic that did not open (tampered, other key, stale agent). */
  invalid: number
  /** Datagrams that reached our ICE sockets from anywhere but the selected pair's remote address: dropped. */
  foreign: number
  /** Local datagrams dropped because no connected path was attached (or consent had expired). */
  notConnected: number
  /** Peer datagrams dropped because no local app address is known yet (no --forward-to, nothing sent locally). */
  noApp: number
  /** Local datagrams over the size limit, and failed sends. */
  errors: number
  /** Over the last interval. */
  rate: { sentBitsPerSecond: number; receivedBitsPerSecond: number; sentPerSecond: number; receivedPerSecond: number }
}

export type ForwardMode = 'raw' | 'sealed'

export interface ForwarderOptions {
  /** "HOST:PORT" to bind (port 0: any). */
  listen: string
  /** "HOST:PORT" to deliver the peer's datagrams to; default: the last local address that sent us one. */
  to?: string
  /** Default "raw". */
  mode?: ForwardMode
  /** How often stats are emitted while a path is attached. Default 1000 ms. */
  intervalMs?: number
}

/** One connected ICE agent's path. */
export interface ForwardLink {
  /** One datagram on the selected pair; false when it could not be sent (no pair, consent expired). */
  send: (datagram: Uint8Array) => boolean
  /** Sealed mode: the agent generation's key and our ICE role (the nonce space we seal in). */
  seal?: { key: Uint8Array; role: IceRole }
}

interface Endpoint {
  address: string
  port: number
}

interface AttachedLink {
  send: (datagram: Uint8Array) => boolean
  seal?: { key: Uint8Array; role: IceRole; peerRole: IceRole; counter: bigint; window: ReplayWindow }
}

export function parseUdpAddress(text: string, what: string): Endpoint {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim())
  const port = match ? Number(match[3]) : NaN
  const address = match ? (match[1] ?? match[2] ?? '') : ''
  if (!match || port > 65535 || !isIP(address)) throw new ForwardError(`${what} "${text}" is not IP:PORT (e.g. 127.0.0.1:51820 or [::1]:51820)`)
  return { address, port }
}

const formatEndpoint = (e: Endpoint) => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`)

export class Forwarder {
  readonly stats = new Emitter<ForwardStats>()
  readonly errors = new Emitter<string>()
  readonly mode: ForwardMode
  readonly #socket: Socket
  readonly #local: Endpoint
  readonly #fixedApp: boolean
  readonly #intervalMs: number
  /** Where the peer's datagrams go; fields updated in place (no object per datagram on the hot path). */
  readonly #app: Endpoint = { address: '', port: 0 }
  #hasApp = false
  #link?: AttachedLink
  #timer?: NodeJS.Timeout
  #closed = false
  #lostBefore = 0
  readonly #sent: ForwardCounters = { datagrams: 0, bytes: 0 }
  readonly #received: ForwardCounters = { datagrams: 0, bytes: 0 }
  #replayed = 0
  #invalid = 0
  #foreign = 0
  #notConnected = 0
  #noApp = 0
  #errors = 0
  #last = { at: performance.now(), sentBytes: 0, receivedBytes: 0, sent: 0, received: 0 }
  /** One callback for every send to the app (not a closure per datagram). */
  readonly #onAppSent = (err: Error | null) => {
    if (err) this.#errors++
  }

  private constructor(socket: Socket, local: Endpoint, options: ForwarderOptions) {
    this.#socket = socket
    this.#local = local
    this.mode = options.mode ?? 'raw'
    this.#intervalMs = options.intervalMs ?? 1000
    if (options.to) {
      const to = parseUdpAddress(options.to, 'forward destination')
      this.#setApp(to.address, to.port)
    }
    this.#fixedApp = Boolean(options.to)
    socket.on('message', (msg, rinfo) => this.#onLocal(msg, rinfo))
    socket.on('error', (err) => this.errors.emit(`forward socket ${formatEndpoint(local)}: ${err.message}`))
  }

  /** Binds the local socket; throws ForwardError naming the address when it cannot. */
  static async open(options: ForwarderOptions): Promise<Forwarder> {
    const want = parseUdpAddress(options.listen, 'forward address')
    if (options.to) parseUdpAddress(options.to, 'forward destination')
    const socket = createSocket({ type: isIP(want.address) === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(want.port, want.address, () => {
        socket.off('error', reject)
        resolve()
      })
    }).catch((err: unknown) => {
      socket.close()
      throw new ForwardError(`cannot listen for forwarding on ${options.listen}: ${(err as Error).message}`)
    })
    const bound = socket.address()
    return new Forwarder(socket, { address: bound.address, port: bound.port }, options)
  }

  /** The bound "HOST:PORT". */
  get address(): string {
    return formatEndpoint(this.#local)
  }

  get sealed(): boolean {
    return this.mode === 'sealed'
  }

  get active(): boolean {
    return this.#link !== undefined
  }

  /** Starts carrying datagrams over a connected path; replaces an earlier link (sealed: new counters, new window). */
  attach(link: ForwardLink): void {
    if (this.#closed) return
    if (this.sealed && !link.seal) throw new ForwardError('a sealed forwarder needs a key for each path')
    this.#retireLink()
    const attached: AttachedLink = { send: link.send }
    if (this.sealed && link.seal) {
      const { key, role } = link.seal
      attached.seal = { key, role, peerRole: role === 'controlling' ? 'controlled' : 'controlling', counter: 0n, window: new ReplayWindow() }
    }
    this.#link = attached
    this.#emitStats()
    clearInterval(this.#timer)
    this.#timer = setInterval(() => this.#emitStats(), this.#intervalMs)
  }

  /** Stops carrying (the path is gone); local datagrams are counted as notConnected until the next attach. */
  detach(): void {
    if (!this.#link) return
    this.#retireLink()
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#emitStats()
  }

  /**
   * A datagram from the selected pair that is not a path probe: raw mode delivers it as it is; sealed mode
   * delivers it only when it opens under the current path's key, once. Never throws.
   */
  handle(datagram: Buffer): void {
    const link = this.#link
    if (!link || this.#closed) {
      if (this.sealed) this.#invalid++
      else this.#notConnected++
      return
    }
    let payload: Uint8Array = datagram
    if (link.seal) {
      const opened = isForwardDatagram(datagram) ? openForward(link.seal.key, link.seal.peerRole, datagram) : undefined
      if (!opened) {
        this.#invalid++
        return
      }
      if (!link.seal.window.accept(opened.counter)) {
        this.#replayed++
        return
      }
      payload = opened.payload
    }
    if (!this.#hasApp) {
      this.#noApp++
      return
    }
    this.#received.datagrams++
    this.#received.bytes += payload.length
    this.#socket.send(payload, this.#app.port, this.#app.address, this.#onAppSent)
  }

  /** A datagram that reached the ICE sockets from another address than the selected pair's: counted, dropped. */
  noteForeign(): void {
    this.#foreign++
  }

  /** Idempotent: emits the final stats and frees the socket and the timer. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.detach()
    this.#closed = true
    clearInterval(this.#timer)
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()))
  }

  /** Current counters (also what each 'forward' event carries). */
  snapshot(): ForwardStats {
    const now = performance.now()
    const seconds = Math.max((now - this.#last.at) / 1000, 0.001)
    const lost = this.#lostBefore + (this.#link?.seal?.window.missing ?? 0)
    const rate = {
      sentBitsPerSecond: Math.round(((this.#sent.bytes - this.#last.sentBytes) * 8) / seconds),
      receivedBitsPerSecond: Math.round(((this.#received.bytes - this.#last.receivedBytes) * 8) / seconds),
      sentPerSecond: Math.round((this.#sent.datagrams - this.#last.sent) / seconds),
      receivedPerSecond: Math.round((this.#received.datagrams - this.#last.received) / seconds),
    }
    const total = this.#received.datagrams + this.#noApp + lost
    const stats: ForwardStats = {
      local: this.address,
      mode: this.mode,
      active: this.active,
      sent: { ...this.#sent },
      received: { ...this.#received },
      lost,
      lossPercent: total === 0 ? 0 : Math.round((lost / total) * 10_000) / 100,
      replayed: this.#replayed,
      invalid: this.#invalid,
      foreign: this.#foreign,
      notConnected: this.#notConnected,
      noApp: this.#noApp,
      errors: this.#errors,
      rate,
    }
    if (this.#hasApp) stats.app = formatEndpoint(this.#app)
    return stats
  }

  #emitStats(): void {
    const stats = this.snapshot()
    this.#last = { at: performance.now(), sentBytes: this.#sent.bytes, receivedBytes: this.#received.bytes, sent: this.#sent.datagrams, received: this.#received.datagrams }
    this.stats.emit(stats)
  }

  #retireLink(): void {
    if (this.#link?.seal) this.#lostBefore += this.#link.seal.window.missing
    this.#link = undefined
  }

  #setApp(address: string, port: number): void {
    this.#app.address = address
    this.#app.port = port
    this.#hasApp = true
  }

  #onLocal(payload: Buffer, from: RemoteInfo): void {
    if (this.#closed) return
    if (!this.#fixedApp && (from.port !== this.#app.port || from.address !== this.#app.address)) this.#setApp(from.address, from.port)
    const link = this.#link
    if (!link) {
      this.#notConnected++
      return
    }
    let datagram: Uint8Array = payload
    if (link.seal) {
      if (payload.length > MAX_FORWARD_PAYLOAD) {
        this.#errors++
        return
      }
      datagram = sealForward(link.seal.key, link.seal.role, link.seal.counter++, payload)
    }
    if (!link.send(datagram)) {
      this.#notConnected++
      return
    }
    this.#sent.datagrams++
    this.#sent.bytes += payload.length
  }
}
