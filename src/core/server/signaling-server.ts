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
import { KEY_LENGTH } from '../keys.js'
import { serverBuildInfo } from './build-info.js'
import { packageVersion, protoDir, SIGNALING_PROTO } from './package-root.js'
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
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = {
  maxEnvelopeBytes: 65536,
  queueMaxEnvelopes: 1024,
  queueMaxBytes: 4 * 1024 * 1024,
}

export interface SignalingServerOptions {
  /** "HOST:PORT"; port 0 picks a free one; IPv6 as "[::1]:0"; an empty host means all IPv4 interfaces. */
  listen: string
  tls?: { cert: Buffer; key: Buffer }
  limits?: Partial<ServerLimits>
  /** Reported by GetBuildInfo; defaults to package.json's version. */
  version?: string
  /** `--relay` URLs served through cunīcu's RelayRegistry.GetRelays (none: the service is not offered). */
  relays?: string[]
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
}

export class SignalingServerError extends Error {
  override name = 'SignalingServerError'
}

export const SIGNALING_SERVICE_NAME = 'cunicu.signaling.Signaling'

interface PublishRequest {
  envelope: Envelope
  /** The envelope as received: forwarded as is, so fan-out costs no re-encoding. */
  bytes: Buffer
}

interface Subscriber {
  key: Uint8Array
  call: ServerWritableStream<SubscribeParams, Buffer>
  queue: SubscriberQueue
}

// The generated definition, but Publish also hands over the raw bytes and Subscribe writes pre-encoded
// frames. The bytes on the wire are exactly those of the generated service.
const wireService = {
  ...SignalingService,
  publish: {
    ...SignalingService.publish,
    requestDeserialize: (bytes: Buffer): PublishRequest => ({ envelope: Envelope.decode(bytes), bytes }),
  },
  subscribe: {
    ...SignalingService.subscribe,
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
  #published = 0
  #delivered = 0
  #dropped = 0
  #closing: Promise<void> | undefined
  #address = ''

  private constructor(server: Server, limits: ServerLimits, version: string) {
    this.#server = server
    this.#limits = limits
    this.#buildInfo = serverBuildInfo(version)
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
    })
    const self = new SignalingServer(server, limits, options.version ?? packageVersion())
    server.addService(wireService, self.#implementation())
    self.#health.addToServer(server)
    relays?.addToServer(server)
    new ReflectionService(pkg).addToServer(server)

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
      throw new SignalingServerError(`cannot listen on ${options.listen}: ${(err as Error).message}`)
    }
    return self
  }

  /** The bound "HOST:PORT", with the real port when port 0 was asked for. */
  get address(): string {
    return this.#address
  }

  stats(): ServerStats {
    return {
      subscribers: this.#topics.subscriberCount,
      topics: this.#topics.topicCount,
      published: this.#published,
      delivered: this.#delivered,
      dropped: this.#dropped,
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
      subscribe: (call: ServerWritableStream<SubscribeParams, Buffer>) => this.#subscribe(call),
      publish: (call: ServerUnaryCall<PublishRequest, Empty>, callback: sendUnaryData<Empty>) => {
        const error = this.#publish(call.request)
        if (error) callback(error)
        else callback(null, {})
      },
    }
  }

  #subscribe(call: ServerWritableStream<SubscribeParams, Buffer>): void {
    const { key } = call.request
    if (this.#closing) {
      call.emit('error', { code: status.UNAVAILABLE, details: 'signaling server is shutting down' })
      return
    }
    if (key.length !== KEY_LENGTH) {
      call.emit('error', {
        code: status.INVALID_ARGUMENT,
        details: `subscribe key is ${key.length} bytes, but a public key is ${KEY_LENGTH} bytes`,
      })
      return
    }
    const subscriber: Subscriber = {
      key,
      call,
      queue: new SubscriberQueue(
        call,
        { maxFrames: this.#limits.queueMaxEnvelopes, maxBytes: this.#limits.queueMaxBytes },
        { delivered: () => this.#delivered++, dropped: (n) => (this.#dropped += n) },
      ),
    }
    // Both synchronous: no publish can slip in between the marker and joining the topic.
    call.write(SYNC_FRAME)
    this.#topics.add(key, subscriber)
    const leave = (): void => this.#drop(subscriber)
    call.on('cancelled', leave)
    call.on('error', leave)
    call.on('finish', leave)
    call.on('close', leave)
  }

  #drop(subscriber: Subscriber): void {
    this.#topics.remove(subscriber.key, subscriber)
    subscriber.queue.close()
  }

  #publish({ envelope, bytes }: PublishRequest): { code: status; details: string } | undefined {
    if (bytes.length > this.#limits.maxEnvelopeBytes) {
      return {
        code: status.RESOURCE_EXHAUSTED,
        details: `envelope is ${bytes.length} bytes, over this server's limit of ${this.#limits.maxEnvelopeBytes} bytes (maxEnvelopeBytes)`,
      }
    }
    for (const [field, value] of [['sender', envelope.sender], ['recipient', envelope.recipient]] as const) {
      if (value.length !== KEY_LENGTH) {
        return { code: status.INVALID_ARGUMENT, details: `envelope ${field} is ${value.length} bytes, but a public key is ${KEY_LENGTH} bytes` }
      }
    }
    this.#published++
    for (const subscriber of this.#topics.subscribers(envelope.recipient)) subscriber.queue.push(bytes)
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

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
