// What --wg changes on an interface, and how it is undone: the peer's endpoint points at our loopback proxy
// socket while a path carries its packets, and goes back to what it was when the path is lost for good or
// we exit. A peer that had no endpoint cannot be given "none" again with `wg set`, so it is removed and
// re-added with its allowed IPs, keepalive and preshared key (WireGuard renegotiates on the next packet).
// A peer we added (--allowed-ips) is removed again.
import type { WgPeerDump } from './wg-dump.js'
import type { WgTool } from './wg-tool.js'

export type EndpointChange =
  | { action: 'pointed'; endpoint: string; previous?: string }
  | { action: 'restored'; endpoint?: string }
  | { action: 'removed' }

export interface EndpointGuardOptions {
  tool: WgTool
  iface: string
  /** The peer as it was before we touched it (from `wg show IFACE dump`). */
  original: WgPeerDump
  /** True when we added the peer (--allowed-ips): undoing removes it. */
  addedByUs: boolean
  /** Told after each change was applied. */
  onChange?: (change: EndpointChange) => void
  /** A path gone this long is gone for good (pathDown): the endpoint is restored. Default 30 s. */
  restoreAfterMs?: number
  /** `wg` failures of changes nobody awaits (pathUp/pathDown). */
  onError?: (err: Error) => void
}

/** A path gone this long is gone for good: WireGuard gets its own endpoint back until a path returns. */
export const DEFAULT_RESTORE_AFTER_MS = 30_000

export class EndpointGuard {
  readonly #o: EndpointGuardOptions
  /** Where the endpoint points now, if we pointed it. */
  #pointed?: string
  #removed = false
  #closed = false
  #restoreTimer?: NodeJS.Timeout
  /** Changes run one after another, so a restore never overtakes the point it undoes. */
  #queue: Promise<void> = Promise.resolve()

  constructor(options: EndpointGuardOptions) {
    this.#o = options
  }

  get peer(): string {
    return this.#o.original.publicKey
  }

  /** The endpoint we set, or undefined while the peer's own endpoint is in place. */
  get pointed(): string | undefined {
    return this.#pointed
  }

  /** A path carries the peer: cancel a pending restore, point the endpoint at our proxy socket. */
  pathUp(endpoint: string): void {
    this.#cancelRestore()
    if (this.#closed) return
    this.point(endpoint).catch((err: unknown) => this.#o.onError?.(err as Error))
  }

  /** The path is gone: restore the endpoint unless a path is back within restoreAfterMs. */
  pathDown(): void {
    if (this.#closed || this.#pointed === undefined || this.#restoreTimer) return
    this.#restoreTimer = setTimeout(() => {
      this.#restoreTimer = undefined
      this.restore().catch((err: unknown) => this.#o.onError?.(err as Error))
    }, this.#o.restoreAfterMs ?? DEFAULT_RESTORE_AFTER_MS)
  }

  #cancelRestore(): void {
    clearTimeout(this.#restoreTimer)
    this.#restoreTimer = undefined
  }

  /** Points the peer's endpoint at `endpoint` ("127.0.0.1:PORT"); a no-op when it already points there. */
  point(endpoint: string): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#removed || this.#pointed === endpoint) return
      await this.#o.tool.setEndpoint(this.#o.iface, this.peer, endpoint)
      this.#pointed = endpoint
      const previous = this.#o.original.endpoint
      this.#o.onChange?.(previous ? { action: 'pointed', endpoint, previous } : { action: 'pointed', endpoint })
    })
  }

  /** Puts the endpoint back as it was (we may point it again later). A no-op when nothing is pointed. */
  restore(): Promise<void> {
    return this.#enqueue(() => this.#restore())
  }

  async #restore(): Promise<void> {
    if (this.#removed || this.#pointed === undefined) return
    const { tool, iface, original } = this.#o
    if (original.endpoint) {
      await tool.setEndpoint(iface, this.peer, original.endpoint)
    } else if (!this.#o.addedByUs) {
      await tool.removePeer(iface, this.peer)
      await tool.addPeer(iface, this.peer, {
        allowedIps: original.allowedIps,
        ...(original.persistentKeepalive ? { persistentKeepalive: original.persistentKeepalive } : {}),
        ...(original.presharedKey ? { presharedKey: original.presharedKey } : {}),
      })
    }
    this.#pointed = undefined
    if (!this.#o.addedByUs) this.#o.onChange?.(original.endpoint ? { action: 'restored', endpoint: original.endpoint } : { action: 'restored' })
  }

  /** Final undo (idempotent): restores the endpoint, and removes the peer if we added it. */
  close(): Promise<void> {
    this.#closed = true
    this.#cancelRestore()
    return this.#enqueue(async () => {
      await this.#restore()
      if (this.#removed || !this.#o.addedByUs) return
      this.#removed = true
      await this.#o.tool.removePeer(this.#o.iface, this.peer)
      this.#o.onChange?.({ action: 'removed' })
    })
  }

  /** Resolves once every change queued so far has run (whether or not it succeeded). */
  idle(): Promise<void> {
    return this.#queue
  }

  /** The peer left the interface: nothing to undo any more; only the timer goes. */
  abandon(): void {
    this.#closed = true
    this.#removed = true
    this.#cancelRestore()
  }

  #enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(step)
    // A failed step must not block the ones after it; the caller still sees its own failure.
    this.#queue = run.catch(() => {})
    return run
  }
}
