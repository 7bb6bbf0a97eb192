// The session state machine of WIRE.md §7 (cunīcu's endpoint discovery): exchange ICE credentials over a
// signaling backend, trickle candidates, connect one werift agent, verify the path, and restart with new
// credentials whenever either side fails or restarts. Everything it does is told as SessionEvents.
// Just over 400 lines because it is the state machine and nothing else: its parts (ice-attempt.ts,
// credential-requests.ts, peer-messages.ts, session-ice-servers.ts, path-forwarding.ts, …) live beside it.
import type { Credentials } from '../../gen/feature/epdisc.js'
import type { Candidate as ProtoCandidate } from '../../gen/feature/epdisc_candidate.js'
import { Message } from '../../gen/signaling/signaling.js'
import type { Backend, BackendStatus, EnvelopeFailure, MessageHandler, ReceivedMessage, SubscriptionKey } from '../backend.js'
import { Emitter } from '../emitter.js'
import { errorMessage } from '../error-message.js'
import { iceRole, type IceRole, type PrivateKey, type PublicKey } from '../keys.js'
import { messageKind } from '../message-kind.js'
import { defaultSharedKeyCache } from '../shared-key-cache.js'
import { Backoff, type BackoffOptions } from '../backoff.js'
import { candidateInfoFromProto, candidateInfoToProto, formatCandidate } from './candidate-mapping.js'
import { CredentialRequests } from './credential-requests.js'
import { generateCredentials, sameCredentials, shortUfrag, type IceCredentials } from './credentials.js'
import type { CandidateInfo, SessionEvent, SessionEventBody, SessionState } from './events.js'
import type { Forwarder } from './forwarder.js'
import { IceAttempt, type AttemptSettings } from './ice-attempt.js'
import type { NominatedPair } from './ice-agent.js'
import { DEFAULT_CONNECT_TIMEOUT_MS, type IceOptions } from './ice-options.js'
import { PathForwarding } from './path-forwarding.js'
import { describeMessage, PeerMessages } from './peer-messages.js'
import { RecentCandidates } from './recent-candidates.js'
import type { ResolvedIceServers } from './relays.js'
import { RESTART_STORM_WINDOW_MS, RestartStormDetector } from './restart-storm.js'
import { RetiredCredentials } from './retired-credentials.js'
import { SessionIceServers } from './session-ice-servers.js'

export type { IceOptions } from './ice-options.js'

export interface SessionOptions {
  backend: Backend
  ours: PrivateKey
  theirs: PublicKey
  ice?: IceOptions
  /** Credential resends and restarts after failures; cunīcu: 500 ms, ×1.5, max 60 s, ±50 %. */
  backoff?: BackoffOptions
  /** How long to try verifying the path once connected. Default 3000 ms. */
  probeTimeoutMs?: number
  /**
   * Silence on a connected pair: 'disconnected' after 5 s, 'failed' (then a restart) after 25 s, pion/ice's
   * defaults; a STUN keepalive every second keeps a live peer audible. Shorter values are for tests.
   */
  pathSilence?: { disconnectedAfterMs?: number; failedAfterMs?: number; keepaliveIntervalMs?: number }
  /** Aborting closes the session. */
  signal?: AbortSignal
  /** `--forward`/`--wg`: attached to each connected path; its stats become 'forward' events. The caller closes it. */
  forwarder?: Forwarder
  /**
   * STUN/TURN servers gathered for the session (flags and the servers' RelayRegistry, relays.ts): used in
   * addition to `ice`, and told as a 'relays' event (and an 'error' per server that could not be asked). A
   * promise lets the session subscribe and exchange credentials while they are asked for; its first ICE
   * agent waits for them.
   */
  iceServers?: ResolvedIceServers | Promise<ResolvedIceServers>
  /**
   * Asks for `iceServers` again (relays.ts resolveIceServers): with it, time-limited TURN credentials are
   * renewed before they expire (relay-renewal.ts) and every later allocation uses the renewed ones.
   */
  renewIceServers?: (signal: AbortSignal) => Promise<ResolvedIceServers>
}

export class SessionError extends Error {
  override name = 'SessionError'
}

export const DEFAULT_PROBE_TIMEOUT_MS = 3000

export class Session {
  /** Subscribe before start() to see everything. */
  readonly events = new Emitter<SessionEvent>()
  readonly role: IceRole
  readonly #o: SessionOptions
  readonly #key: SubscriptionKey
  readonly #handler: MessageHandler
  readonly #abort = new AbortController()
  readonly #credentialRequests: CredentialRequests
  readonly #restartBackoff: Backoff
  readonly #retired = new RetiredCredentials()
  readonly #recent = new RecentCandidates()
  readonly #storm = new RestartStormDetector()
  readonly #backendStates = new Map<string, BackendStatus['state']>()
  readonly #agentsClosing = new Set<Promise<void>>()
  readonly #messages: PeerMessages
  readonly #iceServers: SessionIceServers
  readonly #forwarding?: PathForwarding
  #state: SessionState = 'idle'
  #started = false
  #closed = false
  #closing?: Promise<void>
  #attempt?: IceAttempt
  #restartTimer?: NodeJS.Timeout
  #offStatus?: () => void
  #offAbort?: () => void

