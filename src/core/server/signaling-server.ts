// The gRPC signaling server (WIRE.md §5): a topic per recipient key, fan-out to the current subscribers,
// nothing buffered for absent ones, nothing stored, nothing decrypted. It also serves the standard health
// and reflection services so stock tools (grpc_health_probe, grpcurl) work against it.
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js'
import { load as loadProto, type PackageDefinition } from '@grpc/proto-loader'
import { ReflectionService } from '@grpc/reflection'
import { HealthImplementation } from 'grpc-health-check'
import type { BuildInfo, Empty } from '../../gen/common.js'
import { Envelope, SignalingService, type SubscribeParams } from '../../gen/signaling/signaling.js'
import { KEY_LENGTH, type PublicKey } from '../keys.js'
import { AUTH_METADATA_KEY } from '../auth-proof.js'
import { serverBuildInfo } from './build-info.js'
import type { Cluster, ClusterEvent, ClusterStats } from './cluster/cluster.js'
import { ConnectionLimits } from './connection-limits.js'
import type { MonotonicClock } from './token-bucket.js'
import { packageVersion, protoDir, SIGNALING_PROTO } from '../package-root.js'
import { SubscribeAuthenticator, type SubscribeAuthOptions } from './subscribe-auth.js'
import { SubscriberQueue } from './subscriber-queue.js'
import { Topics } from './topics.js'
import { RELAY_PROTO, RelayRegistry } from './relay-registry.js'

export interface ServerLimits {
  /** Largest serialized Envelope a publisher may send. */
  maxEnvelopeBytes: number
  /** Envelopes waiting for one slow subscriber before the oldest is dropped. */
  queueMaxEnvelopes: number
  /** Bytes waiting for one slow subscriber before the oldest envelope is dropped. */
  queueMaxBytes: number
  /** Open Subscribe streams one HTTP/2 connection may hold. */
  maxSubscriptionsPerConnection: number
  /** Open Subscribe streams on the whole server. */
  maxStreams: number
  /**
   * HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (grpc.max_concurrent_streams): calls past it wait
   * in the client. Must exceed maxSubscriptionsPerConnection, or an extra subscription would wait forever
   * instead of being refused with a status.
   */
  maxConnectionStreams: number
  /** Sustained publishes per second per connection (token bucket rate). */
  publishRatePerSecond: number
  /** Publishes one connection may send at once after being idle (token bucket size). */
  publishBurst: number
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = {
  maxEnvelopeBytes: 65536,
  queueMaxEnvelopes: 1024,
  queueMaxBytes: 4 * 1024 * 1024,
  maxSubscriptionsPerConnection: 64,
  maxStreams: 10_000,
  maxConnectionStreams: 256,
  publishRatePerSecond: 200,
  publishBurst: 400,
}

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
  /** `signal --cluster redis://HOST:PORT`: instances sharing one key space through Redis Pub/Sub (cluster/). */
  cluster?: string
  /** Cluster connection changes (lost, recovered): for logs; stats().cluster has the counters. */
  onClusterEvent?: (event: ClusterEvent) => void
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
  /** Publish calls answered with an error status (malformed, too large, over the rate). */
  refusedPublishes: number
  /** Subscribe calls answered with an error status (malformed key, a limit, no valid proof). */
  refusedSubscribes: number
  /** With `cluster`: the Redis link's state and counters. */
  cluster?: ClusterStats
}

export class SignalingServerError extends Error {
  override name = 'SignalingServerError'
}

export const SIGNALING_SERVICE_NAME = 'cunicu.signaling.Signaling'

interface PublishRequest {
  /** Undefined when the bytes are not an Envelope (`invalid` says why). */
  envelope: Envelope | undefined
  /** The envelope as received: forwarded as is, so fan-out costs no re-encoding. */
  bytes: Buffer
  invalid?: string
}

/** SubscribeParams, or why the bytes are not one. */
type SubscribeRequest = SubscribeParams & { invalid?: string }

interface Subscriber {
  key: Uint8Array
  call: ServerWritableStream<SubscribeRequest, Buffer>
  queue: SubscriberQueue
  /** The connection it counts against (call.getPeer()). */
  peer: string
  /** Set once its stream and connection budgets are given back: leaving fires on several events. */
  released: boolean
}

