// The gRPC signaling server (WIRE.md §5): a topic per recipient key, fan-out to the current subscribers,
// nothing buffered for absent ones, nothing stored, nothing decrypted. It also serves the standard health
// and reflection services so stock tools (grpc_health_probe, grpcurl) work against it.
// This file is the service: every rule (limits, auth, counters, logs, topics, cluster, drain) lives here
// once, for every transport (transport.ts): our own HTTP/2 (h2js/, the default), node:http2 (h2/) and grpc-js.
import { status } from '@grpc/grpc-js'
import { ReflectionService } from '@grpc/reflection'
import { HealthImplementation } from 'grpc-health-check'
import type { BuildInfo } from '../../gen/common.js'
import { KEY_LENGTH, type PublicKey } from '../keys.js'
import { serverBuildInfo } from './build-info.js'
import { ClusterError, type Cluster, type ClusterEvent } from './cluster/cluster.js'
import type { ClusterTarget } from './cluster/cluster-url.js'
import { ConnectionGuard, type ConnectionCloseReason, type ConnectionRefusal } from './connection-guard.js'
import { Admission, type Refusal } from './admission.js'
import { untilDeadline, waitFor } from './deadline-wait.js'
import { frameMessage, MESSAGE_HEADER_BYTES } from './h2/grpc-wire.js'
import { LimitLog } from './limit-log.js'
import type { ServerMetrics } from './metrics.js'
import { ServerCounters, total } from './server-counters.js'
import { shortKey, silentLog, type ServerLog } from './server-log.js'
import { startParts, type ServerParts } from './server-parts.js'
import type { ServerStats } from './server-stats.js'
import type { StunServer } from './stun-server.js'
import type { MonotonicClock } from './token-bucket.js'
import { packageVersion } from '../package-root.js'
import { formatHost, isUnspecified, parseListen, resolveLimits, SignalingServerError, type ServerLimits } from './server-config.js'
import { SubscribeAuthenticator, type SubscribeAuthOptions } from './subscribe-auth.js'
import { SubscriberQueue, type QueueCounters, type QueueLimits } from './subscriber-queue.js'
import { Topics } from './topics.js'
import type { CallStatus, ServerTransport, SubscriberStream, TransportName } from './transport.js'
import { SYNC_FRAME, type SubscribeRequest } from './wire-service.js'

export { DEFAULT_LIMITS, parseListen, SignalingServerError, type ServerLimits } from './server-config.js'
export type { ServerStats } from './server-stats.js'
export type { TransportName } from './transport.js'

/** How long a drain waits for clients to close their connections after every stream has ended. */
const CLIENT_CLOSE_LINGER_MS = 1500

export interface SignalingServerOptions {
  /** "HOST:PORT"; port 0 picks a free one; IPv6 as "[::1]:0"; an empty host means all IPv4 interfaces. */
  listen: string
  tls?: { cert: Buffer; key: Buffer }
  limits?: Partial<ServerLimits>
  /** `signal --transport`: our own HTTP/2 gRPC server (`js`, the default), the same on node:http2 (`h2`), or grpc-js's. */
  transport?: TransportName
  /** Reported by GetBuildInfo; defaults to package.json's version. */
  version?: string
  /** `signal --require-auth`: Subscribe needs a proof of holding the key (src/core/auth-proof.ts). Off by default. */
  auth?: SubscribeAuthOptions
  /** The clock of the publish rate limit; tests move it instead of sleeping. */
  clock?: MonotonicClock
  /** `--relay` URLs served through cunīcu's RelayRegistry.GetRelays (none: the service is not offered). */
  relays?: string[]
  /** `signal --cluster redis://HOST:PORT` or `redis-cluster://…`, parsed (cluster/cluster-url.ts): instances sharing one key space (cluster/). */
  cluster?: ClusterTarget
  /** Cluster connection changes (lost, recovered): for logs; stats().cluster has the counters. */
  onClusterEvent?: (event: ClusterEvent) => void
  /** The operator's log (pino's shape); nothing is logged without it. */
  log?: ServerLog
  /** Keep Prometheus metrics (`server.metrics`); prom-client is loaded only then. */
  metrics?: boolean
  /** `signal --stun-listen`: a STUN Binding server on UDP; GetRelays hands out `stun:` + advertise (or the bound address). */
  stun?: { listen: string; advertise?: string; ratePerSecond?: number; burst?: number }
}

