// The STUN/TURN servers of one session: the flags' ICE options plus the servers gathered before it started
// (relays.ts), told once as a 'relays' event (and an 'error' per server that could not be asked), and, when
// the caller can ask again, renewed before time-limited TURN credentials expire (relay-renewal.ts), so every
// later ICE agent uses the fresh ones.
import type { SessionEventBody } from './events.js'
import type { IceOptions } from './ice-options.js'
import { RelayRenewal } from './relay-renewal.js'
import type { ResolvedIceServers, TurnServer } from './relays.js'

export interface SessionIceServersOptions {
  /** The ICE options as given, before any gathered server is added. */
  ice: IceOptions | undefined
  servers: ResolvedIceServers | undefined
  renew: ((signal: AbortSignal) => Promise<ResolvedIceServers>) | undefined
  emit(event: SessionEventBody): void
}

export class SessionIceServers {
  readonly #o: SessionIceServersOptions
  readonly #renewal?: RelayRenewal
  readonly #initial: IceOptions | undefined

  constructor(options: SessionIceServersOptions) {
    this.#o = options
    this.#initial = withIceServers(options.ice, options.servers)
    const { servers, renew, emit } = options
    if (servers && renew) {
      this.#renewal = new RelayRenewal({
        initial: servers,
        fetch: renew,
        onRenewed: (fresh) => emit({ type: 'relays', stun: fresh.stunServers.map((s) => s.url), turn: fresh.turnInfo, skipped: fresh.skipped, renewed: true }),
        onError: (message) => emit({ type: 'error', source: 'backend', message }),
      })
    }
  }

  /** Tells what was gathered: an error per server that could not be asked, then the servers in use. */
  announce(): void {
    const { servers, emit } = this.#o
    if (!servers) return
    for (const message of servers.errors) emit({ type: 'error', source: 'backend', message: `${message}; going on without its relays` })
    if (servers.stunServers.length || servers.turnInfo.length || servers.skipped.length) {
      emit({ type: 'relays', stun: servers.stunServers.map((s) => s.url), turn: servers.turnInfo, skipped: servers.skipped })
    }
  }

  /** Starts renewing (once subscribed). */
  start(): void {
    this.#renewal?.start()
  }

  close(): void {
    this.#renewal?.close()
  }

  /** The ICE options for a new agent: the renewed STUN/TURN servers when renewal is on. */
  current(): IceOptions | undefined {
    return this.#renewal ? withIceServers(this.#o.ice, this.#renewal.current) : this.#initial
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