// The generated definition, but Publish also hands over the raw bytes and Subscribe writes pre-encoded
// frames. The bytes on the wire are exactly those of the generated service.
const wireService = {
  ...SignalingService,
  publish: {
    ...SignalingService.publish,
    requestDeserialize: (bytes: Buffer): PublishRequest => {
      try {
        return { envelope: Envelope.decode(bytes), bytes }
      } catch (err) {
        return { envelope: undefined, bytes, invalid: (err as Error).message }
      }
    },
  },
  subscribe: {
    ...SignalingService.subscribe,
    // A throwing deserializer would end the call with INTERNAL; garbage from a client is INVALID_ARGUMENT.
    requestDeserialize: (bytes: Buffer): SubscribeRequest => {
      try {
        return SignalingService.subscribe.requestDeserialize(bytes)
      } catch (err) {
        return { key: new Uint8Array(0), invalid: (err as Error).message }
      }
    },
    responseSerialize: (frame: Buffer): Buffer => frame,
  },
} as unknown as ServiceDefinition

/** The live-subscription marker: an Envelope with every field unset encodes to zero bytes. */
const SYNC_FRAME = Buffer.from(Envelope.encode(Envelope.create()).finish())

let reflectionPackage: Promise<PackageDefinition> | undefined
let reflectionWithRelays: Promise<PackageDefinition> | undefined

/** Reflection also lists RelayRegistry when this server offers it. */
function loadReflectionPackageFor(relays: RelayRegistry | undefined): Promise<PackageDefinition> {
  if (!relays) return loadReflectionPackage()
  reflectionWithRelays ??= loadProto([SIGNALING_PROTO, RELAY_PROTO], { includeDirs: [protoDir()] })
  reflectionWithRelays.catch(() => (reflectionWithRelays = undefined))
  return reflectionWithRelays
}

function loadReflectionPackage(): Promise<PackageDefinition> {
  // signaling.proto only: reflection lists every service it is fed, and this server does not serve RelayRegistry.
  reflectionPackage ??= loadProto(SIGNALING_PROTO, { includeDirs: [protoDir()] })
  reflectionPackage.catch(() => (reflectionPackage = undefined))
  return reflectionPackage
}

export class SignalingServer {
  readonly #server: Server
  readonly #limits: ServerLimits
  readonly #topics = new Topics<Subscriber>()
  readonly #health: HealthImplementation
  readonly #buildInfo: BuildInfo
  readonly #connections: ConnectionLimits
  readonly #auth: SubscribeAuthenticator | undefined
  #published = 0
  #delivered = 0
  #dropped = 0
  #refusedPublishes = 0
  #refusedSubscribes = 0
  /** Open Subscribe streams, counted against maxStreams (Topics.subscriberCount is O(topics)). */
  #openStreams = 0
  #closing: Promise<void> | undefined
  #address = ''
  #cluster: Cluster | undefined