export const SIGNALING_SERVICE_NAME = 'cunicu.signaling.Signaling'

interface Subscriber {
  key: Uint8Array
  stream: SubscriberStream
  queue: SubscriberQueue
  /** The connection it counts against ("ip:port"). */
  peer: string
  /** Set once its stream and connection budgets are given back: leaving fires on several events. */
  released: boolean
}

export class SignalingServer {
  readonly #transport: ServerTransport
  readonly #limits: ServerLimits
  readonly #topics = new Topics<Subscriber>()
  readonly #health: HealthImplementation
  readonly #buildInfo: BuildInfo
  readonly #admission: Admission
  readonly #auth: SubscribeAuthenticator | undefined
  readonly #log: ServerLog
  readonly #limitLog: LimitLog
  readonly #counters = new ServerCounters()
  #guard: ConnectionGuard | undefined
  #metrics: ServerMetrics | undefined
  #stun: StunServer | undefined
  #closing: Promise<void> | undefined
  #draining = false
  #address = ''
  #cluster: Cluster | undefined
  readonly #queueLimits: QueueLimits
  /** One for every subscriber queue (the counters are the server's): nothing per idle peer. */
  readonly #queueCounters: QueueCounters = {
    delivered: (acceptedAt) => {
      this.#counters.delivered++
      this.#metrics?.observeDelivery((performance.now() - acceptedAt) / 1000)
    },
    dropped: (n, reason) => (this.#counters.dropped[reason] += n),
  }

  private constructor(transport: ServerTransport, limits: ServerLimits, version: string, auth: SubscribeAuthenticator | undefined, clock: MonotonicClock | undefined, log: ServerLog) {
    this.#transport = transport
    this.#limits = limits
    this.#queueLimits = { maxFrames: limits.queueMaxEnvelopes, maxBytes: limits.queueMaxBytes }
    this.#auth = auth
    this.#log = log
    this.#limitLog = new LimitLog(log)
    this.#admission = new Admission(limits, auth, log, (peer) => this.#guard?.close(peer, 'auth_failures'), clock)
    // The tag field carries the auth key: cunīcu's BuildInfo has no field for it, and tag is free text.
    this.#buildInfo = { ...serverBuildInfo(version), ...(auth ? { tag: auth.buildInfoTag } : {}) }
    this.#health = new HealthImplementation({ '': 'SERVING', [SIGNALING_SERVICE_NAME]: 'SERVING' })
  }

