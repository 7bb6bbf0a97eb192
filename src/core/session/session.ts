// The session state machine of WIRE.md §7 (cunīcu's endpoint discovery): exchange ICE credentials over a
// signaling backend, trickle candidates, connect one werift agent, verify the path, and restart with new
// credentials whenever either side fails or restarts. Everything it does is told as SessionEvents.
import type { Credentials } from '../../gen/feature/epdisc.js'
import type { Candidate as ProtoCandidate } from '../../gen/feature/epdisc_candidate.js'
import { Message } from '../../gen/signaling/signaling.js'
import type { Backend, BackendStatus, EnvelopeFailure, MessageHandler, ReceivedMessage, SubscriptionKey } from '../backend.js'
import { Emitter } from '../emitter.js'
import { iceRole, type IceRole, type PrivateKey, type PublicKey } from '../keys.js'
import { messageKind } from '../message-kind.js'
import { defaultSharedKeyCache } from '../shared-key-cache.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import { candidateInfoFromProto, candidateInfoToProto, candidateKey, formatCandidate } from './candidate-mapping.js'
import { generateCredentials, sameCredentials, shortUfrag, type IceCredentials } from './credentials.js'
import type { CandidateInfo, SessionEvent, SessionState } from './events.js'
import { IceAgent, type NominatedPair } from './ice-agent.js'
import { DEFAULT_CONNECT_TIMEOUT_MS, type IceOptions } from './ice-options.js'
import type { Forwarder } from './forwarder.js'
import { forwardKey } from './forward-seal.js'
import { PairKeepalive } from './pair-keepalive.js'
import { isProbe, PathProbe } from './path-probe.js'
import { SilenceDetector } from './silence-detector.js'
import { RecentCandidates } from './recent-candidates.js'
import { RESTART_STORM_WINDOW_MS, RestartStormDetector } from './restart-storm.js'
import { RetiredCredentials } from './retired-credentials.js'
import { RelayRenewal } from './relay-renewal.js'
import type { ResolvedIceServers } from './relays.js'

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
   * STUN/TURN servers gathered before the session (flags and the servers' RelayRegistry, relays.ts): used in
   * addition to `ice`, and told as a 'relays' event (and an 'error' per server that could not be asked).
   */
  iceServers?: ResolvedIceServers
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


/** Distributes Omit over the union, so each event variant keeps its own fields. */
type EventBody = SessionEvent extends infer E ? (E extends unknown ? Omit<E, 'at'> : never) : never

/** One local ICE agent generation: our credentials, the peer's once known, the agent and its path probe. */
interface Attempt {
  readonly generation: number
  readonly local: IceCredentials
  remote?: IceCredentials
  agent?: IceAgent
  probe?: PathProbe
  /** While connected: hears the peer on the pair (silence-detector.ts) and keeps it talking (pair-keepalive.ts). */
  silence?: SilenceDetector
  keepalive?: PairKeepalive
  /** Fails an agent that never gets to connect (e.g. the peer's candidates were lost). */
  watchdog?: NodeJS.Timeout
  remoteKeys: Set<string>
  localCount: number
  remoteCount: number
  connecting: boolean
  connected: boolean
  done: boolean
}

export class Session {
  /** Subscribe before start() to see everything. */
  readonly events = new Emitter<SessionEvent>()
  readonly role: IceRole
  readonly #o: SessionOptions
  readonly #key: SubscriptionKey
  readonly #handler: MessageHandler
  readonly #abort = new AbortController()
  readonly #credsBackoff: Backoff
  readonly #restartBackoff: Backoff
  readonly #retired = new RetiredCredentials()
  readonly #recent = new RecentCandidates()
  readonly #storm = new RestartStormDetector()
  readonly #backendStates = new Map<string, BackendStatus['state']>()
  readonly #agentsClosing = new Set<Promise<void>>()
  #state: SessionState = 'idle'
  #started = false
  #closed = false
  #closing?: Promise<void>
  #attempt?: Attempt
  #generation = 0
  #credsTimer?: NodeJS.Timeout
  #restartTimer?: NodeJS.Timeout
  #offStatus?: () => void
  #offAbort?: () => void
  #offForward?: () => void
  /** The attempt whose path the forwarder carries datagrams over. */
  #forwarding?: Attempt
  readonly #relayRenewal?: RelayRenewal
  /** The ICE options as given, before any gathered STUN/TURN servers were added. */
  readonly #iceFlags: IceOptions | undefined

  constructor(options: SessionOptions) {
    // Throws for equal keys: a peer cannot hold a session with itself (WIRE.md §2).
    this.role = iceRole(options.ours.publicKey, options.theirs)
    this.#o = { ...options, ice: withIceServers(options.ice, options.iceServers) }
    this.#iceFlags = options.ice
    this.#key = { ours: options.ours, theirs: options.theirs }
    this.#credsBackoff = new Backoff(options.backoff)
    this.#restartBackoff = new Backoff(options.backoff)
    this.#handler = {
      onMessage: (received) => this.#onMessage(received),
      onError: (failure) => this.#onEnvelopeError(failure),
    }
    if (options.iceServers && options.renewIceServers) {
      this.#relayRenewal = new RelayRenewal({
        initial: options.iceServers,
        fetch: options.renewIceServers,
        onRenewed: (servers) => this.#emit({ type: 'relays', stun: servers.stunServers.map((s) => s.url), turn: servers.turnInfo, skipped: servers.skipped, renewed: true }),
        onError: (message) => this.#emit({ type: 'error', source: 'backend', message }),
      })
    }
    const forwarder = options.forwarder
    if (forwarder) {
      const offStats = forwarder.stats.on((stats) => this.#emit({ type: 'forward', ...stats }))
      const offErrors = forwarder.errors.on((message) => this.#emit({ type: 'error', source: 'forward', message }))
      this.#offForward = () => (offStats(), offErrors())
    }
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
  #announceIceServers(): void {
    const servers = this.#o.iceServers
    if (!servers) return
    for (const message of servers.errors) this.#emit({ type: 'error', source: 'backend', message: `${message}; going on without its relays` })
    if (servers.stunServers.length || servers.turnInfo.length || servers.skipped.length) {
      this.#emit({ type: 'relays', stun: servers.stunServers.map((s) => s.url), turn: servers.turnInfo, skipped: servers.skipped })
    }
  }

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
    this.#announceIceServers()
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
    this.#relayRenewal?.start()
    this.#requestCredentials(this.#newAttempt())
  }

  /** Idempotent: closes the agent, unsubscribes and clears every timer; the state becomes 'closed'. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    // Before 'closed', so the final forward counters are the last thing the forwarder reports.
    this.#detachForwarder()
    this.#offForward?.()
    this.#setState('closed')
    this.#closed = true
    // Before the agent closes: the peer learns at once that we stopped, instead of after 5 s of silence.
    if (this.#attempt?.connected && !this.#attempt.done) await this.#attempt.probe?.goodbye()
    this.#offAbort?.()
    this.#offStatus?.()
    this.#relayRenewal?.close()
    this.#clearCredsTimer()
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    if (this.#attempt) this.#endAttempt(this.#attempt)
    this.#abort.abort()
    if (this.#started) {
      // The backend belongs to the caller: we only take our handler off it.
      await this.#o.backend.unsubscribe(this.#key, this.#handler).catch(() => {})
    }
    await Promise.allSettled([...this.#agentsClosing])
  }

  // ---- credentials ------------------------------------------------------------------------------

  #newAttempt(remote?: IceCredentials): Attempt {
    const attempt: Attempt = {
      generation: ++this.#generation,
      local: generateCredentials(),
      remoteKeys: new Set(),
      localCount: 0,
      remoteCount: 0,
      connecting: false,
      connected: false,
      done: false,
    }
    if (remote) attempt.remote = remote
    this.#attempt = attempt
    return attempt
  }

  /** Sends our credentials asking for the peer's, and repeats with back-off until they arrive. */
  #requestCredentials(attempt: Attempt): void {
    this.#clearCredsTimer()
    this.#credsBackoff.reset()
    this.#sendCredentials(attempt, true)
    this.#scheduleCredentialResend(attempt)
  }

  #scheduleCredentialResend(attempt: Attempt): void {
    if (this.#closed || attempt !== this.#attempt || attempt.remote) return
    this.#credsTimer = setTimeout(() => {
      this.#credsTimer = undefined
      if (this.#closed || attempt !== this.#attempt || attempt.remote) return
      this.#sendCredentials(attempt, true)
      this.#scheduleCredentialResend(attempt)
    }, this.#credsBackoff.next())
  }

  #clearCredsTimer(): void {
    clearTimeout(this.#credsTimer)
    this.#credsTimer = undefined
  }

  #sendCredentials(attempt: Attempt, needCreds: boolean): void {
    const { ufrag, pwd } = attempt.local
    this.#publish(
      Message.fromPartial({ credentials: { ufrag, pwd, needCreds } }),
      `ufrag ${shortUfrag(ufrag)}${needCreds ? ', need creds' : ''}`,
    )
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
      this.#clearCredsTimer()
      if (c.needCreds) this.#sendCredentials(attempt, false)
      this.#startAgent(attempt)
      return
    }
    if (sameCredentials(attempt.remote, remote)) {
      // A failed attempt waiting for its restart has no agent behind its credentials: let the restart answer.
      // Otherwise a peer asking again may have restarted its agent without us noticing, so it gets ours again.
      if (c.needCreds && !attempt.done) this.#sendCredentials(attempt, false)
      return
    }
    // New credentials: the peer has a new agent, so ours must be new too (its checks use fresh credentials).
    this.#retire(attempt.remote)
    this.#notePeerRestart()
    this.#setState('restarting', `the peer restarted its ICE agent (new ufrag ${shortUfrag(remote.ufrag)})`)
    this.#endAttempt(attempt)
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    const next = this.#newAttempt(remote)
    // needCreds: the peer's new agent has not seen our new credentials; this message also answers its request.
    this.#sendCredentials(next, true)
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

  #retire(credentials: IceCredentials): void {
    this.#retired.retire(credentials)
  }

  // ---- the ICE agent ----------------------------------------------------------------------------

  #startAgent(attempt: Attempt): void {
    const remote = attempt.remote
    if (!remote || attempt.done) return
    this.#setState('gathering')
    const timeoutMs = this.#o.ice?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    let agent: IceAgent
    let probeKey: Uint8Array
    try {
      probeKey = defaultSharedKeyCache.get(this.#o.ours, this.#o.theirs)
      agent = new IceAgent({
        controlling: this.role === 'controlling',
        local: attempt.local,
        remote,
        ice: this.#currentIce(),
        renewedTurnCredentials: (url) => this.#relayRenewal?.current.turnServers.find((t) => t.url === url),
      })
    } catch (err) {
      this.#failAttempt(attempt, `could not create the ICE agent: ${errorMessage(err)}`)
      return
    }
    attempt.agent = agent
    const current = () => attempt === this.#attempt && !attempt.done && !this.#closed
    attempt.probe = new PathProbe({
      key: probeKey,
      role: this.role,
      send: async (datagram) => void agent.send(datagram),
      timeoutMs: this.#o.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
      ufrags: { local: attempt.local.ufrag, remote: remote.ufrag },
      onGoodbye: () => current() && this.#onPeerGoodbye(attempt),
      onVerified: (rttMs) => {
        if (!current()) return
        this.#emit({ type: 'verified', rttMs })
      },
      onUnverified: (reason) => current() && this.#emit({ type: 'unverified', reason }),
      onError: (message) => current() && this.#emit({ type: 'error', source: 'probe', message }),
    })
    // Before connect(): the controlled side can receive the peer's probes before its connect() resolves.
    agent.datagrams.setHandler((datagram, fromPair) => this.#onDatagram(attempt, probeKey, datagram, fromPair))
    agent.localCandidates.on((info) => this.#onLocalCandidate(attempt, info))
    agent.serverErrors.on((message) => current() && this.#emit({ type: 'error', source: 'ice', message }))
    agent.relayLost.on(({ candidate, reason }) => {
      if (!current()) return
      if (attempt.connected && agent.isSelectedLocal(candidate)) {
        this.#failAttempt(attempt, `${reason}: the relayed path is gone, restarting with a new allocation`)
      } else {
        this.#emit({ type: 'error', source: 'ice', message: `relayed candidate ${formatCandidate(candidate)} lost: ${reason}` })
      }
    })
    agent.states.on((state) => {
      if ((state === 'failed' || state === 'disconnected') && attempt.connected) {
        this.#failAttempt(attempt, 'the peer stopped answering ICE consent checks: the path is gone')
      }
    })
    attempt.watchdog = setTimeout(() => {
      attempt.watchdog = undefined
      if (!attempt.connecting) {
        const missing = attempt.localCount === 0 ? 'no local candidate was gathered' : 'no usable candidate arrived from the peer'
        this.#failAttempt(attempt, `could not start connecting within ${timeoutMs / 1000} s: ${missing}`)
      }
    }, timeoutMs)
    // Candidates may have overtaken the credentials they belong to; stale ones only add pairs that fail.
    for (const info of this.#recent.current()) this.#addRemoteCandidate(attempt, info)
    agent.gather().then(
      () => {
        if (current() && attempt.localCount === 0) {
          this.#failAttempt(attempt, 'gathering found no local candidate: no usable network interface')
        }
      },
      (err: unknown) => this.#failAttempt(attempt, `gathering candidates failed: ${errorMessage(err)}`),
    )
  }

  #onLocalCandidate(attempt: Attempt, info: CandidateInfo): void {
    if (attempt.done || this.#closed) return
    attempt.localCount++
    this.#emit({ type: 'candidate', side: 'local', candidate: info })
    this.#publish(Message.fromPartial({ candidate: candidateInfoToProto(info) }), formatCandidate(info))
    this.#maybeConnect(attempt)
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
    const attempt = this.#attempt
    if (attempt?.agent) this.#addRemoteCandidate(attempt, info)
  }

  #addRemoteCandidate(attempt: Attempt, info: CandidateInfo): void {
    const agent = attempt.agent
    const key = candidateKey(info)
    if (!agent || attempt.done || attempt.remoteKeys.has(key)) return
    attempt.remoteKeys.add(key)
    agent.addRemoteCandidate(info).then(
      () => {
        // werift drops prflx candidates (it learns its own from checks), so they cannot start a connect.
        if (attempt.done || info.type === 'prflx') return
        attempt.remoteCount++
        this.#maybeConnect(attempt)
      },
      (err: unknown) => {
        if (!attempt.done) {
          this.#emit({ type: 'error', source: 'ice', message: `could not add candidate ${formatCandidate(info)}: ${errorMessage(err)}` })
        }
      },
    )
  }

  #maybeConnect(attempt: Attempt): void {
    const agent = attempt.agent
    if (!agent || attempt.connecting || attempt.done || attempt.localCount === 0 || attempt.remoteCount === 0) return
    attempt.connecting = true
    clearTimeout(attempt.watchdog)
    attempt.watchdog = undefined
    this.#setState('connecting')
    agent
      .connect({
        timeoutMs: this.#o.ice?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        onChecking: () => {
          if (attempt === this.#attempt && !attempt.done && !attempt.connected) this.#setState('checking')
        },
      })
      .then(
        (pair) => this.#onConnected(attempt, pair),
        (err: unknown) => this.#failAttempt(attempt, errorMessage(err)),
      )
  }

  #onConnected(attempt: Attempt, pair: NominatedPair): void {
    if (attempt !== this.#attempt || attempt.done || this.#closed) return
    attempt.connected = true
    this.#restartBackoff.reset()
    this.#setState('connected')
    this.#emit({ type: 'pair', local: pair.local, remote: pair.remote })
    this.#watchSilence(attempt)
    // cunīcu forwards from here on (WIRE.md §8); the probe runs beside the data, not before it.
    this.#attachForwarder(attempt)
    attempt.probe?.start()
  }

  /**
   * Sorts what reaches the agent's sockets: a sealed path probe (it authenticates itself, from any source);
   * data only from the path's remote address (WIRE.md §8, pair-datagrams.ts). A datagram that merely starts
   * with the probe's magic but does not open as one is data. Only the peer's probes and data from the path
   * count as hearing the peer (the silence detector); a stranger's datagrams never keep a dead path alive.
   */
  #onDatagram(attempt: Attempt, probeKey: Uint8Array, datagram: Buffer, fromPath: boolean): void {
    if (attempt.probe?.handle(datagram)) return void attempt.silence?.heard()
    if (isProbe(probeKey, datagram)) return
    const forwarder = this.#o.forwarder
    if (!fromPath) {
      if (forwarder && this.#forwarding === attempt) forwarder.noteForeign()
      return
    }
    attempt.silence?.heard()
    if (forwarder && this.#forwarding === attempt) forwarder.handle(datagram)
  }

  /** pion's disconnected/failed on top of werift, which has no disconnected and fails only after 30 s. */
  #watchSilence(attempt: Attempt): void {
    const agent = attempt.agent
    if (!agent) return
    const { disconnectedAfterMs, failedAfterMs, keepaliveIntervalMs } = this.#o.pathSilence ?? {}
    const current = () => attempt === this.#attempt && !attempt.done && !this.#closed
    const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`
    const silence = new SilenceDetector({
      ...(disconnectedAfterMs !== undefined ? { disconnectedAfterMs } : {}),
      ...(failedAfterMs !== undefined ? { failedAfterMs } : {}),
      onSilent: (ms) => current() && this.#setState('disconnected', `nothing heard from the peer on the path for ${seconds(ms)}`),
      onHeardAgain: (ms) => current() && this.#setState('connected', `the peer is heard again after ${seconds(ms)} of silence`),
      onFailed: (ms) => this.#failAttempt(attempt, `nothing heard from the peer on the path for ${seconds(ms)}: the path is gone`),
    })
    const keepalive = new PairKeepalive(agent.connection, {
      ...(keepaliveIntervalMs !== undefined ? { intervalMs: keepaliveIntervalMs } : {}),
      onAnswer: () => silence.heard(),
    })
    attempt.silence = silence
    attempt.keepalive = keepalive
    silence.start()
    keepalive.start()
  }

  /** The peer stopped cleanly: this agent has no one left to talk to, so wait for the peer's next one. */
  #onPeerGoodbye(attempt: Attempt): void {
    if (attempt !== this.#attempt || attempt.done || this.#closed) return
    this.#endAttempt(attempt)
    if (attempt.remote) this.#retire(attempt.remote)
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    this.#restartBackoff.reset()
    const next = this.#newAttempt()
    this.#setState('idle', 'the peer stopped (it said goodbye on the path): waiting for the peer')
    this.#requestCredentials(next)
  }

  /** Ends this attempt and, unless closed, starts a new one with new credentials after a back-off delay. */
  #failAttempt(attempt: Attempt, reason: string): void {
    if (attempt !== this.#attempt || attempt.done || this.#closed) return
    this.#setState('failed', reason)
    this.#endAttempt(attempt)
    // The peer will get new credentials from us and restart too; late copies of its old ones are stale.
    if (attempt.remote) this.#retire(attempt.remote)
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

  #attachForwarder(attempt: Attempt): void {
    const { forwarder } = this.#o
    const agent = attempt.agent
    if (!forwarder || !agent || !attempt.remote) return
    this.#forwarding = attempt
    const send = (datagram: Uint8Array) => agent.send(datagram)
    if (!forwarder.sealed) return forwarder.attach({ send })
    const boxKey = defaultSharedKeyCache.get(this.#o.ours, this.#o.theirs)
    forwarder.attach({ send, seal: { key: forwardKey(boxKey, this.role, attempt.local, attempt.remote), role: this.role } })
  }

  #detachForwarder(): void {
    if (!this.#forwarding) return
    this.#forwarding = undefined
    this.#o.forwarder?.detach()
  }

  #endAttempt(attempt: Attempt): void {
    if (this.#forwarding === attempt) this.#detachForwarder()
    if (attempt.done) return
    attempt.done = true
    clearTimeout(attempt.watchdog)
    attempt.watchdog = undefined
    attempt.probe?.stop()
    attempt.silence?.close()
    attempt.keepalive?.close()
    const agent = attempt.agent
    if (agent) {
      const closing = agent.close()
      this.#agentsClosing.add(closing)
      void closing.finally(() => this.#agentsClosing.delete(closing))
    }
  }

  /** The ICE options for a new agent: the renewed STUN/TURN servers when renewal is on. */
  #currentIce(): IceOptions | undefined {
    return this.#relayRenewal ? withIceServers(this.#iceFlags, this.#relayRenewal.current) : this.#o.ice
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
        detail: describeIncoming(message),
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
      this.#sendCredentials(attempt, true)
    }
  }

  #publish(message: Message, detail: string): void {
    const { backend, ours, theirs } = this.#o
    const kind = messageKind(message)
    let sending: Promise<{ size: number }>
    try {
      sending = backend.publish(ours, theirs, message, this.#abort.signal)
    } catch (err) {
      sending = Promise.reject(err)
    }
    sending.then(
      (result) => {
        if (!this.#closed) this.#emit({ type: 'envelope', direction: 'out', kind, size: result.size, backend: backend.url, detail })
      },
      (err: unknown) => {
        if (!this.#closed) {
          this.#emit({ type: 'error', source: 'publish', message: `could not send ${kind} (${detail}) via ${backend.url}: ${errorMessage(err)}` })
        }
      },
    )
  }

  // ---- events -----------------------------------------------------------------------------------

  #setState(state: SessionState, reason?: string): void {
    if (this.#closed) return
    const previous = this.#state
    if (state === previous && reason === undefined) return
    this.#state = state
    this.#emit(reason === undefined ? { type: 'state', state, previous } : { type: 'state', state, previous, reason })
  }

  #emit(event: EventBody): void {
    if (this.#closed) return
    this.events.emit({ at: new Date().toISOString(), ...event } as SessionEvent)
  }
}

export function roleReason(ours: PublicKey, theirs: PublicKey, role: IceRole): string {
  return role === 'controlling'
    ? `our key ${ours.short}… < their key ${theirs.short}…: we control`
    : `our key ${ours.short}… > their key ${theirs.short}…: they control`
}

function describeIncoming(message: Message): string | undefined {
  if (message.credentials) {
    const c = message.credentials
    return `ufrag ${shortUfrag(c.ufrag)}${c.needCreds ? ', need creds' : ''}`
  }
  if (message.candidate) {
    try {
      return formatCandidate(candidateInfoFromProto(message.candidate))
    } catch {
      return 'unusable candidate'
    }
  }
  return undefined
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The gathered STUN/TURN servers on top of the explicit ICE options; renewed ones once there are. */
function withIceServers(ice: IceOptions | undefined, servers: ResolvedIceServers | undefined): IceOptions | undefined {
  if (!servers) return ice
  return {
    ...ice,
    ...(servers.stunServers.length
      ? { stunServers: [...(ice?.stunServers ?? []), ...servers.stunServers.filter((s) => !ice?.stunServers?.some((t) => t.url === s.url))] }
      : {}),
    ...(servers.turnServers.length ? { turnServers: [...(ice?.turnServers ?? []), ...servers.turnServers] } : {}),
  }
}
