// `session --wg IFACE`: one session per WireGuard peer over one shared backend, as cunīcu's daemon runs
// them. With a single peer it is the same runner with one link. WireGuard's own view of each peer
// (handshake, tunnel bytes) is read with `wg show IFACE dump` every few seconds; in every-peer mode the
// same poll starts links for peers added to the interface and ends those of peers removed from it.
import type { Backend } from '../backend.js'
import { Emitter } from '../emitter.js'
import { PublicKey, type PrivateKey } from '../keys.js'
import type { SessionOptions } from '../session/session.js'
import { stamp, type WireguardEvent } from './events.js'
import { PeerLink } from './peer-link.js'
import type { PlannedPeer, WireguardPlan } from './setup.js'
import type { WgInterfaceDump, WgPeerDump } from './wg-dump.js'
import type { WgTool } from './wg-tool.js'

export const DEFAULT_DUMP_INTERVAL_MS = 5000

export interface WireguardMeshOptions {
  tool: WgTool
  /** From planWireguard: the interface, its listen port and the peers to carry. */
  plan: WireguardPlan
  backend: Backend
  /** The interface's private key (see interfaceKey). */
  ours: PrivateKey
  /** ICE and path-probe settings shared by every peer's session. */
  session?: Pick<SessionOptions, 'ice' | 'iceServers' | 'renewIceServers' | 'backoff' | 'probeTimeoutMs'>
  /** True: one given peer. False: every peer of the interface, following additions and removals. */
  single: boolean
  dumpIntervalMs?: number
  restoreAfterMs?: number
  /** Aborting closes the mesh. */
  signal?: AbortSignal
}

export class WireguardMesh {
  /** Subscribe before start() to see everything. */
  readonly events = new Emitter<WireguardEvent>()
  readonly #o: WireguardMeshOptions
  readonly #links = new Map<string, PeerLink>()
  readonly #seen = new Map<string, string>()
  readonly #abort = new AbortController()
  #timer?: NodeJS.Timeout
  #polling = false
  #closing?: Promise<void>
  #closed = false
  #offAbort?: () => void

  constructor(options: WireguardMeshOptions) {
    this.#o = options
    const signal = options.signal
    if (signal) {
      const onAbort = () => void this.close()
      signal.addEventListener('abort', onAbort, { once: true })
      this.#offAbort = () => signal.removeEventListener('abort', onAbort)
    }
  }

  /** The peers' keys (base64) being carried. */
  get peers(): string[] {
    return [...this.#links.keys()]
  }

  /**
   * Adds the peer if --allowed-ips asked for it, opens a link per peer and starts their sessions; rejects
   * (after closing, which undoes the addition) if `wg` or a subscription fails.
   */
  async start(): Promise<void> {
    const { plan, ours } = this.#o
    this.events.emit(stamp({ type: 'interface', iface: plan.iface, publicKey: ours.publicKey.toString(), listenPort: plan.listenPort, peers: plan.peers.map((p) => p.key.toString()) }))
    try {
      await Promise.all(plan.peers.map((p) => this.#openLink(p)))
    } catch (err) {
      await this.close()
      throw err
    }
    if (this.#closed) return
    this.#schedulePoll()
  }

  /** Idempotent: closes every link (each restores its peer's endpoint) and stops polling. */
  close(): Promise<void> {
    this.#closed = true
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#offAbort?.()
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#abort.abort()
    await Promise.allSettled([...this.#links.values()].map((l) => l.close()))
  }

  async #openLink(planned: PlannedPeer): Promise<void> {
    const key = planned.key.toString()
    if (this.#links.has(key) || this.#closed) return
    const { tool, backend, ours } = this.#o
    const { iface, listenPort } = this.#o.plan
    if (planned.addedByUs) await tool.addPeer(iface, key, { allowedIps: planned.original.allowedIps }, this.#abort.signal)
    const link = await PeerLink.open({
      tool,
      iface,
      listenPort,
      peer: planned.key,
      original: planned.original,
      addedByUs: planned.addedByUs,
      session: { ...this.#o.session, backend, ours },
      ...(this.#o.restoreAfterMs !== undefined ? { restoreAfterMs: this.#o.restoreAfterMs } : {}),
      emit: (event) => this.events.emit(event),
    })
    this.#links.set(key, link)
    if (this.#closed) {
      await link.close()
      return
    }
    await link.start()
  }

  #schedulePoll(): void {
    if (this.#closed) return
    this.#timer = setTimeout(() => void this.#poll(), this.#o.dumpIntervalMs ?? DEFAULT_DUMP_INTERVAL_MS)
  }

  async #poll(): Promise<void> {
    this.#timer = undefined
    if (this.#closed || this.#polling) return
    this.#polling = true
    try {
      const dump = await this.#o.tool.dump(this.#o.plan.iface, this.#abort.signal)
      if (this.#closed) return
      for (const peer of dump.peers) this.#reportPeer(peer)
      if (!this.#o.single) await this.#followPeers(dump)
    } catch (err) {
      if (!this.#closed) this.events.emit(stamp({ type: 'error', source: 'wireguard', message: (err as Error).message }))
    } finally {
      this.#polling = false
      this.#schedulePoll()
    }
  }

  /** A 'handshake' event when WireGuard's view of a carried peer changed since the last poll. */
  #reportPeer(peer: WgPeerDump): void {
    if (!this.#links.has(peer.publicKey)) return
    const view = JSON.stringify([peer.latestHandshake, peer.transferRx, peer.transferTx, peer.endpoint])
    if (this.#seen.get(peer.publicKey) === view) return
    this.#seen.set(peer.publicKey, view)
    this.events.emit(
      stamp({
        type: 'handshake',
        peer: peer.publicKey,
        ...(peer.latestHandshake ? { latestHandshake: new Date(peer.latestHandshake * 1000).toISOString() } : {}),
        transferRx: peer.transferRx,
        transferTx: peer.transferTx,
        ...(peer.endpoint ? { endpoint: peer.endpoint } : {}),
      }),
    )
  }

  /** Every-peer mode: links for peers added to the interface, none for peers removed from it. */
  async #followPeers(dump: WgInterfaceDump): Promise<void> {
    const present = new Set(dump.peers.map((p) => p.publicKey))
    for (const [key, link] of this.#links) {
      if (present.has(key)) continue
      this.#links.delete(key)
      this.#seen.delete(key)
      await link.close({ peerGone: true })
    }
    for (const peer of dump.peers) {
      if (this.#links.has(peer.publicKey) || peer.publicKey === this.#o.ours.publicKey.toString()) continue
      await this.#openLink({ key: PublicKey.parse(peer.publicKey, `${this.#o.plan.iface}'s peer`), original: peer, addedByUs: false }).catch((err: unknown) =>
        this.events.emit(stamp({ type: 'error', source: 'wireguard', peer: peer.publicKey, message: `could not start a session: ${(err as Error).message}` })),
      )
    }
  }
}
