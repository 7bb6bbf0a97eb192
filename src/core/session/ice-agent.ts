// One werift-ice agent for one set of credentials, with the workarounds of ICE-NOTES applied: our
// credentials and STUN server set before gathering, and a connect() that fails instead of hanging.
import { CandidatePairState, Connection, type Candidate as WeriftCandidate, type CandidatePair, type IceState } from 'werift-ice'
import { Emitter } from '../emitter.js'
import { candidateInfoFromWerift, candidateInfoToWerift } from './candidate-mapping.js'
import { watchNomination } from './early-nomination.js'
import type { IceCredentials } from './credentials.js'
import type { CandidateInfo } from './events.js'
import { weriftOptions, type IceOptions } from './ice-options.js'
import { PairDatagrams } from './pair-datagrams.js'
import { allocationServer, gatherRelayed, gatherServerReflexive } from './server-gathering.js'
import { installTurnRefreshFix, watchRelayCandidate, type TurnCredentials } from './turn-refresh.js'

// A closed agent with a TURN allocation must not keep the process alive (see turn-refresh.ts).
installTurnRefreshFix()

export interface IceAgentOptions {
  controlling: boolean
  local: IceCredentials
  /** The peer's credentials; an agent may gather before they are known (setRemote before connect). */
  remote?: IceCredentials
  ice?: IceOptions
  /** Renewed credentials for a TURN server by its URL (relay-renewal.ts), tried when it refuses a refresh. */
  renewedTurnCredentials?: (serverUrl: string) => TurnCredentials | undefined
}

/** A relayed candidate of ours whose TURN allocation could not be refreshed: it no longer relays. */
export interface RelayLost {
  candidate: CandidateInfo
  reason: string
}

export interface ConnectOptions {
  timeoutMs: number
  /**
   * Our signaling has no end-of-candidates, so "every pair failed" only means failure once no new remote
   * candidate arrived for this long (a late srflx/relay candidate could still work).
   */
  quietMs?: number
  pollMs?: number
  /** Called once, when the first connectivity check is on the wire. */
  onChecking?: () => void
}

export interface NominatedPair {
  local: CandidateInfo
  remote: CandidateInfo
}

export class IceConnectError extends Error {
  override name = 'IceConnectError'
}

export class IceAgent {
  readonly connection: Connection
  /** Local candidates as gathered (trickle). */
  readonly localCandidates = new Emitter<CandidateInfo>()
  /**
   * Every non-STUN datagram the agent's sockets receive, flagged with whether it came from the nominated
   * pair's remote address (werift's own onData cannot tell: ICE-NOTES pitfall 5); and the fast send.
   */
  readonly datagrams: PairDatagrams
  /** werift's state changes; "completed" means gathering finished, not ICE (pitfall 3). */
  readonly states = new Emitter<IceState>()
  /** Our TURN allocations that were lost (turn-refresh.ts). */
  readonly relayLost = new Emitter<RelayLost>()
  /** A STUN/TURN server that failed while gathering (the next one is tried). */
  readonly serverErrors = new Emitter<string>()
  readonly #ice: IceOptions | undefined
  #gathering = false
  #closed = false
  /** Aborted on close: a STUN/TURN server that does not answer is not waited for. */
  readonly #abort = new AbortController()
  #closing?: Promise<void>
  #lastRemoteAt = 0
  #onClose = new Set<() => void>()

  constructor(options: IceAgentOptions) {
    const connection = new Connection(options.controlling, weriftOptions(options.ice))
    this.datagrams = new PairDatagrams(connection)
    // The constructor defaults to stun.l.google.com; the option cannot turn it off, the field can. Our STUN
    // and TURN servers are asked by gather() (server-gathering.ts), every one of them if need be.
    connection.stunServer = undefined
    this.#ice = options.ice
    // Pitfall 1: host candidates copy localUsername when gathered, so these must be set first.
    connection.localUsername = options.local.ufrag
    connection.localPassword = options.local.pwd
    // Drops the random credentials the constructor recorded, so only ours answer checks.
    connection.userHistory = { [options.local.ufrag]: options.local.pwd }
    // werift calls these synchronously inside its socket handlers: nothing may throw back into it.
    connection.onIceCandidate.subscribe((candidate) => {
      let info: CandidateInfo
      try {
        info = candidateInfoFromWerift(candidate)
      } catch {
        return // a transport we cannot describe on the wire (cunīcu's proto knows udp/tcp only)
      }
      const protocol = protocolOf(connection, candidate)
      if (protocol) this.datagrams.tap(protocol)
      if (info.type === 'host' || info.type === 'relay') enlargeSocketBuffers(connection, candidate)
      if (info.type === 'relay') {
        const transport = pairLateLocalCandidate(connection, candidate)
        if (transport) info.relayProtocol = transport
        const relayed = info
        watchRelayCandidate(connection, candidate, {
          renewedCredentials: (turn) => {
            const server = allocationServer(turn)
            return server ? options.renewedTurnCredentials?.(server.url) : undefined
          },
          onLost: (reason) => !this.#closed && this.relayLost.emit({ candidate: relayed, reason }),
        })
      }
      this.localCandidates.emit(info)
    })
    connection.stateChanged.subscribe((state) => this.states.emit(state))
    this.connection = connection
    if (options.remote) this.setRemote(options.remote)
  }