  constructor(options: SessionOptions) {
    // Throws for equal keys: a peer cannot hold a session with itself (WIRE.md §2).
    this.role = iceRole(options.ours.publicKey, options.theirs)
    this.#o = options
    this.#key = { ours: options.ours, theirs: options.theirs }
    this.#credentialRequests = new CredentialRequests(options.backoff)
    this.#restartBackoff = new Backoff(options.backoff)
    this.#handler = {
      onMessage: (received) => this.#onMessage(received),
      onError: (failure) => this.#onEnvelopeError(failure),
    }
    const emit = (event: SessionEventBody) => this.#emit(event)
    this.#messages = new PeerMessages({ backend: options.backend, ours: options.ours, theirs: options.theirs, signal: this.#abort.signal, emit })
    this.#iceServers = new SessionIceServers({ ice: options.ice, servers: options.iceServers, renew: options.renewIceServers, emit })
    if (options.forwarder) this.#forwarding = new PathForwarding(options.forwarder, { ours: options.ours, theirs: options.theirs, role: this.role }, emit)
    const signal = options.signal
    if (signal) {
      const onAbort = () => void this.close()
      if (signal.aborted) queueMicrotask(onAbort)
      else {
        signal.addEventListener('abort', onAbort, { once: true })
        this.#offAbort = () => signal.removeEventListener('abort', onAbort)
      }
    }
  }

  get state(): SessionState {
    return this.#state
  }

  /** Emits the role, subscribes (resolving once the subscription is live), then sends our credentials. */
  async start(): Promise<void> {
    if (this.#started) throw new SessionError('the session was already started')
    if (this.#closed || this.#o.signal?.aborted) throw new SessionError('the session is closed')
    this.#started = true
    const { backend, ours, theirs } = this.#o
    this.#emit({
      type: 'role',
      ours: ours.publicKey.toString(),
      theirs: theirs.toString(),
      role: this.role,
      reason: roleReason(ours.publicKey, theirs, this.role),
    })
    this.#iceServers.announce()
    this.#offStatus = backend.onStatus((status) => this.#onBackendStatus(status))
    try {
      await backend.subscribe(this.#key, this.#handler, this.#abort.signal)
    } catch (err) {
      if (this.#closed) return
      const message = `could not subscribe to ${theirs.short}…'s messages on ${backend.url}: ${errorMessage(err)}`
      this.#emit({ type: 'error', source: 'backend', message })
      await this.close()
      throw new SessionError(message)
    }
    if (this.#closed) return
    this.#emit({ type: 'subscribed', key: ours.publicKey.toString(), peer: theirs.toString(), backend: backend.url })
    this.#iceServers.start()
    this.#requestCredentials(this.#newAttempt())
  }

  /** Idempotent: closes the agent, unsubscribes and clears every timer; the state becomes 'closed'. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    // Before 'closed', so the final forward counters are the last thing the forwarder reports.
    this.#forwarding?.close()
    this.#setState('closed')
    this.#closed = true
    // Before the agent closes: the peer learns at once that we stopped, instead of after 5 s of silence.
    await this.#attempt?.goodbye()
    this.#offAbort?.()
    this.#offStatus?.()
    this.#iceServers.close()
    this.#credentialRequests.stop()
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    if (this.#attempt) this.#endAttempt(this.#attempt)
    this.#abort.abort()
    if (this.#started) {
      // The backend belongs to the caller: we only take our handler off it. The caller's signal bounds the
      // wait (Ctrl-C: drop our handler locally, do not wait for the backend).
      await this.#o.backend.unsubscribe(this.#key, this.#handler, this.#o.signal).catch(() => {})
    }
    await Promise.allSettled([...this.#agentsClosing])
  }

  // ---- credentials ------------------------------------------------------------------------------

  #newAttempt(remote?: IceCredentials): IceAttempt {
    const attempt: IceAttempt = new IceAttempt(
      generateCredentials(),
      {
        emit: (event) => this.#emit(event),
        setState: (state, reason) => this.#setState(state, reason),
        fail: (reason) => this.#failAttempt(attempt, reason),
        connected: (pair) => this.#onConnected(attempt, pair),
        goodbye: () => this.#onPeerGoodbye(attempt),
        localCandidate: (info) => this.#onLocalCandidate(info),
        datagram: (datagram, fromPath) => this.#forwarding?.datagram(attempt, datagram, fromPath),
        closed: () => this.#closed || attempt !== this.#attempt,
      },
      remote,
    )
    this.#attempt = attempt
    return attempt
  }

  /** Sends our credentials asking for the peer's, and repeats with back-off until they arrive. */
  #requestCredentials(attempt: IceAttempt): void {
    this.#credentialRequests.start(
      () => this.#messages.credentials(attempt.local, true),
      () => !this.#closed && attempt === this.#attempt && !attempt.remote,
    )
    // After the request has left: the peer may be waiting for it.
    setImmediate(() => this.#prepareAgent(attempt))
  }

  #onCredentials(c: Credentials): void {
    if (c.ufrag === '' || c.pwd === '') {
      this.#emit({ type: 'error', source: 'ice', message: 'ignored credentials from the peer without ufrag or pwd' })
      return
    }
    const remote = { ufrag: c.ufrag, pwd: c.pwd }
    // A late copy from an agent the peer already replaced: acting on it would restart us for nothing.
    if (this.#retired.has(remote)) return
    const attempt = this.#attempt
    if (!attempt) return
    if (!attempt.remote) {
      attempt.remote = remote
      this.#credentialRequests.stop()
      if (!c.needCreds) return this.#startAgent(attempt)
      this.#messages.credentials(attempt.local, false)
      // The peer waits for this answer: let it leave before the agent's set-up work (werift, sockets).
      setImmediate(() => {
        if (!this.#closed && attempt === this.#attempt && !attempt.done) this.#startAgent(attempt)
      })
      return
    }
    if (sameCredentials(attempt.remote, remote)) {
      // A failed attempt waiting for its restart has no agent behind its credentials: let the restart answer.
      // Otherwise a peer asking again may have restarted its agent without us noticing, so it gets ours again.
      if (c.needCreds && !attempt.done) this.#messages.credentials(attempt.local, false)
      return
    }
    // New credentials: the peer has a new agent, so ours must be new too (its checks use fresh credentials).
    this.#retired.retire(attempt.remote)
    this.#notePeerRestart()
    this.#setState('restarting', `the peer restarted its ICE agent (new ufrag ${shortUfrag(remote.ufrag)})`)
    this.#endAttempt(attempt)
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    const next = this.#newAttempt(remote)
    // needCreds: the peer's new agent has not seen our new credentials; this message also answers its request.
    this.#messages.credentials(next.local, true)
    this.#startAgent(next)
  }

  /** A storm of peer restarts (restart-storm.ts) is told once. */
  #notePeerRestart(): void {
    const restarts = this.#storm.note()
    if (restarts === undefined) return
    this.#emit({
      type: 'error',
      source: 'ice',
      message: `the peer ${this.#o.theirs.short}… restarted ${restarts} times within ${RESTART_STORM_WINDOW_MS / 1000} s: is its key used by two running peers?`,
    })
  }

  // ---- the ICE agent ----------------------------------------------------------------------------

  #startAgent(attempt: IceAttempt): void {
    this.#withAttemptSettings(attempt, (settings) => attempt.start(settings, this.#recent.current()))
  }

  /** While we wait for the peer's credentials, the agent gathers (IceAttempt.prepare). */
  #prepareAgent(attempt: IceAttempt): void {
    this.#withAttemptSettings(attempt, (settings) => attempt.prepare(settings))
  }

  /**
   * Hands `attempt` its settings once the STUN/TURN servers are known (SessionOptions.iceServers may still be
   * a promise being asked for), if it is still the session's live attempt by then.
   */
  #withAttemptSettings(attempt: IceAttempt, use: (settings: AttemptSettings) => void): void {
    const current = () => !this.#closed && attempt === this.#attempt && !attempt.done
    if (this.#iceServers.settled) return void (current() && use(this.#attemptSettings()))
    void this.#iceServers.ready.then(() => current() && use(this.#attemptSettings()))
  }

  #attemptSettings(): AttemptSettings {
    const { ours, theirs, probeTimeoutMs, pathSilence } = this.#o
    return {
      role: this.role,
      probeKey: defaultSharedKeyCache.get(ours, theirs),
      ice: this.#iceServers.current(),
      connectTimeoutMs: this.#o.ice?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      probeTimeoutMs: probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
      ...(pathSilence ? { pathSilence } : {}),
      renewedTurnCredentials: (url) => this.#iceServers.renewedTurn(url),
    }
  }

  #onLocalCandidate(info: CandidateInfo): void {
    this.#emit({ type: 'candidate', side: 'local', candidate: info })
    this.#messages.publish(Message.fromPartial({ candidate: candidateInfoToProto(info) }), formatCandidate(info))
  }

  #onCandidate(candidate: ProtoCandidate): void {
    let info: CandidateInfo
    try {
      info = candidateInfoFromProto(candidate)
    } catch (err) {
      this.#emit({ type: 'error', source: 'ice', message: `ignored a candidate from the peer: ${errorMessage(err)}` })
      return
    }
    if (this.#recent.remember(info)) this.#emit({ type: 'candidate', side: 'remote', candidate: info })
    this.#attempt?.addRemoteCandidate(info)
  }

  #onConnected(attempt: IceAttempt, pair: NominatedPair): void {
    if (attempt !== this.#attempt || attempt.done || this.#closed) return
    this.#restartBackoff.reset()
    this.#setState('connected')
    this.#emit({ type: 'pair', local: pair.local, remote: pair.remote })
    // cunīcu forwards from here on (WIRE.md §8); the probe runs beside the data, not before it.
    this.#forwarding?.attach(attempt)
    attempt.watchPath()
  }

  /** The peer stopped cleanly: this agent has no one left to talk to, so wait for the peer's next one. */
  #onPeerGoodbye(attempt: IceAttempt): void {
    if (attempt !== this.#attempt || attempt.done || this.#closed) return
    this.#endAttempt(attempt)
    if (attempt.remote) this.#retired.retire(attempt.remote)
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    this.#restartBackoff.reset()
    const next = this.#newAttempt()
    this.#setState('idle', 'the peer stopped (it said goodbye on the path): waiting for the peer')
    this.#requestCredentials(next)
  }

  /** Ends this attempt and, unless closed, starts a new one with new credentials after a back-off delay. */
  #failAttempt(attempt: IceAttempt, reason: string): void {
    if (attempt !== this.#attempt || attempt.done || this.#closed) return
    this.#setState('failed', reason)
    this.#endAttempt(attempt)
    // The peer will get new credentials from us and restart too; late copies of its old ones are stale.
    if (attempt.remote) this.#retired.retire(attempt.remote)
    clearTimeout(this.#restartTimer)
    const delay = this.#restartBackoff.next()
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined
      if (this.#closed || attempt !== this.#attempt) return
      const next = this.#newAttempt()
      this.#setState('idle', `retrying with new credentials after ${(delay / 1000).toFixed(1)} s`)
      this.#requestCredentials(next)
    }, delay)
  }

  #endAttempt(attempt: IceAttempt): void {
    this.#forwarding?.detach(attempt)
    const closing = attempt.end()
    if (!closing) return
    this.#agentsClosing.add(closing)
    void closing.finally(() => this.#agentsClosing.delete(closing))
  }

  // ---- backend ----------------------------------------------------------------------------------

  #onMessage(received: ReceivedMessage): void {
    if (this.#closed) return
    try {
      const { message } = received
      this.#emit({
        type: 'envelope',
        direction: 'in',
        kind: messageKind(message),
        size: received.size,
        backend: received.backend,
        detail: describeMessage(message),
      })
      if (message.credentials) this.#onCredentials(message.credentials)
      if (message.candidate) this.#onCandidate(message.candidate)
    } catch (err) {
      // Handlers run inside the backend's receive path: report, never throw into it.
      this.#emit({ type: 'error', source: 'ice', message: `could not handle a message from the peer: ${errorMessage(err)}` })
    }
  }

  #onEnvelopeError(failure: EnvelopeFailure): void {
    if (this.#closed) return
    this.#emit({ type: 'error', source: 'envelope', message: `${failure.backend}: ${failure.error.message}` })
  }

  #onBackendStatus(status: BackendStatus): void {
    if (this.#closed) return
    this.#emit({ type: 'backend', status })
    const previous = this.#backendStates.get(status.backend)
    this.#backendStates.set(status.backend, status.state)
    const attempt = this.#attempt
    // Whatever we sent while the backend was down is lost; waiting for the next back-off step could take a minute.
    if (status.state === 'connected' && previous === 'reconnecting' && attempt && !attempt.remote && !attempt.done) {
      this.#messages.credentials(attempt.local, true)
    }
  }

  // ---- events -----------------------------------------------------------------------------------

  #setState(state: SessionState, reason?: string): void {
    if (this.#closed) return
    const previous = this.#state
    if (state === previous && reason === undefined) return
    this.#state = state
    this.#emit(reason === undefined ? { type: 'state', state, previous } : { type: 'state', state, previous, reason })
  }

  #emit(event: SessionEventBody): void {
    if (this.#closed) return
    this.events.emit({ at: new Date().toISOString(), ...event } as SessionEvent)
  }
}

export function roleReason(ours: PublicKey, theirs: PublicKey, role: IceRole): string {
  return role === 'controlling'
    ? `our key ${ours.short}… < their key ${theirs.short}…: we control`
    : `our key ${ours.short}… > their key ${theirs.short}…: they control`
}

