// Time-limited TURN credentials (TURN REST, `signal --relay turn:…?secret=S&ttl=1h`) end long before a
// `--forward`/`--wg` session does. This keeps the session's servers fresh: it asks the signaling servers
// again (GetRelays) before the earliest expiry, and on failure retries with back-off, so every later TURN
// allocation (an ICE restart, a replaced allocation) is made with credentials that still work.
import { errorMessage } from '../error-message.js'
import { Backoff } from '../backoff.js'
import type { ResolvedIceServers } from './relays.js'

/** Renew once this fraction of the remaining lifetime has passed… */
export const RENEW_AT_FRACTION = 0.5
/** …but never later than this before the expiry (a 1 h TTL is renewed at 50 min, 10 min before). */
export const RENEW_MARGIN_MAX_MS = 10 * 60_000
/** Nor sooner than this after the last fetch (credentials that expire at once must not spin). */
export const RENEW_MIN_DELAY_MS = 1_000
/** Failed fetches are retried after 2 s, 4 s, … up to a minute. */
export const RENEW_RETRY = { initialMs: 2_000, factor: 2, maxMs: 60_000, jitter: 0.2 }

/** How long to wait before renewing servers that expire at `expires` (undefined: nothing expires). */
export function renewalDelayMs(expires: readonly Date[], now: number): number | undefined {
  if (expires.length === 0) return undefined
  const earliest = Math.min(...expires.map((d) => d.getTime()))
  const remaining = earliest - now
  const margin = Math.min(remaining * (1 - RENEW_AT_FRACTION), RENEW_MARGIN_MAX_MS)
  return Math.max(RENEW_MIN_DELAY_MS, remaining - margin)
}

/** The expiries that renewal is about: time-limited credentials from a server (flags are the user's own). */
export function expiringCredentials(servers: ResolvedIceServers): Date[] {
  const fromServer = new Set(servers.turnInfo.filter((t) => t.source === 'server').map((t) => `${t.url} ${t.username}`))
  return servers.turnServers.filter((t) => t.expires && fromServer.has(`${t.url} ${t.username}`)).map((t) => t.expires!)
}

export interface RelayRenewalOptions {
  initial: ResolvedIceServers
  /** Asks the servers again (resolveIceServers with the session's flags and backends). */
  fetch: (signal: AbortSignal) => Promise<ResolvedIceServers>
  /** New servers are in use (for a 'relays' event). */
  onRenewed?: (servers: ResolvedIceServers) => void
  /** A fetch failed or brought no TURN server; the old ones stay in use until renewal succeeds. */
  onError?: (message: string) => void
  now?: () => number
  random?: () => number
}

export class RelayRenewal {
  #current: ResolvedIceServers
  readonly #o: RelayRenewalOptions
  readonly #abort = new AbortController()
  readonly #retry: Backoff
  #timer?: NodeJS.Timeout
  #started = false
  #closed = false

  constructor(options: RelayRenewalOptions) {
    this.#o = options
    this.#current = options.initial
    this.#retry = new Backoff(RENEW_RETRY, options.random)
  }

  /** The servers to use for the next TURN allocation. */
  get current(): ResolvedIceServers {
    return this.#current
  }

  /** Schedules the first renewal (nothing happens when no credentials expire). */
  start(): void {
    if (this.#started || this.#closed) return
    this.#started = true
    this.#schedule()
  }

  /** Idempotent: clears the timer and cancels a fetch in flight. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#abort.abort()
  }

  #schedule(): void {
    const delay = renewalDelayMs(expiringCredentials(this.#current), this.#now())
    if (delay !== undefined) this.#arm(delay)
  }

  #arm(delay: number): void {
    if (this.#closed) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#renew()
    }, delay)
  }

  async #renew(): Promise<void> {
    let fresh: ResolvedIceServers
    try {
      fresh = await this.#o.fetch(this.#abort.signal)
    } catch (err) {
      return this.#failed(`could not renew TURN credentials: ${errorMessage(err)}`)
    }
    if (this.#closed) return
    if (expiringCredentials(fresh).length === 0 && expiringCredentials(this.#current).length > 0) {
      const why = fresh.errors[0] ?? 'the servers handed out no time-limited TURN credentials'
      return this.#failed(`could not renew TURN credentials: ${why}`)
    }
    this.#retry.reset()
    this.#current = fresh
    this.#o.onRenewed?.(fresh)
    this.#schedule()
  }

  #failed(message: string): void {
    if (this.#closed) return
    const delay = this.#retry.next()
    this.#o.onError?.(`${message}; retrying in ${(delay / 1000).toFixed(1)} s`)
    this.#arm(delay)
  }

  #now(): number {
    return (this.#o.now ?? Date.now)()
  }
}
