// One WireGuard peer carried over one session (cunīcu's user-space proxy): a loopback UDP socket (the
// Forwarder) whose destination is the interface's listen port, a Session with that peer, and the
// EndpointGuard that points the peer's endpoint at the socket while a path carries it.
import type { PublicKey } from '../keys.js'
import { Forwarder } from '../session/forwarder.js'
import { Session, type SessionOptions } from '../session/session.js'
import { EndpointGuard } from './endpoint-guard.js'
import { stamp, type WireguardEvent, type WireguardEventBody } from './events.js'
import type { WgPeerDump } from './wg-dump.js'
import type { WgTool } from './wg-tool.js'

export interface PeerLinkOptions {
  tool: WgTool
  iface: string
  /** The interface's UDP listen port: where the peer's packets are delivered on loopback. */
  listenPort: number
  peer: PublicKey
  /** The peer as the interface had it before we started. */
  original: WgPeerDump
  addedByUs: boolean
  /** Everything a Session needs except the peer and the forwarder, which the link provides. */
  session: Omit<SessionOptions, 'theirs' | 'forwarder' | 'signal'>
  restoreAfterMs?: number
  emit: (event: WireguardEvent) => void
}

export class PeerLink {
  readonly peer: PublicKey
  readonly session: Session
  readonly forwarder: Forwarder
  readonly guard: EndpointGuard
  readonly #o: PeerLinkOptions
  #closing?: Promise<void>
  /** Set before anything in close() runs: the session's close emits a last 'inactive' synchronously. */
  #closed = false
  #offStats: () => void

  private constructor(options: PeerLinkOptions, forwarder: Forwarder) {
    this.#o = options
    this.peer = options.peer
    this.forwarder = forwarder
    const peer = options.peer.toString()
    const emit = (body: WireguardEventBody) => options.emit(stamp(body))
    this.guard = new EndpointGuard({
      tool: options.tool,
      iface: options.iface,
      original: options.original,
      addedByUs: options.addedByUs,
      onChange: (change) => emit({ type: 'endpoint', peer, ...change }),
      onError: (err) => this.#reportWgError(err),
      ...(options.restoreAfterMs !== undefined ? { restoreAfterMs: options.restoreAfterMs } : {}),
    })
    this.session = new Session({ ...options.session, theirs: options.peer, forwarder })
    this.session.events.on((event) => options.emit({ ...event, peer }))
    this.#offStats = forwarder.stats.on((stats) => {
      if (this.#closed) return
      if (stats.active) this.guard.pathUp(forwarder.address)
      else this.guard.pathDown()
    })
  }

  /** Binds the proxy socket on 127.0.0.1 (any port), addressed to the interface's listen port. */
  static async open(options: PeerLinkOptions): Promise<PeerLink> {
    const forwarder = await Forwarder.open({ listen: '127.0.0.1:0', to: `127.0.0.1:${options.listenPort}` })
    return new PeerLink(options, forwarder)
  }

  start(): Promise<void> {
    return this.session.start()
  }

  /** Idempotent: ends the session, frees the socket, then undoes what we did to the interface. */
  close(options: { peerGone?: boolean } = {}): Promise<void> {
    this.#closed = true
    this.#closing ??= this.#close(options.peerGone ?? false)
    return this.#closing
  }

  async #close(peerGone: boolean): Promise<void> {
    await this.session.close()
    this.#offStats()
    await this.forwarder.close()
    // A peer removed from the interface by someone else has nothing left to restore.
    if (peerGone) this.guard.abandon()
    else await this.guard.close().catch((err: unknown) => this.#reportWgError(err))
  }

  #reportWgError(err: unknown): void {
    this.#o.emit(stamp({ type: 'error', source: 'wireguard', peer: this.peer.toString(), message: (err as Error).message }))
  }
}
