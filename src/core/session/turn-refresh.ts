// werift-ice 0.2.3 refreshes a TURN allocation in a loop that sleeps with timers/promises' setTimeout
// (5/6 of the allocation lifetime, ~8 min) and only checks for close() after waking: a closed agent
// keeps the process alive for minutes. This replaces that loop, per TurnProtocol, with a timer close()
// clears. Same requests as werift's (REFRESH with the granted LIFETIME, through requestWithRetry).
// Unlike werift's loop it tells its owner (attachTurnHooks) when the allocation is lost: a refresh the
// server refuses is tried once more with renewed credentials (time-limited ones expire; RFC 8656 servers
// such as coturn only accept the allocation's own username, so for them this also fails), and then the
// relayed candidate is dead: the session replaces it with a new allocation (an ICE restart).
import { classes, makeIntegrityKey, Message, methods, TurnProtocol } from 'werift-ice'

const TIMER = Symbol('cunicu-ts turn refresh timer')
const CLOSED = Symbol('cunicu-ts turn closed')
const HOOKS = Symbol('cunicu-ts turn hooks')
const EXPIRES_AT = Symbol('cunicu-ts turn allocation expiry')

export interface TurnCredentials {
  username: string
  password: string
}

export interface TurnAllocationHooks {
  /** The newest credentials for this allocation's server (relay-renewal.ts), if any. */
  renewedCredentials: () => TurnCredentials | undefined
  /** Called once: the allocation could not be refreshed, its relayed candidate no longer works. */
  onLost: (reason: string) => void
}

interface Patched {
  refresh: (exp: number) => void
  requestWithRetry: TurnProtocol['requestWithRetry']
  server: TurnProtocol['server']
  username: string
  password: string
  realm?: string
  integrityKey?: Buffer
  [TIMER]?: NodeJS.Timeout
  [CLOSED]?: boolean
  [HOOKS]?: TurnAllocationHooks
  [EXPIRES_AT]?: number
}

/** Lets the owner of an allocation renew its credentials and learn that it was lost. */
export function attachTurnHooks(turn: object, hooks: TurnAllocationHooks): void {
  ;(turn as unknown as Patched)[HOOKS] = hooks
}

let installed = false

export function installTurnRefreshFix(): void {
  if (installed) return
  installed = true
  const proto = TurnProtocol.prototype as unknown as { connectionMade: (this: Patched) => Promise<void>; close: (this: Patched) => Promise<void> }
  const connectionMade = proto.connectionMade
  const close = proto.close
  proto.connectionMade = function (this: Patched) {
    // connectionMade() calls this.refresh(lifetime) once the allocation succeeded.
    this.refresh = (exp: number) => granted(this, exp)
    return connectionMade.call(this)
  }
  proto.close = function (this: Patched) {
    stopRefreshing(this)
    return close.call(this)
  }
}

function schedule(turn: Patched, exp: number, delayMs = (5 / 6) * exp * 1000): void {
  if (turn[CLOSED] || !(exp > 0)) return
  clearTimeout(turn[TIMER])
  turn[TIMER] = setTimeout(() => void refreshOnce(turn, exp), delayMs)
}

/**
 * A granted lifetime (seconds): the allocation lives until then unless refreshed again. connectionMade()
 * starts the loop with it; exported so the loop can be tested on a stand-in allocation.
 */
export function startRefreshing(turn: object, exp: number): void {
  granted(turn as Patched, exp)
}

/** Ends the loop for good (close()). */
export function stopRefreshing(turn: object): void {
  const patched = turn as Patched
  patched[CLOSED] = true
  clearTimeout(patched[TIMER])
}

function granted(turn: Patched, exp: number): void {
  turn[EXPIRES_AT] = Date.now() + exp * 1000
  schedule(turn, exp)
}

async function requestRefresh(turn: Patched, exp: number): Promise<number> {
  const request = new Message(methods.REFRESH, classes.REQUEST)
  request.setAttribute('LIFETIME', exp)
  const [response] = await turn.requestWithRetry(request, turn.server)
  return Number(response.getAttributeValue('LIFETIME')) || exp
}

async function refreshOnce(turn: Patched, exp: number): Promise<void> {
  if (turn[CLOSED]) return
  let first: string | undefined
  try {
    return granted(turn, await requestRefresh(turn, exp))
  } catch (err) {
    first = errorCode(err)
  }
  if (turn[CLOSED]) return
  // werift drops error responses that carry no MESSAGE-INTEGRITY (a 401 for expired credentials does not),
  // so a refusal often looks like silence: either way, renewed credentials get one try.
  let second: string | undefined
  const renewed = turn[HOOKS]?.renewedCredentials()
  if (renewed && (renewed.username !== turn.username || renewed.password !== turn.password)) {
    const before = { username: turn.username, password: turn.password, integrityKey: turn.integrityKey }
    useCredentials(turn, renewed)
    try {
      return granted(turn, await requestRefresh(turn, exp))
    } catch (again) {
      if (turn[CLOSED]) return
      // Keep what the allocation was made with: a server that was only unreachable still knows those.
      Object.assign(turn, before)
      second = errorCode(again) ?? 'no answer'
    }
  }
  const tried = second ? `; with renewed credentials: ${second}` : ''
  if (first) return lost(turn, `the TURN server refused to refresh the allocation (${first}${tried})`)
  // No answer: as werift, try again, but sooner, while the allocation may still be alive.
  const left = (turn[EXPIRES_AT] ?? 0) - Date.now()
  if (left <= 0) return lost(turn, `the TURN server did not answer refreshes before the allocation expired${second ? ` (with renewed credentials: ${second})` : ''}`)
  schedule(turn, exp, Math.max(1000, left / 2))
}

function useCredentials(turn: Patched, credentials: TurnCredentials): void {
  turn.username = credentials.username
  turn.password = credentials.password
  if (turn.realm !== undefined) turn.integrityKey = makeIntegrityKey(credentials.username, turn.realm, credentials.password)
}

function lost(turn: Patched, reason: string): void {
  const hooks = turn[HOOKS]
  turn[HOOKS] = undefined
  hooks?.onLost(reason)
}

/** "441 Wrong Credentials" for a STUN error response, undefined for a timeout or another failure. */
function errorCode(err: unknown): string | undefined {
  const response = (err as { response?: { getAttributeValue?: (name: string) => unknown } } | undefined)?.response
  const value = response?.getAttributeValue?.('ERROR-CODE')
  if (!Array.isArray(value)) return undefined
  const [code, reason] = value as [number, string | undefined]
  return `${code}${reason ? ` ${reason}` : ''}`
}

/** What the agent wants to hear about its relayed candidates. */
export interface RelayWatch {
  /** The newest credentials for the server this allocation was made on, if renewed ones exist. */
  renewedCredentials?: (turn: TurnProtocol) => TurnCredentials | undefined
  onLost: (reason: string) => void
}

/** Attaches the hooks to the TURN allocation behind a relayed candidate werift gathered. */
export function watchRelayCandidate(connection: object, candidate: object, watch: RelayWatch): boolean {
  type ProtocolInternals = { localCandidate?: object; turn?: TurnProtocol }
  const protocols = (connection as { protocols?: ProtocolInternals[] }).protocols
  const turn = protocols?.find((p) => p.localCandidate === candidate)?.turn
  if (!turn) return false
  attachTurnHooks(turn, { renewedCredentials: () => watch.renewedCredentials?.(turn), onLost: watch.onLost })
  return true
}