  get closed(): boolean {
    return this.#closed
  }

  /** The peer's credentials, which its checks carry and ours must use; needed before connect(). */
  setRemote(remote: IceCredentials): void {
    this.connection.setRemoteParams({ iceLite: false, usernameFragment: remote.ufrag, password: remote.pwd })
  }

  /** Gathers host, srflx and relay candidates (the STUN/TURN servers in order); each is emitted on localCandidates. */
  async gather(): Promise<void> {
    if (this.#closed) return
    this.#gathering = true
    const options = {
      ...(this.#ice?.serverTimeoutMs ? { timeoutMs: this.#ice.serverTimeoutMs } : {}),
      ...(this.#ice?.tlsCa ? { tlsCa: this.#ice.tlsCa } : {}),
      onFailure: (message: string) => !this.#closed && this.serverErrors.emit(message),
      signal: this.#abort.signal,
    }
    try {
      // werift marks gathering as started synchronously: the TURN allocation can run beside the host sockets.
      const hosts = this.connection.gatherCandidates()
      const relayed = gatherRelayed(this.connection, this.#ice?.turnServers ?? [], options)
      await hosts
      await Promise.all([gatherServerReflexive(this.connection, this.#ice?.stunServers ?? [], options), relayed])
    } finally {
      this.#gathering = false
    }
  }

  /** Adds a remote candidate; werift silently ignores prflx ones and ones it cannot pair (ICE-NOTES §1). */
  async addRemoteCandidate(info: CandidateInfo): Promise<void> {
    if (this.#closed) return
    this.#lastRemoteAt = Date.now()
    await this.connection.addRemoteCandidate(candidateInfoToWerift(info))
  }

  /**
   * werift's connect(), made to settle: it rejects at the deadline, when every pair failed and the remote
   * side went quiet, or when the agent is closed; the agent is closed on failure (connectOrFail, ICE-NOTES §3).
   */
  async connect(options: ConnectOptions): Promise<NominatedPair> {
    if (this.#closed) throw new IceConnectError('the ICE agent was closed before connecting')
    const { timeoutMs, quietMs = 3000, pollMs = 50, onChecking } = options
    const connection = this.connection
    let timer: NodeJS.Timeout | undefined
    let poll: NodeJS.Timeout | undefined
    let onClose: (() => void) | undefined
    let checking = false
    const noteChecking = () => {
      if (checking || !onChecking) return
      if (connection.candidatePairs.some((p) => p.state !== CandidatePairState.FROZEN && p.state !== CandidatePairState.WAITING)) {
        checking = true
        onChecking()
      }
    }
    const failed = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new IceConnectError(`ICE did not connect within ${formatSeconds(timeoutMs)}`)), timeoutMs)
      poll = setInterval(() => {
        noteChecking()
        const pairs = connection.candidatePairs
        const quiet = connection.remoteCandidatesEnd || Date.now() - this.#lastRemoteAt >= quietMs
        if (connection.localCandidatesEnd && !this.#gathering && quiet && pairs.length > 0 && pairs.every((p) => p.state === CandidatePairState.FAILED)) {
          reject(new IceConnectError(`ICE failed: all ${pairs.length} candidate pair${pairs.length === 1 ? '' : 's'} failed (no path to the peer)`))
        }
      }, pollMs)
      onClose = () => reject(new IceConnectError('the ICE agent was closed while connecting'))
      this.#onClose.add(onClose)
    })
    // A nomination counts when it happens, not at werift's next 20 ms tick (early-nomination.ts).
    const nomination = watchNomination(connection)
    // werift's promise may stay pending forever or reject after we gave up; neither may surface as unhandled.
    const attempt = connection.connect()
    attempt.catch(() => {})
    // connect() runs synchronously up to its first timer, so the first checks are already out if pairs exist.
    noteChecking()
    try {
      await Promise.race([attempt, nomination.nominated, failed])
      const pair = connection.nominated
      if (!pair) throw new IceConnectError('ICE reported success without a nominated pair')
      return describePair(pair)
    } catch (err) {
      await this.close()
      throw err instanceof IceConnectError ? err : new IceConnectError(`ICE failed: ${(err as Error).message}`)
    } finally {
      nomination.stop()
      clearTimeout(timer)
      clearInterval(poll)
      if (onClose) this.#onClose.delete(onClose)
    }
  }

  /** Whether `candidate` is the local end of the nominated pair. */
  isSelectedLocal(candidate: CandidateInfo): boolean {
    const local = this.connection.nominated?.localCandidate
    return local !== undefined && local.type === candidate.type && local.host === candidate.address && local.port === candidate.port
  }

  /** One datagram on the nominated pair; false (nothing sent) when there is none or consent expired (pitfall 4). */
  send(data: Uint8Array): boolean {
    if (this.#closed) return false
    return this.datagrams.send(data)
  }

  /** Idempotent; frees the sockets and werift's timers. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing
    this.#closed = true
    this.#abort.abort()
    this.datagrams.close()
    for (const reject of [...this.#onClose]) reject()
    this.#onClose.clear()
    this.#closing = this.connection.close().catch(() => {})
    return this.#closing
  }
}

export function describePair(pair: CandidatePair): NominatedPair {
  return { local: candidateInfoFromWerift(pair.localCandidate), remote: candidateInfoFromWerift(pair.remoteCandidate) }
}

/**
 * werift pairs a relayed candidate (its TURN allocation finishes after the host candidates) only with remote
 * candidates added later; the ones already known would never be checked through the relay, so pair them now.
 */
function pairLateLocalCandidate(connection: Connection, candidate: WeriftCandidate): 'udp' | 'tcp' | 'tls' | undefined {
  type TurnInternals = { localCandidate?: WeriftCandidate; turn?: { transport?: { type?: string } } }
  const internals = connection as unknown as { protocols?: TurnInternals[]; pairLocalProtocol?: (protocol: unknown) => void }
  const protocol = internals.protocols?.find((p) => p.localCandidate === candidate)
  if (!protocol) return undefined
  if (typeof internals.pairLocalProtocol === 'function') internals.pairLocalProtocol.call(connection, protocol)
  // The transport to the TURN server (relay_protocol on the wire); werift falls back from udp to tcp.
  const type = protocol.turn?.transport?.type
  return type === 'udp' || type === 'tcp' || type === 'tls' ? type : undefined
}

/** werift's protocol (socket or TURN allocation) that gathered this local candidate. */
function protocolOf(connection: Connection, candidate: WeriftCandidate): object | undefined {
  const protocols = (connection as unknown as { protocols?: { localCandidate?: WeriftCandidate }[] }).protocols
  return protocols?.find((p) => p.localCandidate === candidate)
}

/** Receive/send buffer asked for each agent socket (the kernel caps it at net.core.rmem_max/wmem_max). */
const SOCKET_BUFFER_BYTES = 4 << 20

/**
 * werift's sockets keep the kernel default receive buffer (~200 KiB, ~90 datagrams of 1 KB): a forwarded
 * stream loses datagrams whenever the event loop pauses a few ms. Best effort: a smaller cap is fine.
 */
function enlargeSocketBuffers(connection: Connection, candidate: WeriftCandidate): void {
  type Sock = { setRecvBufferSize?: (n: number) => void; setSendBufferSize?: (n: number) => void }
  type ProtocolInternals = { localCandidate?: WeriftCandidate; transport?: { socket?: Sock }; turn?: { transport?: { socket?: Sock } } }
  const protocols = (connection as unknown as { protocols?: ProtocolInternals[] }).protocols
  const protocol = protocols?.find((p) => p.localCandidate === candidate)
  const socket = protocol?.transport?.socket ?? protocol?.turn?.transport?.socket
  try {
    socket?.setRecvBufferSize?.(SOCKET_BUFFER_BYTES)
    socket?.setSendBufferSize?.(SOCKET_BUFFER_BYTES)
  } catch {
    // not bound yet or closed: keep the default
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
}
