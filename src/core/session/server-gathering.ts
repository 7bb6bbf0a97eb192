// Server-reflexive and relayed candidates from a list of STUN/TURN servers, each tried in order until one
// works. werift-ice 0.2.3 asks only the first STUN server and the first TURN server it is given (ICE-NOTES):
// when that one is down, a session would have no srflx/relay candidate although the next server is fine.
// So werift gathers host candidates only, and this asks the servers with werift's own requests
// (serverReflexiveCandidate, and its TURN allocation in turn-allocation.ts) and adds the candidates as werift itself would.
import { isIPv4 } from 'node:net'
import {
  Candidate,
  candidateFoundation,
  candidatePriority,
  serverReflexiveCandidate,
  type Connection,
  type StunOverTurnProtocol,
} from 'werift-ice'
import type { StunServer, TurnServer } from './ice-servers.js'
import { allocateTurn } from './turn-allocation.js'
import { errorMessage } from '../error-message.js'

/** Which configured server each allocation of ours was made on (werift keeps only a resolved address). */
const allocationServers = new WeakMap<object, TurnServer>()

/** The TURN server (as configured, with its URL) a werift TurnProtocol of ours was allocated on. */
export function allocationServer(turn: object): TurnServer | undefined {
  return allocationServers.get(turn)
}

/** Per server: werift waits 5 s for its STUN server; an ALLOCATE is two round trips. */
export const DEFAULT_SERVER_TIMEOUT_MS = 5_000

export type Attempt<S, R> = (server: S) => Promise<R | undefined>

export interface Failure<S> {
  server: S
  reason: string
}

/**
 * Runs `attempt` on each server in order until one gives a result; a server that throws, gives nothing or
 * takes longer than `timeoutMs` is a failure with its reason, and the next one is tried. Aborting `signal`
 * ends the wait at once (undefined, no more servers tried): a closed agent never waits for a timeout.
 */
export async function firstThatWorks<S, R>(
  servers: readonly S[],
  attempt: Attempt<S, R>,
  options: { timeoutMs: number; onFailure?: (failure: Failure<S>, next: S | undefined) => void; signal?: AbortSignal },
): Promise<{ server: S; result: R } | undefined> {
  for (const [i, server] of servers.entries()) {
    if (options.signal?.aborted) return undefined
    let reason: string
    try {
      const result = await withTimeout(attempt(server), options.timeoutMs, options.signal)
      if (result !== undefined) return { server, result }
      reason = 'no answer'
    } catch (err) {
      if (options.signal?.aborted) return undefined
      reason = errorMessage(err)
    }
    options.onFailure?.({ server, reason }, servers[i + 1])
  }
  return undefined
}

class TimeoutError extends Error {}