  private constructor(server: Server, limits: ServerLimits, version: string, auth: SubscribeAuthenticator | undefined, clock: MonotonicClock | undefined) {
    this.#server = server
    this.#limits = limits
    this.#auth = auth
    this.#connections = new ConnectionLimits({
      maxSubscriptions: limits.maxSubscriptionsPerConnection,
      publishRatePerSecond: limits.publishRatePerSecond,
      publishBurst: limits.publishBurst,
    }, clock)
    // The tag field carries the auth key: cunīcu's BuildInfo has no field for it, and tag is free text.
    this.#buildInfo = { ...serverBuildInfo(version), ...(auth ? { tag: auth.buildInfoTag } : {}) }
    this.#health = new HealthImplementation({ '': 'SERVING', [SIGNALING_SERVICE_NAME]: 'SERVING' })
  }

  static async start(options: SignalingServerOptions): Promise<SignalingServer> {
    const limits = resolveLimits(options.limits)
    const { host, port } = parseListen(options.listen)
    const relays = options.relays?.length ? new RelayRegistry(options.relays) : undefined
    const pkg = await loadReflectionPackageFor(relays)
    const server = new Server({
      // Bounds what one request may make us hold; envelopes between the limit and this get our own,
      // clearer RESOURCE_EXHAUSTED message from publish().
      'grpc.max_receive_message_length': Math.max(2 * limits.maxEnvelopeBytes, 1024 * 1024),
      'grpc.max_concurrent_streams': limits.maxConnectionStreams,
    })
    const auth = options.auth ? new SubscribeAuthenticator(options.auth) : undefined
    const self = new SignalingServer(server, limits, options.version ?? packageVersion(), auth, options.clock)
    server.addService(wireService, self.#implementation())
    self.#health.addToServer(server)
    relays?.addToServer(server)
    new ReflectionService(pkg).addToServer(server)
    if (options.cluster) {
      // Loaded only here, so a plain `signal` never loads the Redis client.
      const { openCluster } = await import('./cluster/open-cluster.js')
      try {
        self.#cluster = await openCluster(options.cluster, {
          deliver: (recipient, bytes) => self.#deliverLocal(recipient, bytes),
          ...(options.onClusterEvent ? { onEvent: options.onClusterEvent } : {}),
        })
      } catch (err) {
        throw new SignalingServerError((err as Error).message)
      }
    }

    const credentials = options.tls
      ? ServerCredentials.createSsl(null, [{ cert_chain: options.tls.cert, private_key: options.tls.key }], false)
      : ServerCredentials.createInsecure()
    const target = `${formatHost(host)}:${port}`
    try {
      const bound = await new Promise<number>((resolve, reject) =>
        server.bindAsync(target, credentials, (err, p) => (err ? reject(err) : resolve(p))),
      )
      self.#address = `${formatHost(host)}:${bound}`
    } catch (err) {
      server.forceShutdown()
      await self.#cluster?.close()
      throw new SignalingServerError(`cannot listen on ${options.listen}: ${(err as Error).message}`)
    }
    return self
  }

  /** The bound "HOST:PORT", with the real port when port 0 was asked for. */
  get address(): string {
    return this.#address
  }

  /** The key clients seal subscribe proofs to, when this server requires them (`auth`). */
  get authKey(): PublicKey | undefined {
    return this.#auth?.publicKey
  }

  stats(): ServerStats {
    return {
      subscribers: this.#topics.subscriberCount,
      topics: this.#topics.topicCount,
      published: this.#published,
      delivered: this.#delivered,
      dropped: this.#dropped,
      refusedPublishes: this.#refusedPublishes,
      refusedSubscribes: this.#refusedSubscribes,
      ...(this.#cluster ? { cluster: this.#cluster.stats() } : {}),
    }
  }

  /** Stops accepting, ends every stream with UNAVAILABLE, then waits up to graceMs for calls in flight. */
  close(graceMs = 2000): Promise<void> {
    this.#closing ??= this.#shutdown(graceMs)
    return this.#closing
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#health.setStatus('', 'NOT_SERVING')
    this.#health.setStatus(SIGNALING_SERVICE_NAME, 'NOT_SERVING')
    for (const subscriber of this.#topics.all()) {
      // UNAVAILABLE, not OK: the stream did not complete, and clients should subscribe again elsewhere/later.
      subscriber.call.emit('error', { code: status.UNAVAILABLE, details: 'signaling server is shutting down' })
      this.#drop(subscriber)
    }
    this.#connections.clear()
    this.#auth?.close()
    await this.#cluster?.close()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown()
        resolve()
      }, graceMs)
      this.#server.tryShutdown(() => {
        clearTimeout(timer)
        resolve()
      })
    })
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
        const error = this.#publish(call.request, call.getPeer())
        if (error) {
          this.#refusedPublishes++
          callback(error)
        } else callback(null, {})
      },
    }
  }

  #subscribe(call: ServerWritableStream<SubscribeRequest, Buffer>): void {
    const refusal = this.#admitSubscriber(call)
    if (refusal) {
      this.#refusedSubscribes++
      call.emit('error', refusal)
      return
    }
    const { key } = call.request
    const subscriber: Subscriber = {
      key,
      call,
      peer: call.getPeer(),
      released: false,
      queue: new SubscriberQueue(
        call,
        { maxFrames: this.#limits.queueMaxEnvelopes, maxBytes: this.#limits.queueMaxBytes },
        { delivered: () => this.#delivered++, dropped: (n) => (this.#dropped += n) },
      ),
    }
    if (this.#cluster) return this.#subscribeClustered(subscriber)
    // Both synchronous: no publish can slip in between the marker and joining the topic.
    call.write(SYNC_FRAME)
    this.#topics.add(key, subscriber)
    const leave = (): void => this.#drop(subscriber)
    call.on('cancelled', leave)
    call.on('error', leave)
    call.on('finish', leave)
    call.on('close', leave)
  }

  /** Cluster mode: the sync envelope waits until this instance receives the key's envelopes from every instance. */
  #subscribeClustered(subscriber: Subscriber): void {
    const { call, key } = subscriber
    const leave = (): void => this.#drop(subscriber)
    call.on('cancelled', leave)
    call.on('error', leave)
    call.on('finish', leave)
    call.on('close', leave)
    void this.#cluster!.join(key).then(() => {
      if (subscriber.released || this.#closing) return
      call.write(SYNC_FRAME)
      this.#topics.add(key, subscriber)
    })
  }

  #deliverLocal(recipient: Uint8Array, bytes: Buffer): void {
    for (const subscriber of this.#topics.subscribers(recipient)) subscriber.queue.push(bytes)
  }

  /**
   * Why a Subscribe may not start, checked cheapest first; on success the stream holds one unit of the
   * server's and its connection's stream budgets until #drop gives them back.
   */
  #admitSubscriber(call: ServerWritableStream<SubscribeRequest, Buffer>): { code: status; details: string } | undefined {
    const { key, invalid } = call.request
    if (this.#closing) return { code: status.UNAVAILABLE, details: 'signaling server is shutting down' }
    if (invalid !== undefined) return { code: status.INVALID_ARGUMENT, details: `subscribe request is not a valid SubscribeParams message: ${invalid}` }
    if (key.length !== KEY_LENGTH) {
      return { code: status.INVALID_ARGUMENT, details: `subscribe key is ${key.length} bytes, but a public key is ${KEY_LENGTH} bytes` }
    }
    if (this.#auth) {
      const proof = call.metadata.get(AUTH_METADATA_KEY)[0]
      const refused = this.#auth.check(typeof proof === 'string' ? proof : undefined, key)
      if (refused) return refused
    }
    if (this.#openStreams >= this.#limits.maxStreams) {
      return {
        code: status.RESOURCE_EXHAUSTED,
        details: `server-wide limit of ${this.#limits.maxStreams} open subscriptions reached (signal --max-streams); retry later or use another server`,
      }
    }
    const perConnection = this.#connections.admitSubscription(call.getPeer())
    if (perConnection) return { code: status.RESOURCE_EXHAUSTED, details: perConnection }
    this.#openStreams++
    return undefined
  }

  #drop(subscriber: Subscriber): void {
    this.#topics.remove(subscriber.key, subscriber)
    subscriber.queue.close()
    if (subscriber.released) return
    subscriber.released = true
    this.#openStreams--
    this.#cluster?.leave(subscriber.key)
    this.#connections.releaseSubscription(subscriber.peer)
  }

  #publish({ envelope, bytes, invalid }: PublishRequest, peer: string): { code: status; details: string } | undefined {
    // Counted before anything else, so a flood of garbage costs the sender its budget like valid envelopes do.
    const overRate = this.#connections.admitPublish(peer)
    if (overRate) return { code: status.RESOURCE_EXHAUSTED, details: overRate }
    if (bytes.length > this.#limits.maxEnvelopeBytes) {
      return {
        code: status.RESOURCE_EXHAUSTED,
        details: `envelope is ${bytes.length} bytes, over this server's limit of ${this.#limits.maxEnvelopeBytes} bytes (signal --max-envelope-bytes)`,
      }
    }
    if (!envelope) return { code: status.INVALID_ARGUMENT, details: `publish request is not a valid Envelope message: ${invalid ?? 'undecodable'}` }
    for (const [field, value] of [['sender', envelope.sender], ['recipient', envelope.recipient]] as const) {
      if (value.length !== KEY_LENGTH) {
        return { code: status.INVALID_ARGUMENT, details: `envelope ${field} is ${value.length} bytes, but a public key is ${KEY_LENGTH} bytes` }
      }
    }
    this.#published++
    for (const subscriber of this.#topics.subscribers(envelope.recipient)) subscriber.queue.push(bytes)
    this.#cluster?.publish(envelope.recipient, bytes)
    return undefined
  }
}

