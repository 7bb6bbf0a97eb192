// `signal --stun-listen HOST:PORT`: a STUN Binding server (RFC 5389) on UDP beside the signaling server, so
// one host gives peers both signaling and their server-reflexive candidates (what Tailscale's DERP hosts
// do). It answers only Binding requests, never anything bigger than the request invites, and each source
// address gets a token bucket: past it, requests are dropped silently (answering would make us a
// reflector) and counted.
import { createSocket, type Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { bindingSuccess, parseBindingRequest } from './stun-message.js'
import { TokenBucket, monotonicNow, type MonotonicClock } from './token-bucket.js'

export type StunResult = 'answered' | 'rate_limited' | 'malformed'

export interface StunServerOptions {
  host: string
  port: number
  /** Sustained requests per second per source address. */
  ratePerSecond?: number
  burst?: number
  /** Called for every datagram with what was done with it (metrics, logs). */
  onRequest?: (result: StunResult, source: string) => void
  clock?: MonotonicClock
}

export const DEFAULT_STUN_RATE = { ratePerSecond: 20, burst: 40 }
/** Source addresses remembered at most; full (idle) buckets are swept first, then the oldest. */
const MAX_SOURCES = 65_536

export class StunServer {
  readonly #socket: Socket
  readonly #buckets = new Map<string, TokenBucket>()
  readonly #options: StunServerOptions
  readonly #clock: MonotonicClock
  #closed: Promise<void> | undefined
  #address = ''

  private constructor(socket: Socket, options: StunServerOptions) {
    this.#socket = socket
    this.#options = options
    this.#clock = options.clock ?? monotonicNow
  }

  static async start(options: StunServerOptions): Promise<StunServer> {
    const socket = createSocket({ type: isIPv6(options.host) ? 'udp6' : 'udp4' })
    const server = new StunServer(socket, options)
    socket.on('message', (datagram, remote) => server.#onDatagram(datagram, remote.address, remote.port))
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(options.port, options.host, () => {
        socket.off('error', reject)
        resolve()
      })
    })
    // A send error (e.g. an unreachable source) concerns one datagram, never the server.
    socket.on('error', () => {})
    const bound = socket.address()
    server.#address = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`
    return server
  }

  /** The bound "HOST:PORT" (the real port when 0 was asked for). */
  get address(): string {
    return this.#address
  }

  get port(): number {
    return this.#socket.address().port
  }

  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => this.#socket.close(() => resolve()))
    return this.#closed
  }

  #onDatagram(datagram: Buffer, address: string, port: number): void {
    if (!this.#admit(address)) return this.#options.onRequest?.('rate_limited', address)
    const parsed = parseBindingRequest(datagram)
    if (parsed.kind !== 'binding-request') return this.#options.onRequest?.('malformed', address)
    this.#socket.send(bindingSuccess(parsed.transactionId, address, port), port, address)
    this.#options.onRequest?.('answered', address)
  }

  #admit(source: string): boolean {
    let bucket = this.#buckets.get(source)
    if (!bucket) {
      if (this.#buckets.size >= MAX_SOURCES) this.#sweep()
      bucket = new TokenBucket(this.#options.ratePerSecond ?? DEFAULT_STUN_RATE.ratePerSecond, this.#options.burst ?? DEFAULT_STUN_RATE.burst, this.#clock)
      this.#buckets.set(source, bucket)
    }
    return bucket.tryTake()
  }

  // A full bucket decides like a new one, so forgetting it changes nothing; if none is full, the oldest go.
  #sweep(): void {
    for (const [source, bucket] of this.#buckets) if (bucket.full) this.#buckets.delete(source)
    while (this.#buckets.size >= MAX_SOURCES) this.#buckets.delete(this.#buckets.keys().next().value!)
  }
}
