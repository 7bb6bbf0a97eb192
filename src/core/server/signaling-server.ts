// The gRPC signaling server (WIRE.md §5): a topic per recipient key, fan-out to the current subscribers,
// nothing buffered for absent ones, nothing stored, nothing decrypted. It also serves the standard health
// and reflection services so stock tools (grpc_health_probe, grpcurl) work against it.
import type { EventEmitter } from 'node:events'
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js'
import { ReflectionService } from '@grpc/reflection'
import { HealthImplementation } from 'grpc-health-check'
import type { BuildInfo, Empty } from '../../gen/common.js'
import { KEY_LENGTH, type PublicKey } from '../keys.js'
import { AUTH_METADATA_KEY } from '../auth-proof.js'
import { serverBuildInfo } from './build-info.js'
import { ClusterError, type Cluster, type ClusterEvent, type ClusterStats } from './cluster/cluster.js'
import type { ClusterTarget } from './cluster/cluster-url.js'
import { ConnectionGuard, type ConnectionCloseReason, type ConnectionRefusal } from './connection-guard.js'
import { ConnectionLimits } from './connection-limits.js'
import { LimitLog } from './limit-log.js'
import type { ServerMetrics } from './metrics.js'
import { ServerCounters, total, type ByReason, type PublishRefusal, type SubscribeRefusal } from './server-counters.js'
import { shortKey, silentLog, type ServerLog } from './server-log.js'
import type { StunServer } from './stun-server.js'
import type { MonotonicClock } from './token-bucket.js'
import { packageVersion } from '../package-root.js'
import { RelayRegistry } from './relay-registry.js'
import { formatHost, isUnspecified, parseListen, resolveLimits, SignalingServerError, type ServerLimits } from './server-config.js'
import { SubscribeAuthenticator, type SubscribeAuthOptions } from './subscribe-auth.js'
import { SubscriberQueue } from './subscriber-queue.js'
import { Topics } from './topics.js'
import { UnaryCallTracker } from './unary-calls.js'
import { endedAtDeadline, loadReflectionPackageFor, SYNC_FRAME, wireService, type PublishRequest, type SubscribeRequest } from './wire-service.js'

export { DEFAULT_LIMITS, parseListen, SignalingServerError, type ServerLimits } from './server-config.js'

export interface SignalingServerOptions {
  /** "HOST:PORT"; port 0 picks a free one; IPv6 as "[::1]:0"; an empty host means all IPv4 interfaces. */
  listen: string
  tls?: { cert: Buffer; key: Buffer }
  limits?: Partial<ServerLimits>
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

export interface ServerStats {
  /** Open Subscribe streams. */
  subscribers: number
  /** Recipient keys with at least one open stream. */
  topics: number
  /** Envelopes accepted by Publish (including those nobody was subscribed for). */
  published: number
  /** Envelope copies handed to subscriber streams. */
  delivered: number
  /** Envelope copies dropped from a slow subscriber's full queue, or still queued when its stream ended. */
  dropped: number
  /** Every drop by reason: `no_subscriber` counts envelopes nobody was subscribed for (not in `dropped`). */
  droppedByReason: ByReason<'no_subscriber' | 'queue_full' | 'subscriber_gone'>
  /** Publish calls answered with an error status (malformed, too large, over the rate). */
  refusedPublishes: number
  refusedPublishesByReason: ByReason<PublishRefusal>
  /** Subscribe calls answered with an error status (malformed key, a limit, no valid proof). */
  refusedSubscribes: number
  refusedSubscribesByReason: ByReason<SubscribeRefusal>
  /** Open client connections now. */
  connections: number
  connectionsAccepted: number
  connectionsRefusedByReason: ByReason<ConnectionRefusal>
  connectionsClosedByReason: ByReason<ConnectionCloseReason>
  /** With `stun`: datagrams by what was done with them. */
  stun?: ByReason<'answered' | 'rate_limited' | 'malformed'>
  /** With `cluster`: the Redis link's state and counters. */
  cluster?: ClusterStats
}

interface Refusal {
  code: status
  details: string
}

export const SIGNALING_SERVICE_NAME = 'cunicu.signaling.Signaling'

interface Subscriber {
  key: Uint8Array
  call: ServerWritableStream<SubscribeRequest, Buffer>
  queue: SubscriberQueue
  /** The connection it counts against (call.getPeer()). */
  peer: string
  /** Set once its stream and connection budgets are given back: leaving fires on several events. */
  released: boolean
}

export class SignalingServer {
  readonly #server: Server
  readonly #limits: ServerLimits
  readonly #topics = new Topics<Subscriber>()
  readonly #health: HealthImplementation
  readonly #buildInfo: BuildInfo
  readonly #connections: ConnectionLimits
  readonly #auth: SubscribeAuthenticator | undefined
  readonly #log: ServerLog
  readonly #limitLog: LimitLog
  readonly #counters = new ServerCounters()
  #guard: ConnectionGuard | undefined
  #metrics: ServerMetrics | undefined
  #stun: StunServer | undefined
  /** Open Subscribe streams, counted against maxStreams (Topics.subscriberCount is O(topics)). */
  #openStreams = 0
  /** Unary calls (Publish, GetBuildInfo, ...) started and not yet answered: a drain lets them finish. */
  readonly #unaryCalls: UnaryCallTracker
  #closing: Promise<void> | undefined
  #draining = false
  #address = ''
  #cluster: Cluster | undefined

