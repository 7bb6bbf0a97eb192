// One local ICE agent generation of a session (WIRE.md §7): our credentials and the peer's, the werift agent,
// the candidates it trickles both ways, connect(), and, once connected, what watches the path (the sealed
// path probe, the silence detector and its keepalive). The session decides what an outcome means (a new
// attempt, a restart, a goodbye); this file only wires one agent's parts together and reports back.
import { errorMessage } from '../error-message.js'
import type { IceRole } from '../keys.js'
import { candidateKey, formatCandidate } from './candidate-mapping.js'
import type { IceCredentials } from './credentials.js'
import type { CandidateInfo, SessionEventBody, SessionState } from './events.js'
import { IceAgent, type NominatedPair } from './ice-agent.js'
import type { IceOptions } from './ice-options.js'
import { PairKeepalive } from './pair-keepalive.js'
import { isProbe, PathProbe } from './path-probe.js'
import type { TurnServer } from './relays.js'
import { SilenceDetector } from './silence-detector.js'

/** What one attempt needs to know, fixed for its lifetime. */
export interface AttemptSettings {
  role: IceRole
  /** The session's box key: the path probe is sealed with it. */
  probeKey: Uint8Array
  ice: IceOptions | undefined
  connectTimeoutMs: number
  probeTimeoutMs: number
  pathSilence?: { disconnectedAfterMs?: number; failedAfterMs?: number; keepaliveIntervalMs?: number }
  /** TURN credentials renewed after the agent was created (relay-renewal.ts). */
  renewedTurnCredentials?: (url: string) => TurnServer | undefined
}

/** How an attempt reports to the session that owns it. */
export interface AttemptHooks {
  emit(event: SessionEventBody): void
  setState(state: SessionState, reason?: string): void
  /** The attempt cannot go on; the session restarts (it ignores attempts it already replaced). */
  fail(reason: string): void
  connected(pair: NominatedPair): void
  /** The peer said goodbye on the path. */
  goodbye(): void
  /** A local candidate to publish to the peer. */
  localCandidate(info: CandidateInfo): void
  /** A datagram that is not a path probe; `fromPath`: from the selected pair's remote address. */
  datagram(datagram: Buffer, fromPath: boolean): void
  /** Whether the session is closed (nothing is reported then). */
  closed(): boolean
}

export class IceAttempt {
  readonly local: IceCredentials
  remote: IceCredentials | undefined
  #agent?: IceAgent
  #probe?: PathProbe
  #silence?: SilenceDetector
  #keepalive?: PairKeepalive
  /** Fails an agent that never gets to connect (e.g. the peer's candidates were lost). */
  #watchdog?: NodeJS.Timeout
  readonly #remoteKeys = new Set<string>()
  #localCount = 0
  #remoteCount = 0
  #connecting = false
  #connected = false
  #done = false
  /** start() ran: the peer's credentials are known, candidates are told and published. */
  #started = false
  /** Local candidates gathered before start(), told and published by it. */
  #early: CandidateInfo[] = []
  #gathering: 'running' | 'done' | { error: string } = 'running'
  readonly #hooks: AttemptHooks
  #settings?: AttemptSettings

  constructor(local: IceCredentials, hooks: AttemptHooks, remote?: IceCredentials) {
    this.local = local
    this.remote = remote
    this.#hooks = hooks
  }

  get agent(): IceAgent | undefined {
    return this.#agent
  }

  get connected(): boolean {
    return this.#connected
  }

  /** Ended: replaced, failed or closed. An ended attempt reports nothing more. */
  get done(): boolean {
    return this.#done
  }

