// A session's side of `--forward`/`--wg` (WIRE.md §8): which connected attempt the forwarder carries
// datagrams over, the sealed link's key for that attempt, and the forwarder's stats and errors as session
// events. The forwarder itself (its socket) belongs to the caller, who closes it; this only attaches it.
import type { IceRole, PrivateKey, PublicKey } from '../keys.js'
import { defaultSharedKeyCache } from '../shared-key-cache.js'
import type { IceCredentials } from './credentials.js'
import type { SessionEventBody } from './events.js'
import { forwardKey } from './forward-seal.js'
import type { Forwarder } from './forwarder.js'

/** What a forwarder needs of one connected attempt. */
export interface ForwardedPath {
  readonly local: IceCredentials
  readonly remote: IceCredentials | undefined
  readonly agent: { send(datagram: Uint8Array): boolean } | undefined
}

export class PathForwarding {
  readonly #forwarder: Forwarder
  readonly #keys: { ours: PrivateKey; theirs: PublicKey; role: IceRole }
  readonly #off: () => void
  /** The attempt whose path the forwarder carries datagrams over. */
  #path?: ForwardedPath

  constructor(forwarder: Forwarder, keys: { ours: PrivateKey; theirs: PublicKey; role: IceRole }, emit: (event: SessionEventBody) => void) {
    this.#forwarder = forwarder
    this.#keys = keys
    const offStats = forwarder.stats.on((stats) => emit({ type: 'forward', ...stats }))
    const offErrors = forwarder.errors.on((message) => emit({ type: 'error', source: 'forward', message }))
    this.#off = () => (offStats(), offErrors())
  }

  /** Carries datagrams over this connected path from now on (sealed: with a key of its credentials). */
  attach(path: ForwardedPath): void {
    const agent = path.agent
    if (!agent || !path.remote) return
    this.#path = path
    const send = (datagram: Uint8Array) => agent.send(datagram)
    if (!this.#forwarder.sealed) return this.#forwarder.attach({ send })
    const { ours, theirs, role } = this.#keys
    const boxKey = defaultSharedKeyCache.get(ours, theirs)
    this.#forwarder.attach({ send, seal: { key: forwardKey(boxKey, role, path.local, path.remote), role } })
  }

  /** Stops carrying datagrams over `path` (any path when left out). */
  detach(path?: ForwardedPath): void {
    if (!this.#path || (path && path !== this.#path)) return
    this.#path = undefined
    this.#forwarder.detach()
  }

  /** A datagram that reached `path`'s sockets and is not a probe: to the local app if it came over the path. */
  datagram(path: ForwardedPath, datagram: Buffer, fromPath: boolean): void {
    if (path !== this.#path) return
    if (fromPath) this.#forwarder.handle(datagram)
    else this.#forwarder.noteForeign()
  }

  /** Detaches and stops reporting; the caller closes the forwarder. */
  close(): void {
    this.detach()
    this.#off()
  }
}