  static async start(options: SignalingServerOptions): Promise<SignalingServer> {
    const limits = resolveLimits(options.limits)
    const { host, port } = parseListen(options.listen)
    const stunListen = options.stun ? parseListen(options.stun.listen) : undefined
    if (options.stun?.advertise !== undefined) parseListen(options.stun.advertise)
    if (stunListen && !options.stun?.advertise && isUnspecified(stunListen.host)) {
      throw new SignalingServerError(`STUN listen address ${options.stun!.listen} is a wildcard: peers cannot be told to use it; give the address they should use with --stun-advertise HOST:PORT`)
    }
    const transportOptions = {
      // Bounds what one request may make us hold; envelopes between the limit and this get our own,
      // clearer RESOURCE_EXHAUSTED message from publish().
      maxReceiveBytes: Math.max(2 * limits.maxEnvelopeBytes, 1024 * 1024),
      maxConcurrentStreams: limits.maxConnectionStreams,
      ...(options.tls ? { tls: options.tls } : {}),
    }
    const transport: ServerTransport = options.transport === 'grpc-js'
      ? new (await import('./grpc-js-transport.js')).GrpcJsTransport(transportOptions)
      : options.transport === 'h2'
        ? new (await import('./h2/h2-transport.js')).H2Transport(transportOptions)
        : new (await import('./h2js/js-transport.js')).JsH2Transport(transportOptions)
    const auth = options.auth ? new SubscribeAuthenticator(options.auth) : undefined
    const log = options.log ?? silentLog
    const self = new SignalingServer(transport, limits, options.version ?? packageVersion(), auth, options.clock, log)
    const parts: Partial<ServerParts> = {}
    try {
      await self.#startParts(options, stunListen, parts)
      const guard = new ConnectionGuard(limits, (socket) => transport.injectConnection(socket), {
        opened: (peer) => self.#connectionOpened(peer),
        refused: (peer, reason) => self.#connectionRefused(peer, reason),
        closed: (peer, reason, openMs) => self.#connectionClosed(peer, reason, openMs),
      }, { injectOnFirstData: !options.tls })
      guard.watchSessions(transport.http2Server)
      self.#guard = guard
      let bound: number
      try {
        bound = await guard.listen(host, port)
      } catch (err) {
        throw new SignalingServerError(`cannot listen on ${options.listen}: ${(err as Error).message}`, 'listen')
      }
      self.#address = `${formatHost(host)}:${bound}`
    } catch (err) {
      self.#guard?.destroyAll()
      transport.forceShutdown()
      await parts.cluster?.close()
      await parts.stun?.close()
      if (err instanceof SignalingServerError) throw err
      if (err instanceof ClusterError) throw new SignalingServerError(err.message, err.kind)
      throw new SignalingServerError((err as Error).message)
    }
    log.info({ event: 'listening', address: self.#address, tls: Boolean(options.tls), transport: options.transport ?? 'js', ...(self.#stun ? { stun: self.#stun.address } : {}), auth: Boolean(auth) }, 'signaling server listening')
    return self
  }

  /** Services, STUN, metrics and cluster: everything but the listening socket. */
  async #startParts(options: SignalingServerOptions, stunListen: { host: string; port: number } | undefined, parts: Partial<ServerParts>): Promise<void> {
    const { stun, relays, reflection, cluster } = await startParts({
      ...(stunListen ? { stun: { ...options.stun, listen: stunListen, listenText: options.stun!.listen } } : {}),
      ...(options.relays ? { relays: options.relays } : {}),
      ...(options.cluster ? { cluster: options.cluster } : {}),
      onStunRequest: (result, source) => {
        this.#counters.stun[result]++
        if (result === 'rate_limited') this.#limitLog.hit({ peer: source, limit: 'stun_rate' }, 'STUN requests from this address over the rate limit: dropped')
      },
      deliver: (recipient, envelope) => this.#deliverLocal(recipient, frameMessage(envelope), performance.now()),
      onClusterEvent: (event) => {
        this.#logClusterEvent(event)
        options.onClusterEvent?.(event)
      },
    }, parts)
    this.#stun = stun
    this.#cluster = cluster
    const services = this.#transport.services
    this.#transport.addSignaling({
      publish: (frame, peer) => this.#publish(frame, peer),
      subscribe: (stream, request, proof, peer) => this.#subscribe(stream, request, proof, peer),
      buildInfo: () => this.#buildInfo,
    })
    this.#health.addToServer(services as Parameters<HealthImplementation['addToServer']>[0])
    relays?.addToServer(services)
    new ReflectionService(reflection).addToServer(services)
    if (options.metrics) {
      const { ServerMetrics } = await import('./metrics.js')
      this.#metrics = new ServerMetrics(() => this.stats(), { cluster: Boolean(options.cluster), stun: Boolean(this.#stun) })
    }
  }

  /** The bound "HOST:PORT", with the real port when port 0 was asked for. */
  get address(): string {
    return this.#address
  }

  /** The bound STUN "HOST:PORT", with `stun`. */
  get stunAddress(): string | undefined {
    return this.#stun?.address
  }

  /** The key clients seal subscribe proofs to, when this server requires them (`auth`). */
  get authKey(): PublicKey | undefined {
    return this.#auth?.publicKey
  }

  /** With `metrics`: the Prometheus registry and the delivery histogram. */
  get metrics(): ServerMetrics | undefined {
    return this.#metrics
  }

  /** False once a drain began (health NOT_SERVING, /healthz 503). */
  get serving(): boolean {
    return !this.#draining
  }

  stats(): ServerStats {
    const c = this.#counters
    return {
      subscribers: this.#topics.subscriberCount,
      topics: this.#topics.topicCount,
      published: c.published,
      delivered: c.delivered,
      dropped: c.dropped.queue_full + c.dropped.subscriber_gone,
      droppedByReason: { ...c.dropped },
      refusedPublishes: total(c.refusedPublishes),
      refusedPublishesByReason: { ...c.refusedPublishes },
      refusedSubscribes: total(c.refusedSubscribes),
      refusedSubscribesByReason: { ...c.refusedSubscribes },
      connections: this.#guard?.size ?? 0,
      connectionsAccepted: c.connectionsAccepted,
      connectionsRefusedByReason: { ...c.connectionsRefused },
      connectionsClosedByReason: { ...c.connectionsClosed },
      ...(this.#stun ? { stun: { ...c.stun } } : {}),
      ...(this.#cluster ? { cluster: this.#cluster.stats() } : {}),
    }
  }

  /**
   * Drains and stops (a rolling restart's SIGTERM): stops accepting connections, sends GOAWAY, lets calls
   * in flight finish, waits for the cluster to carry what was accepted and for subscriber queues to empty,
   * then ends every stream with UNAVAILABLE so that clients reconnect (elsewhere). `graceMs` bounds it all.
   */
  close(graceMs = 2000): Promise<void> {
    this.#closing ??= this.#drain(graceMs)
    return this.#closing
  }

  async #drain(graceMs: number): Promise<void> {
    const started = performance.now()
    const deadline = started + graceMs
    this.#draining = true
    this.#log.info({ event: 'drain', phase: 'started', connections: this.#guard?.size ?? 0, subscriptions: this.#admission.openStreams, graceMs }, 'draining: no new connections, GOAWAY sent')
    this.#health.setStatus('', 'NOT_SERVING')
    this.#health.setStatus(SIGNALING_SERVICE_NAME, 'NOT_SERVING')
    this.#guard?.stopAccepting()
    this.#guard?.goAwayAll()
    await waitFor(() => this.#transport.unaryInFlight === 0, deadline)
    if (this.#cluster) await untilDeadline(this.#cluster.flush(), deadline)
    // Empty means written through: our queue, and the transport's own stream buffer, since ending a stream
    // with a status drops messages still buffered there (seen under load: accepted envelopes that never arrived).
    const pending = (s: Subscriber): number => s.queue.length + s.stream.writableLength
    await waitFor(() => this.#topics.all().every((s) => pending(s) === 0), deadline)
    const unflushed = this.#topics.all().reduce((n, s) => n + pending(s), 0)
    for (const subscriber of this.#topics.all()) {
      // UNAVAILABLE, not OK: the stream did not complete, and clients should subscribe again elsewhere/later.
      subscriber.stream.fail(status.UNAVAILABLE, 'signaling server is shutting down')
      this.#drop(subscriber)
    }
    this.#admission.connections.clear()
    this.#auth?.close()
    await this.#cluster?.close()
    await this.#stun?.close()
    // The clients close their connections once they read the statuses; one that does not (stopped, or slow
    // under load) holds the exit up to CLIENT_CLOSE_LINGER_MS, not the whole grace: a rolling restart must
    // not wait for the clients to leave.
    await this.#transport.shutdown(Math.max(performance.now() + 100, Math.min(deadline, performance.now() + CLIENT_CLOSE_LINGER_MS)))
    this.#guard?.destroyAll()
    this.#log.info({ event: 'drain', phase: 'done', ms: Math.round(performance.now() - started), unflushedEnvelopes: unflushed, unaryInFlight: this.#transport.unaryInFlight }, 'drained')
  }

  #connectionOpened(peer: string): void {
    this.#counters.connectionsAccepted++
    this.#log.info({ event: 'connection_opened', peer }, 'connection opened')
  }

  #connectionRefused(peer: string, reason: ConnectionRefusal): void {
    this.#counters.connectionsRefused[reason]++
    const ip = peer.slice(0, peer.lastIndexOf(':'))
    this.#limitLog.hit({ peer: ip, limit: reason }, reason === 'max_connections' ? `connection refused: server-wide limit of ${this.#limits.maxConnections} connections (signal --max-connections)` : `connection refused: limit of ${this.#limits.maxConnectionsPerIp} connections per IP address (signal --max-connections-per-ip)`)
  }

  #connectionClosed(peer: string, reason: ConnectionCloseReason, openMs: number): void {
    this.#counters.connectionsClosed[reason]++
    this.#admission.connections.forget(peer)
    this.#limitLog.forget(peer)
    this.#log.info({ event: 'connection_closed', peer, reason, openMs: Math.round(openMs) }, 'connection closed')
  }

  #logClusterEvent(event: ClusterEvent): void {
    const fields = { event: 'cluster', ...event }
    if (event.state === 'lost') this.#log.warn(fields, 'cluster link lost: local subscribers still served, reconnecting')
    else this.#log.info(fields, `cluster ${event.state}`)
  }

  #subscribe(stream: SubscriberStream, request: SubscribeRequest, proof: string | undefined, peer: string): void {
    const refusal = this.#admission.subscribe(request, proof, peer, this.#closing !== undefined)
    if (refusal) {
      this.#counters.refusedSubscribes[refusal.reason]++
      if (refusal.reason !== 'invalid' && refusal.reason !== 'shutting_down') this.#limitLog.hit({ peer, limit: `subscribe_${refusal.reason}` }, refusal.details)
      stream.fail(refusal.code, refusal.details)
      return
    }
    // A copy: the decoded key may be a view into the connection's read buffer, which it would keep alive.
    const key = Buffer.from(request.key)
    const subscriber: Subscriber = {
      key,
      stream,
      peer,
      released: false,
      queue: new SubscriberQueue(stream, this.#queueLimits, this.#queueCounters),
    }
    stream.onEnd(() => this.#drop(subscriber))
    this.#log.info({ event: 'subscription_opened', peer, key: shortKey(key) }, 'subscription opened')
    if (this.#cluster) return this.#subscribeClustered(subscriber)
    // Both synchronous: no publish can slip in between the marker and joining the topic.
    stream.write(SYNC_FRAME)
    this.#topics.add(key, subscriber)
  }

  /** Cluster mode: the sync envelope waits until this instance receives the key's envelopes from every instance. */
  #subscribeClustered(subscriber: Subscriber): void {
    const { stream, key } = subscriber
    void this.#cluster!.join(key).then(() => {
      if (subscriber.released || this.#closing) return
      stream.write(SYNC_FRAME)
      this.#topics.add(key, subscriber)
    })
  }

  /** `frame`: the envelope with its gRPC message prefix, as every subscriber stream gets it. */
  #deliverLocal(recipient: Uint8Array, frame: Buffer, acceptedAt: number): number {
    const key = Buffer.from(recipient.buffer, recipient.byteOffset, recipient.byteLength)
    return this.#fanOut(this.#topics.setAt(key, 0, key.length), frame, acceptedAt)
  }

  #fanOut(subscribers: ReadonlySet<Subscriber> | undefined, frame: Buffer, acceptedAt: number): number {
    if (!subscribers) return 0
    for (const subscriber of subscribers) subscriber.queue.push(frame, acceptedAt)
    return subscribers.size
  }

  #drop(subscriber: Subscriber): void {
    this.#topics.remove(subscriber.key, subscriber)
    subscriber.queue.close()
    if (subscriber.released) return
    subscriber.released = true
    this.#admission.release(subscriber.peer)
    this.#cluster?.leave(subscriber.key)
    this.#log.info({ event: 'subscription_closed', peer: subscriber.peer, key: shortKey(subscriber.key) }, 'subscription closed')
  }

  /** The relay's hot path: `frame` (an Envelope with its gRPC prefix) goes to the recipient's subscribers as it is. */
  #publish(frame: Buffer, peer: string): CallStatus | undefined {
    const refusal = this.#admission.publish(frame, peer)
    if (typeof refusal === 'object') {
      this.#counters.refusedPublishes[refusal.reason]++
      if (refusal.reason === 'rate' || refusal.reason === 'auth') this.#limitLog.hit({ peer, limit: `publish_${refusal.reason}` }, refusal.details)
      return refusal
    }
    const recipientAt = refusal
    this.#counters.published++
    const local = this.#fanOut(this.#topics.setAt(frame, recipientAt, KEY_LENGTH), frame, performance.now())
    // Without a cluster nobody else can want it; with one, other instances may have subscribers.
    if (this.#cluster) this.#cluster.publish(frame.subarray(recipientAt, recipientAt + KEY_LENGTH), frame.subarray(MESSAGE_HEADER_BYTES))
    else if (local === 0) this.#counters.dropped.no_subscriber++
    return undefined
  }

}