function withTimeout<R>(promise: Promise<R>, ms: number, signal?: AbortSignal): Promise<R> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms / 1000} s`)), ms)
    onAbort = () => reject(new Error('aborted'))
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
  })
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer)
    if (onAbort) signal?.removeEventListener('abort', onAbort)
  })
}

/** werift internals this file needs (private in its typings, plain fields and methods at run time). */
interface ConnectionInternals {
  protocols: { type?: string; localCandidate?: Candidate }[]
  ensureProtocol(protocol: unknown): void
  appendLocalCandidate(candidate: Candidate): void
  generation: number
  localUsername: string
  options: { portRange?: [number, number]; interfaceAddresses?: Record<string, string> }
}

export interface ServerGatheringOptions {
  timeoutMs?: number
  /** CA certificates for turns: servers instead of the system roots. */
  tlsCa?: Buffer
  /** A server failed; `next` is the one tried now (undefined: none left). */
  onFailure?: (message: string) => void
  /** The agent closed: stop waiting for servers at once. */
  signal?: AbortSignal
}

/** srflx candidates for werift's IPv4 host sockets from the first STUN server that answers. */
export async function gatherServerReflexive(connection: Connection, servers: readonly StunServer[], options: ServerGatheringOptions = {}): Promise<void> {
  if (servers.length === 0) return
  const internals = connection as unknown as ConnectionInternals
  const hosts = internals.protocols.filter((p) => p.type === 'stun' && p.localCandidate?.type === 'host' && isIPv4(p.localCandidate.host))
  if (hosts.length === 0) return
  const found = await firstThatWorks(
    servers,
    async (server) => {
      const candidates = await Promise.all(hosts.map((protocol) => serverReflexiveCandidate(protocol as never, [server.host, server.port])))
      const answered = candidates.filter((c): c is Candidate => c !== undefined)
      return answered.length > 0 ? answered : undefined
    },
    {
      timeoutMs: options.timeoutMs ?? DEFAULT_SERVER_TIMEOUT_MS,
      ...(options.signal ? { signal: options.signal } : {}),
      onFailure: ({ server, reason }, next) => options.onFailure?.(`STUN server ${server.url}: ${reason}${next ? `; trying ${next.url}` : ''}`),
    },
  )
  if (!found || options.signal?.aborted) return
  for (const candidate of found.result) internals.appendLocalCandidate(candidate)
}

/** One relayed candidate from the first TURN server that grants an allocation. */
export async function gatherRelayed(connection: Connection, servers: readonly TurnServer[], options: ServerGatheringOptions = {}): Promise<void> {
  if (servers.length === 0) return
  const internals = connection as unknown as ConnectionInternals
  const attempts: Promise<StunOverTurnProtocol>[] = []
  const found = await firstThatWorks(servers, (server) => (attempts.push(allocate(internals, server, options)), attempts.at(-1)!), {
    timeoutMs: options.timeoutMs ?? DEFAULT_SERVER_TIMEOUT_MS,
    ...(options.signal ? { signal: options.signal } : {}),
    onFailure: ({ server, reason }, next) => options.onFailure?.(`TURN server ${server.url}: ${reason}${next ? `; trying ${next.url}` : ''}`),
  })
  // An allocation granted after its attempt timed out would hold a relay port until it expires.
  for (const attempt of attempts.slice(0, found ? -1 : undefined)) releaseLate(attempt)
  if (!found) return
  const protocol = found.result
  if (options.signal?.aborted) {
    await protocol.close().catch(() => {})
    return
  }
  allocationServers.set(protocol.turn, found.server)
  // As werift's own TURN gathering: the protocol answers checks and carries data, its candidate is advertised.
  internals.ensureProtocol(protocol)
  internals.protocols.push(protocol as never)
  const [address, port] = protocol.turn.relayedAddress
  const [relatedAddress, relatedPort] = protocol.turn.mappedAddress
  protocol.localCandidate = new Candidate(
    candidateFoundation('relay', 'udp', address),
    1,
    'udp',
    candidatePriority('relay'),
    address,
    port,
    'relay',
    relatedAddress,
    relatedPort,
    undefined,
    internals.generation,
    internals.localUsername,
  )
  internals.appendLocalCandidate(protocol.localCandidate)
}

/** An allocation on one server; one that completes after its timeout is released, not leaked; the agent's close ends it. */
function allocate(internals: ConnectionInternals, server: TurnServer, options: ServerGatheringOptions): Promise<StunOverTurnProtocol> {
  const pending = allocateTurn(server, {
    ...(options.tlsCa ? { tlsCa: options.tlsCa } : {}),
    ...(internals.options.portRange ? { portRange: internals.options.portRange } : {}),
    ...(internals.options.interfaceAddresses ? { interfaceAddresses: internals.options.interfaceAddresses } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  })
  return pending.catch((err: unknown) => {
    throw new Error(describeTurnError(err))
  })
}

/** Releases an allocation that arrived after its attempt was given up. */
function releaseLate(pending: Promise<StunOverTurnProtocol>): void {
  pending.then((p) => p.close()).catch(() => {})
}

function describeTurnError(err: unknown): string {
  const response = (err as { response?: { getAttributeValue?: (name: string) => unknown } } | undefined)?.response
  const code = response?.getAttributeValue?.('ERROR-CODE')
  if (Array.isArray(code)) return `refused the allocation (${code[0]}${code[1] ? ` ${code[1]}` : ''})`
  return err instanceof Error && err.message ? err.message : 'the allocation failed'
}