  /**
   * Creates the agent and gathers before the peer's credentials are here: they only name the peer's side,
   * and candidates take time (a socket each, and a STUN or TURN round trip on real networks), so they are
   * ready when the credentials come. Nothing is told or published until start(): the peer still gets our
   * credentials first and our candidates after them, as without this.
   */
  prepare(settings: AttemptSettings): void {
    if (this.#agent || this.#done || this.#started) return
    this.#createAgent(settings)
  }

  /** Starts for the known remote credentials (gathering, if prepare() did not); `candidates` came before. */
  start(settings: AttemptSettings, candidates: Iterable<CandidateInfo>): void {
    const remote = this.remote
    if (!remote || this.#done || this.#started) return
    this.#started = true
    const hooks = this.#hooks
    hooks.setState('gathering')
    const agent = this.#agent ?? this.#createAgent(settings)
    if (!agent) return
    agent.setRemote(remote)
    // A prepared agent keeps the settings it was made with (the same servers; the rest does not change).
    const { probeKey, role, probeTimeoutMs, connectTimeoutMs } = this.#settings ?? settings
    const live = () => !this.#done && !hooks.closed()
    this.#probe = new PathProbe({
      key: probeKey,
      role,
      send: async (datagram) => void agent.send(datagram),
      timeoutMs: probeTimeoutMs,
      ufrags: { local: this.local.ufrag, remote: remote.ufrag },
      onGoodbye: () => live() && hooks.goodbye(),
      onVerified: (rttMs) => live() && hooks.emit({ type: 'verified', rttMs }),
      onUnverified: (reason) => live() && hooks.emit({ type: 'unverified', reason }),
      onError: (message) => live() && hooks.emit({ type: 'error', source: 'probe', message }),
    })
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined
      if (!this.#connecting) {
        const missing = this.#localCount === 0 ? 'no local candidate was gathered' : 'no usable candidate arrived from the peer'
        hooks.fail(`could not start connecting within ${connectTimeoutMs / 1000} s: ${missing}`)
      }
    }, connectTimeoutMs)
    // Candidates may have overtaken the credentials they belong to; stale ones only add pairs that fail.
    for (const info of candidates) this.addRemoteCandidate(info)
    const early = this.#early
    this.#early = []
    for (const info of early) this.#onLocalCandidate(info)
    this.#onGathered()
  }

  /** The agent, its handlers and its gathering; undefined (and the attempt failed) if werift refused. */
  #createAgent(settings: AttemptSettings): IceAgent | undefined {
    const hooks = this.#hooks
    let agent: IceAgent
    try {
      agent = new IceAgent({
        controlling: settings.role === 'controlling',
        local: this.local,
        ...(this.remote ? { remote: this.remote } : {}),
        ice: settings.ice,
        renewedTurnCredentials: (url) => settings.renewedTurnCredentials?.(url),
      })
    } catch (err) {
      hooks.fail(`could not create the ICE agent: ${errorMessage(err)}`)
      return undefined
    }
    this.#agent = agent
    this.#settings = settings
    const live = () => !this.#done && !hooks.closed()
    // Before connect(): the controlled side can receive the peer's probes before its connect() resolves.
    agent.datagrams.setHandler((datagram, fromPair) => this.#onDatagram(settings.probeKey, datagram, fromPair))
    agent.localCandidates.on((info) => (this.#started ? this.#onLocalCandidate(info) : void this.#early.push(info)))
    agent.serverErrors.on((message) => live() && hooks.emit({ type: 'error', source: 'ice', message }))
    agent.relayLost.on(({ candidate, reason }) => {
      if (!live()) return
      if (this.#connected && agent.isSelectedLocal(candidate)) {
        hooks.fail(`${reason}: the relayed path is gone, restarting with a new allocation`)
      } else {
        hooks.emit({ type: 'error', source: 'ice', message: `relayed candidate ${formatCandidate(candidate)} lost: ${reason}` })
      }
    })
    agent.states.on((state) => {
      if ((state === 'failed' || state === 'disconnected') && this.#connected) {
        hooks.fail('the peer stopped answering ICE consent checks: the path is gone')
      }
    })
    agent.gather().then(
      () => {
        this.#gathering = 'done'
        this.#onGathered()
      },
      (err: unknown) => {
        this.#gathering = { error: `gathering candidates failed: ${errorMessage(err)}` }
        this.#onGathered()
      },
    )
    return agent
  }

  /** Gathering's outcome counts once the attempt started (a prepared agent may finish before). */
  #onGathered(): void {
    const gathering = this.#gathering
    if (!this.#started || gathering === 'running' || this.#done || this.#hooks.closed()) return
    if (gathering !== 'done') this.#hooks.fail(gathering.error)
    else if (this.#localCount === 0) this.#hooks.fail('gathering found no local candidate: no usable network interface')
  }

  /** A remote candidate for this agent (each one once); ignored before start (the session keeps them for it). */
  addRemoteCandidate(info: CandidateInfo): void {
    const agent = this.#agent
    const key = candidateKey(info)
    if (!agent || !this.#started || this.#done || this.#remoteKeys.has(key)) return
    this.#remoteKeys.add(key)
    agent.addRemoteCandidate(info).then(
      () => {
        // werift drops prflx candidates (it learns its own from checks), so they cannot start a connect.
        if (this.#done || info.type === 'prflx') return
        this.#remoteCount++
        this.#maybeConnect()
      },
      (err: unknown) => {
        if (!this.#done) this.#hooks.emit({ type: 'error', source: 'ice', message: `could not add candidate ${formatCandidate(info)}: ${errorMessage(err)}` })
      },
    )
  }

  /** On connected: start hearing the peer on the path, then the probe (beside the data, not before it). */
  watchPath(): void {
    this.#watchSilence()
    this.#probe?.start()
  }

  /** A clean stop: tells the peer on the path, if there is one, before the agent closes. */
  async goodbye(): Promise<void> {
    if (this.#connected && !this.#done) await this.#probe?.goodbye()
  }

  /** Idempotent; returns the agent's closing, if it had one to close. */
  end(): Promise<void> | undefined {
    if (this.#done) return undefined
    this.#done = true
    clearTimeout(this.#watchdog)
    this.#watchdog = undefined
    this.#probe?.stop()
    this.#silence?.close()
    this.#keepalive?.close()
    return this.#agent?.close()
  }

  #onLocalCandidate(info: CandidateInfo): void {
    if (this.#done || this.#hooks.closed()) return
    this.#localCount++
    this.#hooks.localCandidate(info)
    this.#maybeConnect()
  }

  #maybeConnect(): void {
    const agent = this.#agent
    const settings = this.#settings
    if (!agent || !settings || this.#connecting || this.#done || this.#localCount === 0 || this.#remoteCount === 0) return
    this.#connecting = true
    clearTimeout(this.#watchdog)
    this.#watchdog = undefined
    this.#hooks.setState('connecting')
    agent
      .connect({
        timeoutMs: settings.connectTimeoutMs,
        onChecking: () => {
          if (!this.#done && !this.#connected) this.#hooks.setState('checking')
        },
      })
      .then(
        (pair) => {
          if (this.#done || this.#hooks.closed()) return
          this.#connected = true
          this.#hooks.connected(pair)
        },
        (err: unknown) => this.#hooks.fail(errorMessage(err)),
      )
  }

  /**
   * Sorts what reaches the agent's sockets: a sealed path probe (it authenticates itself, from any source);
   * data only from the path's remote address (WIRE.md §8, pair-datagrams.ts). A datagram that merely starts
   * with the probe's magic but does not open as one is data. Only the peer's probes and data from the path
   * count as hearing the peer (the silence detector); a stranger's datagrams never keep a dead path alive.
   */
  #onDatagram(probeKey: Uint8Array, datagram: Buffer, fromPath: boolean): void {
    if (this.#probe?.handle(datagram)) return void this.#silence?.heard()
    if (isProbe(probeKey, datagram)) return
    if (fromPath) this.#silence?.heard()
    this.#hooks.datagram(datagram, fromPath)
  }

  /** pion's disconnected/failed on top of werift, which has no disconnected and fails only after 30 s. */
  #watchSilence(): void {
    const agent = this.#agent
    if (!agent) return
    const { disconnectedAfterMs, failedAfterMs, keepaliveIntervalMs } = this.#settings?.pathSilence ?? {}
    const hooks = this.#hooks
    const live = () => !this.#done && !hooks.closed()
    const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`
    const silence = new SilenceDetector({
      ...(disconnectedAfterMs !== undefined ? { disconnectedAfterMs } : {}),
      ...(failedAfterMs !== undefined ? { failedAfterMs } : {}),
      onSilent: (ms) => live() && hooks.setState('disconnected', `nothing heard from the peer on the path for ${seconds(ms)}`),
      onHeardAgain: (ms) => live() && hooks.setState('connected', `the peer is heard again after ${seconds(ms)} of silence`),
      onFailed: (ms) => hooks.fail(`nothing heard from the peer on the path for ${seconds(ms)}: the path is gone`),
    })
    this.#silence = silence
    this.#keepalive = new PairKeepalive(agent.connection, {
      ...(keepaliveIntervalMs !== undefined ? { intervalMs: keepaliveIntervalMs } : {}),
      onAnswer: () => silence.heard(),
    })
    silence.start()
    this.#keepalive.start()
  }
}