function resolveLimits(partial: Partial<ServerLimits> = {}): ServerLimits {
  const limits = { ...DEFAULT_LIMITS }
  for (const [name, value] of Object.entries(partial) as [keyof ServerLimits, number | undefined][]) {
    if (value === undefined) continue
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new SignalingServerError(`server limit ${name} must be a positive integer, got ${value}`)
    }
    limits[name] = value
  }
  if (limits.maxConnectionStreams <= limits.maxSubscriptionsPerConnection) {
    throw new SignalingServerError(
      `server limit maxConnectionStreams (${limits.maxConnectionStreams}) must exceed maxSubscriptionsPerConnection (${limits.maxSubscriptionsPerConnection}): otherwise a subscription over the limit waits forever instead of being refused`,
    )
  }
  return limits
}

/** "HOST:PORT", "[V6]:PORT" or ":PORT". */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim())
  const port = match ? Number(match[3]) : NaN
  if (!match || port > 65535) {
    throw new SignalingServerError(`listen address "${listen}" is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080 or :8080)`)
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port }
}

/**
 * grpc-js 1.14 runs a handler even for a call that already ended with DEADLINE_EXCEEDED while waiting for
 * the end of the request, once the client resets the stream; that call never emits 'cancelled' or 'close',
 * so a subscriber added for it would hold its stream budgets forever (found by test/server-fuzz.test.ts).
 */
function endedAtDeadline(call: { getDeadline(): Date | number }): boolean {
  const deadline = call.getDeadline()
  return (deadline instanceof Date ? deadline.getTime() : deadline) <= Date.now()
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