  private constructor(
    server: Server,
    limits: ServerLimits,
    version: string,
    auth: SubscribeAuthenticator | undefined,
    clock: MonotonicClock | undefined,
    log: ServerLog,
    unaryCalls: UnaryCallTracker,
  ) {
    this.#server = server
    this.#unaryCalls = unaryCalls
    this.#limits = limits
    this.#auth = auth
    this.#log = log
    this.#limitLog = new LimitLog(log)
    this.#connections = new ConnectionLimits({
      maxSubscriptions: limits.maxSubscriptionsPerConnection,
      publishRatePerSecond: limits.publishRatePerSecond,
      publishBurst: limits.publishBurst,
      subscribeRatePerSecond: limits.subscribeRatePerSecond,
      subscribeBurst: limits.subscribeBurst,
    }, clock)
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
    const log = options.log ?? silentLog
    const unaryCalls = new UnaryCallTracker()
    const server = new Server({
      // Bounds what one request may make us hold; envelopes between the limit and this get our own,
      // clearer RESOURCE_EXHAUSTED message from publish().
      'grpc.max_receive_message_length': Math.max(2 * limits.maxEnvelopeBytes, 1024 * 1024),
      'grpc.max_concurrent_streams': limits.maxConnectionStreams,
      interceptors: [unaryCalls.interceptor],
    })
    const auth = options.auth ? new SubscribeAuthenticator(options.auth) : undefined
    const self = new SignalingServer(server, limits, options.version ?? packageVersion(), auth, options.clock, log, unaryCalls)
    try {
      await self.#startParts(options, stunListen)
      const credentials = options.tls
        ? ServerCredentials.createSsl(null, [{ cert_chain: options.tls.cert, private_key: options.tls.key }], false)
        : ServerCredentials.createInsecure()
      const injector = server.createConnectionInjector(credentials)
      const guard = new ConnectionGuard(limits, (socket) => injector.injectConnection(socket), {
        opened: (peer) => self.#connectionOpened(peer),
        refused: (peer, reason) => self.#connectionRefused(peer, reason),
        closed: (peer, reason, openMs) => self.#connectionClosed(peer, reason, openMs),
      }, { injectOnFirstData: !options.tls })
      guard.watchSessions(injectorHttp2Server(server))
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
      server.forceShutdown()
      await self.#cluster?.close()
      await self.#stun?.close()
      if (err instanceof SignalingServerError) throw err
      if (err instanceof ClusterError) throw new SignalingServerError(err.message, err.kind)
      throw new SignalingServerError((err as Error).message)
    }
    log.info({ event: 'listening', address: self.#address, tls: Boolean(options.tls), ...(self.#stun ? { stun: self.#stun.address } : {}), auth: Boolean(auth) }, 'signaling server listening')
    return self
  }

  /** Services, STUN, metrics and cluster: everything but the listening socket. */
  async #startParts(options: SignalingServerOptions, stunListen: { host: string; port: number } | undefined): Promise<void> {
    const server = this.#server
    if (stunListen) {
      const { StunServer } = await import('./stun-server.js')
      try {
        this.#stun = await StunServer.start({
          ...stunListen,
          ...(options.stun?.ratePerSecond ? { ratePerSecond: options.stun.ratePerSecond } : {}),
          ...(options.stun?.burst ? { burst: options.stun.burst } : {}),
          onRequest: (result, source) => {
            this.#counters.stun[result]++
            if (result === 'rate_limited') this.#limitLog.hit({ peer: source, limit: 'stun_rate' }, 'STUN requests from this address over the rate limit: dropped')
          },
        })
      } catch (err) {
        throw new SignalingServerError(`cannot listen for STUN on ${options.stun!.listen}: ${(err as Error).message}`, 'listen')
      }
    }
    const stunUrl = this.#stun ? `stun:${options.stun?.advertise ?? this.#stun.address}` : undefined
    const relayUrls = [...(options.relays ?? []), ...(stunUrl ? [stunUrl] : [])]
    const relays = relayUrls.length ? new RelayRegistry(relayUrls) : undefined
    const pkg = await loadReflectionPackageFor(relays)
    server.addService(wireService, this.#implementation())
    this.#health.addToServer(server)
    relays?.addToServer(server)
    new ReflectionService(pkg).addToServer(server)
    if (options.metrics) {
      const { ServerMetrics } = await import('./metrics.js')
      this.#metrics = new ServerMetrics(() => this.stats(), { cluster: Boolean(options.cluster), stun: Boolean(this.#stun) })
    }
    if (options.cluster) {
      // Loaded only here, so a plain `signal` never loads the Redis client.
      const { openCluster } = await import('./cluster/open-cluster.js')
      this.#cluster = await openCluster(options.cluster, {
        deliver: (recipient, bytes) => this.#deliverLocal(recipient, bytes, performance.now()),
        onEvent: (event) => {
          this.#logClusterEvent(event)
          options.onClusterEvent?.(event)
        },
      })
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
    this.#log.info({ event: 'drain', phase: 'started', connections: this.#guard?.size ?? 0, subscriptions: this.#openStreams, graceMs }, 'draining: no new connections, GOAWAY sent')
    this.#health.setStatus('', 'NOT_SERVING')
    this.#health.setStatus(SIGNALING_SERVICE_NAME, 'NOT_SERVING')
    this.#guard?.stopAccepting()
    this.#guard?.goAwayAll()
    await waitFor(() => this.#unaryCalls.inFlight === 0, deadline)
    if (this.#cluster) await untilDeadline(this.#cluster.flush(), deadline)
    // Empty means written through: our queue, and grpc-js's own stream buffer, since ending a stream with a
    // status drops messages still buffered there (seen under load: accepted envelopes that never arrived).
    const pending = (s: { queue: { length: number }; call: { writableLength: number } }) => s.queue.length + s.call.writableLength
    await waitFor(() => this.#topics.all().every((s) => pending(s) === 0), deadline)
    const unflushed = this.#topics.all().reduce((n, s) => n + pending(s), 0)
    for (const subscriber of this.#topics.all()) {
      // UNAVAILABLE, not OK: the stream did not complete, and clients should subscribe again elsewhere/later.
      subscriber.call.emit('error', { code: status.UNAVAILABLE, details: 'signaling server is shutting down' })
      this.#drop(subscriber)
    }
    this.#connections.clear()
    this.#auth?.close()
    await this.#cluster?.close()
    await this.#stun?.close()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown()
        resolve()
      }, Math.max(100, deadline - performance.now()))
      this.#server.tryShutdown(() => {
        clearTimeout(timer)
        resolve()
      })
    })
    this.#guard?.destroyAll()
    this.#log.info({ event: 'drain', phase: 'done', ms: Math.round(performance.now() - started), unflushedEnvelopes: unflushed, unaryInFlight: this.#unaryCalls.inFlight }, 'drained')
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
    this.#connections.forget(peer)
    this.#limitLog.forget(peer)
    this.#log.info({ event: 'connection_closed', peer, reason, openMs: Math.round(openMs) }, 'connection closed')
  }

  #logClusterEvent(event: ClusterEvent): void {
    const fields = { event: 'cluster', ...event }
    if (event.state === 'lost') this.#log.warn(fields, 'cluster link lost: local subscribers still served, reconnecting')
    else this.#log.info(fields, `cluster ${event.state}`)
  }

  #implementation(): UntypedServiceImplementation {
    return {
      getBuildInfo: (_call: ServerUnaryCall<Empty, BuildInfo>, callback: sendUnaryData<BuildInfo>) => {
        callback(null, this.#buildInfo)
      },
      subscribe: (call: ServerWritableStream<SubscribeRequest, Buffer>) => {
        if (!endedAtDeadline(call)) this.#subscribe(call)
      },
      publish: (call: ServerUnaryCall<PublishRequest, Empty>, callback: sendUnaryData<Empty>) => {
        if (endedAtDeadline(call)) return callback({ code: status.DEADLINE_EXCEEDED, details: 'deadline exceeded before the request was complete' })
        const peer = call.getPeer()
        const refusal = this.#publish(call.request, peer)
        if (refusal) {
          this.#counters.refusedPublishes[refusal.reason]++
          if (refusal.reason === 'rate' || refusal.reason === 'auth') this.#limitLog.hit({ peer, limit: `publish_${refusal.reason}` }, refusal.details)
          callback({ code: refusal.code, details: refusal.details })
        } else callback(null, {})
      },
    }
  }

  #subscribe(call: ServerWritableStream<SubscribeRequest, Buffer>): void {
    const peer = call.getPeer()
    const refusal = this.#admitSubscriber(call, peer)
    if (refusal) {
      this.#counters.refusedSubscribes[refusal.reason]++
      if (refusal.reason !== 'invalid' && refusal.reason !== 'shutting_down') this.#limitLog.hit({ peer, limit: `subscribe_${refusal.reason}` }, refusal.details)
      call.emit('error', { code: refusal.code, details: refusal.details })
      return
    }
    const { key } = call.request
    const subscriber: Subscriber = {
      key,
      call,
      peer,
      released: false,
      queue: new SubscriberQueue(
        call,
        { maxFrames: this.#limits.queueMaxEnvelopes, maxBytes: this.#limits.queueMaxBytes },
        {
          delivered: (acceptedAt) => {
            this.#counters.delivered++
            this.#metrics?.observeDelivery((performance.now() - acceptedAt) / 1000)
          },
          dropped: (n, reason) => (this.#counters.dropped[reason] += n),
        },
      ),
    }
    const leave = (): void => this.#drop(subscriber)
    call.on('cancelled', leave)
    call.on('error', leave)
    call.on('finish', leave)
    call.on('close', leave)
    this.#log.info({ event: 'subscription_opened', peer, key: shortKey(key) }, 'subscription opened')
    if (this.#cluster) return this.#subscribeClustered(subscriber)
    // Both synchronous: no publish can slip in between the marker and joining the topic.
    call.write(SYNC_FRAME)
    this.#topics.add(key, subscriber)
  }

  /** Cluster mode: the sync envelope waits until this instance receives the key's envelopes from every instance. */
  #subscribeClustered(subscriber: Subscriber): void {
    const { call, key } = subscriber
    void this.#cluster!.join(key).then(() => {
      if (subscriber.released || this.#closing) return
      call.write(SYNC_FRAME)
      this.#topics.add(key, subscriber)
    })
  }

  #deliverLocal(recipient: Uint8Array, bytes: Buffer, acceptedAt: number): number {
    const subscribers = this.#topics.subscribers(recipient)
    for (const subscriber of subscribers) subscriber.queue.push(bytes, acceptedAt)
    return subscribers.length
  }

  /**
   * Why a Subscribe may not start, checked cheapest first (the rate before the proof, so a flood of bad
   * proofs costs the sender its budget before it costs us an X25519); on success the stream holds one unit
   * of the server's and its connection's stream budgets until #drop gives them back.
   */
  #admitSubscriber(call: ServerWritableStream<SubscribeRequest, Buffer>, peer: string): (Refusal & { reason: SubscribeRefusal }) | undefined {
    const { key, invalid } = call.request
    if (this.#closing) return { reason: 'shutting_down', code: status.UNAVAILABLE, details: 'signaling server is shutting down' }
    if (this.#connections.shed(peer)) return { reason: 'auth', code: status.PERMISSION_DENIED, details: this.#shedMessage() }
    const overRate = this.#connections.admitSubscribe(peer)
    if (overRate) return { reason: 'rate', code: status.RESOURCE_EXHAUSTED, details: overRate }
    if (invalid !== undefined) return { reason: 'invalid', code: status.INVALID_ARGUMENT, details: `subscribe request is not a valid SubscribeParams message: ${invalid}` }
    if (key.length !== KEY_LENGTH) {
      return { reason: 'invalid', code: status.INVALID_ARGUMENT, details: `subscribe key is ${key.length} bytes, but a public key is ${KEY_LENGTH} bytes` }
    }
    if (this.#auth) {
      const proof = call.metadata.get(AUTH_METADATA_KEY)[0]
      const refused = this.#auth.check(typeof proof === 'string' ? proof : undefined, key)
      if (refused) {
        this.#authFailed(peer)
        return { reason: 'auth', ...refused }
      }
    }
    if (this.#openStreams >= this.#limits.maxStreams) {
      return {
        reason: 'server_limit',
        code: status.RESOURCE_EXHAUSTED,
        details: `server-wide limit of ${this.#limits.maxStreams} open subscriptions reached (signal --max-streams); retry later or use another server`,
      }
    }
    const perConnection = this.#connections.admitSubscription(peer)
    if (perConnection) return { reason: 'connection_limit', code: status.RESOURCE_EXHAUSTED, details: perConnection }
    this.#openStreams++
    return undefined
  }

  /** A failed proof; past maxAuthFailures the connection is shed: refused from now on, and closed. */
  #authFailed(peer: string): void {
    const failures = this.#connections.authFailed(peer)
    if (failures !== this.#limits.maxAuthFailures) return
    this.#connections.markShed(peer)
    this.#log.warn({ event: 'connection_shed', peer, failures }, `connection shed after ${failures} failed subscribe proofs (GOAWAY ENHANCE_YOUR_CALM)`)
    // After this call's own status went out: a GOAWAY first would fail it with the GOAWAY's code instead.
    setImmediate(() => this.#guard?.close(peer, 'auth_failures'))
  }

  #shedMessage(): string {
    return `this connection was closed after ${this.#limits.maxAuthFailures} failed subscribe proofs (signal --max-auth-failures); reconnect with a valid proof`
  }

  #drop(subscriber: Subscriber): void {
    this.#topics.remove(subscriber.key, subscriber)
    subscriber.queue.close()
    if (subscriber.released) return
    subscriber.released = true
    this.#openStreams--
    this.#cluster?.leave(subscriber.key)
    this.#connections.releaseSubscription(subscriber.peer)
    this.#log.info({ event: 'subscription_closed', peer: subscriber.peer, key: shortKey(subscriber.key) }, 'subscription closed')
  }

  #publish({ envelope, bytes, invalid }: PublishRequest, peer: string): (Refusal & { reason: PublishRefusal }) | undefined {
    if (this.#connections.shed(peer)) return { reason: 'auth', code: status.PERMISSION_DENIED, details: this.#shedMessage() }
    // Counted before anything else, so a flood of garbage costs the sender its budget like valid envelopes do.
    const overRate = this.#connections.admitPublish(peer)
    if (overRate) return { reason: 'rate', code: status.RESOURCE_EXHAUSTED, details: overRate }
    if (bytes.length > this.#limits.maxEnvelopeBytes) {
      return {
        reason: 'size',
        code: status.RESOURCE_EXHAUSTED,
        details: `envelope is ${bytes.length} bytes, over this server's limit of ${this.#limits.maxEnvelopeBytes} bytes (signal --max-envelope-bytes)`,
      }
    }
    if (!envelope) return { reason: 'invalid', code: status.INVALID_ARGUMENT, details: `publish request is not a valid Envelope message: ${invalid ?? 'undecodable'}` }
    for (const [field, value] of [['sender', envelope.sender], ['recipient', envelope.recipient]] as const) {
      if (value.length !== KEY_LENGTH) {
        return { reason: 'invalid', code: status.INVALID_ARGUMENT, details: `envelope ${field} is ${value.length} bytes, but a public key is ${KEY_LENGTH} bytes` }
      }
    }
    this.#counters.published++
    const local = this.#deliverLocal(envelope.recipient, bytes, performance.now())
    // Without a cluster nobody else can want it; with one, other instances may have subscribers.
    if (this.#cluster) this.#cluster.publish(envelope.recipient, bytes)
    else if (local === 0) this.#counters.dropped.no_subscriber++
    return undefined
  }
}

/** grpc-js's HTTP/2 server behind the connection injector just created (grpc-js 1.14 keeps it in a private map). */
function injectorHttp2Server(server: Server): EventEmitter {
  const servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers
  const last = servers ? [...servers.keys()].at(-1) : undefined
  if (!last) throw new SignalingServerError('this @grpc/grpc-js version does not expose its HTTP/2 server: the connection guard needs 1.14')
  return last
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits for `promise`, but not past `deadline` (performance.now()); leaves no timer behind. */
async function untilDeadline(promise: Promise<void>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - performance.now()))))])
  clearTimeout(timer)
}

/** Polls `done` every 10 ms until it holds or `deadline` (performance.now()) passes. */
async function waitFor(done: () => boolean, deadline: number): Promise<void> {
  while (!done() && performance.now() < deadline) await sleep(10)
}

