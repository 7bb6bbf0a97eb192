// The STUN/TURN servers of one session: the flags' ICE options plus the servers the caller gathered
// (relays.ts), told once as a 'relays' event (and an 'error' per server that could not be asked), and, when
// the caller can ask again, renewed before time-limited TURN credentials expire (relay-renewal.ts), so every
// later ICE agent uses the fresh ones. The gathered servers may still be on their way (a promise): the
// session subscribes and exchanges credentials meanwhile, and only its first ICE agent waits for them.
import { errorMessage } from '../error-message.js'
import type { SessionEventBody } from './events.js'
import type { IceOptions } from './ice-options.js'
import { RelayRenewal } from './relay-renewal.js'
import type { ResolvedIceServers, TurnServer } from './relays.js'

export interface SessionIceServersOptions {
  /** The ICE options as given, before any gathered server is added. */
  ice: IceOptions | undefined
  servers: ResolvedIceServers | Promise<ResolvedIceServers> | undefined
  renew: ((signal: AbortSignal) => Promise<ResolvedIceServers>) | undefined
  emit(event: SessionEventBody): void
}

export class SessionIceServers {
  readonly #o: SessionIceServersOptions
  #servers: ResolvedIceServers | undefined
  #settled = false
  #renewal?: RelayRenewal
  #announce = false
  #started = false
  #closed = false
  /** Resolves once the gathered servers are known (at once when they were given as a value). */
  readonly ready: Promise<void>

  constructor(options: SessionIceServersOptions) {
    this.#o = options
    const { servers } = options
    if (servers instanceof Promise) {
      this.ready = servers.then(
        (resolved) => this.#settle(resolved),
        (err: unknown) => {
          if (!this.#closed)
            options.emit({ type: 'error', source: 'backend', message: `could not gather STUN/TURN servers: ${errorMessage(err)}` })
          this.#settle(undefined)
        },
      )
    } else {
      this.#settle(servers)
      this.ready = Promise.resolve()
    }
  }

  /** Whether the gathered servers are known (an ICE agent may start). */
  get settled(): boolean {
    return this.#settled
  }

  #settle(servers: ResolvedIceServers | undefined): void {
    if (this.#settled) return
    this.#settled = true
    this.#servers = servers
    const { renew, emit } = this.#o
    if (servers && renew && !this.#closed) {
      this.#renewal = new RelayRenewal({
        initial: servers,
        fetch: renew,
        onRenewed: (fresh) => emit({ type: 'relays', stun: fresh.stunServers.map((s) => s.url), turn: fresh.turnInfo, skipped: fresh.skipped, renewed: true }),
        onError: (message) => emit({ type: 'error', source: 'backend', message }),
      })
      if (this.#started) this.#renewal.start()
    }
    if (this.#announce && !this.#closed) this.#tell()
  }

  /** Tells what was gathered, now or once known: an error per server that could not be asked, then the servers in use. */
  announce(): void {
    this.#announce = true
    if (this.#settled) this.#tell()
  }

  #tell(): void {
    const { emit } = this.#o
    const servers = this.#servers
    if (!servers) return
    for (const message of servers.errors) emit({ type: 'error', source: 'backend', message: `${message}; going on without its relays` })
    if (servers.stunServers.length || servers.turnInfo.length || servers.skipped.length) {
      emit({ type: 'relays', stun: servers.stunServers.map((s) => s.url), turn: servers.turnInfo, skipped: servers.skipped })
    }
  }

  /** Starts renewing (once subscribed; once gathered, if that comes later). */
  start(): void {
    this.#started = true
    this.#renewal?.start()
  }

  close(): void {
    this.#closed = true
    this.#renewal?.close()
  }

  /** The ICE options for a new agent: the renewed STUN/TURN servers when renewal is on. */
  current(): IceOptions | undefined {
    return withIceServers(this.#o.ice, this.#renewal ? this.#renewal.current : this.#servers)
  }

  /** TURN credentials renewed since an agent was created, for its allocation refreshes. */
  renewedTurn(url: string): TurnServer | undefined {
    return this.#renewal?.current.turnServers.find((t) => t.url === url)
  }
}

/** The gathered STUN/TURN servers on top of the explicit ICE options. */
export function withIceServers(ice: IceOptions | undefined, servers: ResolvedIceServers | undefined): IceOptions | undefined {
  if (!servers) return ice
  return {
    ...ice,
    ...(servers.stunServers.length
      ? { stunServers: [...(ice?.stunServers ?? []), ...servers.stunServers.filter((s) => !ice?.stunServers?.some((t) => t.url === s.url))] }
      : {}),
    ...(servers.turnServers.length ? { turnServers: [...(ice?.turnServers ?? []), ...servers.turnServers] } : {}),
  }
}
