// `session --forward`: carries UDP datagrams between a local UDP port and the peer over the ICE path, each
// one sealed and authenticated, because werift hands us every datagram that reaches its sockets from anyone
// (ICE-NOTES pitfall 5). The local port is bound once for the session; each verified ICE agent is attached
// with a key of its own, so datagrams of an earlier agent (or a replay of them) never open in a later one.
//
// Datagram: FORWARD_MAGIC (8) | counter (8, big-endian) | xsalsa20poly1305(tag 16 | payload)
//   key   = SHA-256("cunicu-ts forward v1" | crypto_box_beforenm(ours, theirs) | controlling ufrag, pwd | controlled ufrag, pwd)
//   nonce = sender role byte (1 controlling, 2 controlled) | 15 zero bytes | counter (8)
// The role byte in the nonce gives each direction its own nonce space (both use one key), and a receiver
// only opens nonces of the peer's role, so its own datagrams reflected back never open. A sliding window
// over the counter refuses replays and measures loss (counters never seen below the highest one).
import { createHash } from 'node:crypto'
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { isIP } from 'node:net'
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js'
import { Emitter } from '../emitter.js'
import type { IceRole } from '../keys.js'
import type { IceCredentials } from './credentials.js'

/** "cunicuFW": differs from the path probe's "cunicuPB", so neither ever tries to open the other's datagrams. */
export const FORWARD_MAGIC = new Uint8Array([0x63, 0x75, 0x6e, 0x69, 0x63, 0x75, 0x46, 0x57])
const COUNTER_LENGTH = 8
const TAG_LENGTH = 16
export const FORWARD_OVERHEAD = FORWARD_MAGIC.length + COUNTER_LENGTH + TAG_LENGTH
/** Largest payload: keeps a sealed datagram within one UDP datagram on any path. */
export const MAX_FORWARD_PAYLOAD = 65_507 - FORWARD_OVERHEAD - 36 /* TURN ChannelData / Send indication headroom */
const ROLE_BYTE: Record<IceRole, number> = { controlling: 1, controlled: 2 }
const REPLAY_WINDOW = 4096

export class ForwardError extends Error {
  override name = 'ForwardError'
}

/** The key for one ICE agent pair: the envelope key bound to that agent generation's credentials. */
export function forwardKey(boxKey: Uint8Array, role: IceRole, local: IceCredentials, remote: IceCredentials): Uint8Array {
  const [controlling, controlled] = role === 'controlling' ? [local, remote] : [remote, local]
  const hash = createHash('sha256')
  hash.update('cunicu-ts forward v1')
  hash.update(boxKey)
  for (const c of [controlling, controlled]) hash.update(`|${c.ufrag}|${c.pwd}`)
  return new Uint8Array(hash.digest())
}

function nonceFor(role: IceRole, counter: bigint): Uint8Array {
  const nonce = new Uint8Array(24)
  nonce[0] = ROLE_BYTE[role]
  new DataView(nonce.buffer).setBigUint64(16, counter)
  return nonce
}

export function sealForward(key: Uint8Array, role: IceRole, counter: bigint, payload: Uint8Array): Uint8Array {
  const sealed = xsalsa20poly1305(key, nonceFor(role, counter)).encrypt(payload)
  const out = new Uint8Array(FORWARD_MAGIC.length + COUNTER_LENGTH + sealed.length)
  out.set(FORWARD_MAGIC, 0)
  new DataView(out.buffer).setBigUint64(FORWARD_MAGIC.length, counter)
  out.set(sealed, FORWARD_MAGIC.length + COUNTER_LENGTH)
  return out
}

export function isForwardDatagram(datagram: Uint8Array): boolean {
  if (datagram.length < FORWARD_OVERHEAD) return false
  for (let i = 0; i < FORWARD_MAGIC.length; i++) if (datagram[i] !== FORWARD_MAGIC[i]) return false
  return true
}

/** The payload and counter, or undefined when it is not a forward datagram sealed by `senderRole` with `key`. */
export function openForward(key: Uint8Array, senderRole: IceRole, datagram: Uint8Array): { counter: bigint; payload: Uint8Array } | undefined {
  if (!isForwardDatagram(datagram)) return undefined
  const counter = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength).getBigUint64(FORWARD_MAGIC.length)
  try {
    const payload = xsalsa20poly1305(key, nonceFor(senderRole, counter)).decrypt(datagram.subarray(FORWARD_MAGIC.length + COUNTER_LENGTH))
    return { counter, payload }
  } catch {
    return undefined
  }
}

/** Accepts each counter once; counters more than the window below the highest are refused as too old. */
export class ReplayWindow {
  readonly #seen = new Uint8Array(REPLAY_WINDOW)
  #top = -1n
  /** Counters accepted so far. */
  accepted = 0

  /** Highest counter accepted, -1 before the first. */
  get top(): bigint {
    return this.#top
  }

  /** True (and recorded) for a counter not seen before and not too old. */
  accept(counter: bigint): boolean {
    const size = BigInt(REPLAY_WINDOW)
    if (counter > this.#top) {
      // Slots between the old top and the new one now stand for counters not yet seen.
      const gap = counter - this.#top
      if (gap >= size) this.#seen.fill(0)
      else for (let c = this.#top + 1n; c < counter; c++) this.#seen[Number(c % size)] = 0
      this.#top = counter
      this.#seen[Number(counter % size)] = 1
      this.accepted++
      return true
    }
    if (this.#top - counter >= size) return false
    const slot = Number(counter % size)
    if (this.#seen[slot]) return false
    this.#seen[slot] = 1
    this.accepted++
    return true
  }

  /** Counters below the highest one never accepted: lost (or still on their way). */
  get missing(): number {
    return Number(this.#top + 1n) - this.accepted
  }
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
  /** Whether a verified ICE path is attached. */
  active: boolean
  /** From the local app to the peer. */
  sent: ForwardCounters
  /** From the peer to the local app. */
  received: ForwardCounters
  /** Peer datagrams never received (gaps in its counter). */
  lost: number
  /** lost / (received + lost), percent. */
  lossPercent: number
  /** Valid datagrams that arrived a second time (refused). */
  replayed: number
  /** Datagrams with our magic that did not open (tampered, other key, stale agent). */
  invalid: number
  /** Local datagrams dropped because no verified path was attached yet. */
  notConnected: number
  /** Peer datagrams dropped because no local app address is known yet (no --forward-to, nothing sent locally). */
  noApp: number
  /** Local datagrams over the size limit, and failed sends. */
  errors: number
  /** Over the last interval. */
  rate: { sentBitsPerSecond: number; receivedBitsPerSecond: number; sentPerSecond: number; receivedPerSecond: number }
}

export interface ForwarderOptions {
  /** "HOST:PORT" to bind (port 0: any). */
  listen: string
  /** "HOST:PORT" to deliver the peer's datagrams to; default: the last local address that sent us one. */
  to?: string
  /** How often stats are emitted while a path is attached. Default 1000 ms. */
  intervalMs?: number
}

export interface ForwardLink {
  key: Uint8Array
  /** Our ICE role: the nonce space we seal in; the peer's is the other one. */
  role: IceRole
  send: (datagram: Uint8Array) => Promise<void>
}

interface Endpoint {
  address: string
  port: number
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
  readonly #socket: Socket
  readonly #local: Endpoint
  readonly #fixedApp: boolean
  readonly #intervalMs: number
  #app?: Endpoint
  #link?: ForwardLink & { peerRole: IceRole; counter: bigint; window: ReplayWindow }
  #timer?: NodeJS.Timeout
  #closed = false
  #lostBefore = 0
  readonly #sent: ForwardCounters = { datagrams: 0, bytes: 0 }
  readonly #received: ForwardCounters = { datagrams: 0, bytes: 0 }
  #replayed = 0
  #invalid = 0
  #notConnected = 0
  #noApp = 0
  #errors = 0
  #last = { at: performance.now(), sentBytes: 0, receivedBytes: 0, sent: 0, received: 0 }

  private constructor(socket: Socket, local: Endpoint, options: ForwarderOptions) {
    this.#socket = socket
    this.#local = local
    this.#intervalMs = options.intervalMs ?? 1000
    if (options.to) this.#app = parseUdpAddress(options.to, 'forward destination')
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

  get active(): boolean {
    return this.#link !== undefined
  }

  /** Starts carrying datagrams over a verified path; replaces an earlier link (new counters, new window). */
  attach(link: ForwardLink): void {
    if (this.#closed) return
    this.#retireLink()
    this.#link = { ...link, peerRole: link.role === 'controlling' ? 'controlled' : 'controlling', counter: 0n, window: new ReplayWindow() }
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

  /** A datagram from the ICE agent; true when it carried our magic (whether or not it opened). Never throws. */
  handle(datagram: Uint8Array): boolean {
    if (!isForwardDatagram(datagram)) return false
    const link = this.#link
    if (!link || this.#closed) {
      this.#invalid++
      return true
    }
    const opened = openForward(link.key, link.peerRole, datagram)
    if (!opened) {
      this.#invalid++
      return true
    }
    if (!link.window.accept(opened.counter)) {
      this.#replayed++
      return true
    }
    const app = this.#app
    if (!app) {
      this.#noApp++
      return true
    }
    this.#received.datagrams++
    this.#received.bytes += opened.payload.length
    this.#socket.send(opened.payload, app.port, app.address, (err) => {
      if (err) this.#errors++
    })
    return true
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
    const lost = this.#lostBefore + (this.#link?.window.missing ?? 0)
    const rate = {
      sentBitsPerSecond: Math.round(((this.#sent.bytes - this.#last.sentBytes) * 8) / seconds),
      receivedBitsPerSecond: Math.round(((this.#received.bytes - this.#last.receivedBytes) * 8) / seconds),
      sentPerSecond: Math.round((this.#sent.datagrams - this.#last.sent) / seconds),
      receivedPerSecond: Math.round((this.#received.datagrams - this.#last.received) / seconds),
    }
    const total = this.#received.datagrams + this.#noApp + lost
    const stats: ForwardStats = {
      local: this.address,
      active: this.active,
      sent: { ...this.#sent },
      received: { ...this.#received },
      lost,
      lossPercent: total === 0 ? 0 : Math.round((lost / total) * 10_000) / 100,
      replayed: this.#replayed,
      invalid: this.#invalid,
      notConnected: this.#notConnected,
      noApp: this.#noApp,
      errors: this.#errors,
      rate,
    }
    if (this.#app) stats.app = formatEndpoint(this.#app)
    return stats
  }

  #emitStats(): void {
    const stats = this.snapshot()
    this.#last = { at: performance.now(), sentBytes: this.#sent.bytes, receivedBytes: this.#received.bytes, sent: this.#sent.datagrams, received: this.#received.datagrams }
    this.stats.emit(stats)
  }

  #retireLink(): void {
    if (this.#link) this.#lostBefore += this.#link.window.missing
    this.#link = undefined
  }

  #onLocal(payload: Buffer, from: RemoteInfo): void {
    if (this.#closed) return
    if (!this.#fixedApp) this.#app = { address: from.address, port: from.port }
    const link = this.#link
    if (!link) {
      this.#notConnected++
      return
    }
    if (payload.length > MAX_FORWARD_PAYLOAD) {
      this.#errors++
      return
    }
    const datagram = sealForward(link.key, link.role, link.counter++, payload)
    this.#sent.datagrams++
    this.#sent.bytes += payload.length
    link.send(datagram).catch(() => this.#errors++)
  }
}
