// The node:http2 transport (the default; `signal --transport grpc-js` is the other): a standard gRPC server
// for every client (grpc-go, the gRPC C core, grpc-js), written on node:http2 directly because grpc-js's
// per-call machinery cost more than our whole service (issue 12: ~15-20 µs of ~60 µs per envelope).
// Publish and Subscribe take the hot path: the publish's bytes, prefix and all, are what subscribers get;
// nothing is decoded but the recipient (envelope-scan.ts), and per call there is one small state object.
// Every other method goes through an adapter that gives its grpc-js implementation the call shape it knows.
import type { Socket } from 'node:net'
import {
  constants,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  type Settings,
} from 'node:http2'
import { status, type MethodDefinition, type Server, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js'
import { BuildInfo, Empty } from '../../../gen/common.js'
import { AUTH_METADATA_KEY } from '../../auth-proof.js'
import type { ServerTransport, SignalingHandlers, SubscriberStream, TransportOptions } from '../transport.js'
import { decodeSubscribeRequest } from '../wire-service.js'
import { frameMessage, MESSAGE_HEADER_BYTES, parseGrpcTimeout } from './grpc-wire.js'
import { runGenericCall, type GenericImplementation, type GenericMethod } from './generic-call.js'
import { answerUnary, endCall, startResponse } from './h2-stream-status.js'
import { readRequest, type RequestContext, type RequestHandler } from './request-body.js'

export const PUBLISH_PATH = '/cunicu.signaling.Signaling/Publish'
export const SUBSCRIBE_PATH = '/cunicu.signaling.Signaling/Subscribe'
const BUILD_INFO_PATH = '/cunicu.signaling.Signaling/GetBuildInfo'

/** Server keepalive (as grpc-js's defaults): a PING every 2 h to each connection, which must answer in 20 s. */
const KEEPALIVE_INTERVAL_MS = 2 * 60 * 60 * 1000
const KEEPALIVE_TIMEOUT_MS = 20_000

/** The connection name ("ip:port") kept on each session: computed once, read per call. */
const PEER = Symbol('peer')
type NamedSession = ServerHttp2Session & { [PEER]?: string }

/** The Empty message a Publish answers with, framed once. */
const EMPTY_ANSWER = frameMessage(Empty.encode({}).finish())

/**
 * HTTP/2 settings sized for many idle peers (measured in BENCHMARKS.md, "Idle peers"): a subscriber
 * receives envelopes of ≤ 64 KiB and sends one small request per call, so the server needs neither a large
 * receive window nor a large header table.
 */
export function sessionSettings(options: TransportOptions): Settings {
  return {
    maxConcurrentStreams: options.maxConcurrentStreams,
    // Requests are ≤ maxReceiveBytes; a window of that (≥ 64 KiB, the protocol's default) never stalls one.
    initialWindowSize: Math.min(Math.max(65_535, options.maxReceiveBytes + 16), 2 ** 31 - 1),
    maxHeaderListSize: 16 * 1024,
  }
}

export class H2Transport implements ServerTransport {
  readonly http2Server: Http2Server | Http2SecureServer
  readonly #options: TransportOptions
  readonly #methods = new Map<string, GenericMethod>()
  readonly #sessions = new Set<ServerHttp2Session>()
  /** The Signaling methods' request handlers, made once (not per call): see addSignaling. */
  #signaling: Map<string, { handler: RequestHandler; unary: boolean }> | undefined
  #unaryInFlight = 0
  readonly #keepalive: NodeJS.Timeout
  readonly #unaryEnded = (): void => {
    this.#unaryInFlight--
  }
  readonly #unaryStarted = (): void => {
    this.#unaryInFlight++
  }

  constructor(options: TransportOptions) {
    this.#options = options
    // maxDeflateDynamicTableSize 0: our response headers are a handful of constants; a dynamic table per
    // connection to compress them costs memory on every idle peer for a few bytes per call.
    // maxSessionMemory (MB) bounds what one connection may make nghttp2 and Node hold; the subscriber
    // queues write only while a stream drains, so a client that reads never comes near it.
    const common = { settings: sessionSettings(options), maxSessionMemory: 64, maxDeflateDynamicTableSize: 0 }
    this.http2Server = options.tls
      ? createSecureServer({ ...common, cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ['h2'], allowHTTP1: false })
      : createServer(common)
    this.http2Server.on('session', (session: ServerHttp2Session) => this.#session(session))
    this.http2Server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.#stream(stream, headers))
    // A TLS handshake that fails is the client's problem, not the server's.
    this.http2Server.on('tlsClientError', () => {})
    this.#keepalive = setInterval(() => this.#pingAll(), options.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS).unref()
  }

  /** Health, reflection and RelayRegistry register here with their grpc-js definitions and implementations. */
  readonly services: Pick<Server, 'addService'> = {
    addService: (definition: ServiceDefinition, implementation: UntypedServiceImplementation) => {
      for (const [name, method] of Object.entries(definition)) {
        const fn = (implementation[name] ?? implementation[(method as { originalName?: string }).originalName ?? '']) as GenericImplementation | undefined
        if (fn) this.#methods.set(method.path, { definition: method as MethodDefinition<unknown, unknown>, implementation: fn })
      }
    },
  }

  get unaryInFlight(): number {
    return this.#unaryInFlight
  }

  addSignaling(handlers: SignalingHandlers): void {
    this.#signaling = new Map([
      [PUBLISH_PATH, { unary: true, handler: (stream, frame, context) => publish(handlers, stream, frame, context) }],
      [SUBSCRIBE_PATH, { unary: false, handler: (stream, frame, context) => subscribe(handlers, stream, frame, context) }],
      [BUILD_INFO_PATH, { unary: true, handler: (stream) => answerUnary(stream, frameMessage(BuildInfo.encode(handlers.buildInfo()).finish())) }],
    ])
  }

  injectConnection(socket: Socket): void {
    this.http2Server.emit('connection', socket)
  }

  /**
   * The final GOAWAY (the last stream we processed), then the clients close their connections themselves:
   * what a drain wrote reaches them before the socket goes. Not session.close(), which would cut a
   * connection as soon as its streams ended, before a slow (or stopped) client read its statuses.
   */
  async shutdown(deadline: number): Promise<void> {
    clearInterval(this.#keepalive)
    this.http2Server.close()
    for (const session of this.#sessions) {
      if (session.closed || session.destroyed) continue
      try {
        session.goaway(constants.NGHTTP2_NO_ERROR)
      } catch {
        session.destroy()
      }
    }
    const left = (): boolean => [...this.#sessions].some((s) => !s.destroyed)
    while (left() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    this.forceShutdown()
  }

  forceShutdown(): void {
    clearInterval(this.#keepalive)
    this.http2Server.close()
    for (const session of this.#sessions) session.destroy()
    this.#sessions.clear()
  }

  #session(session: NamedSession): void {
    const socket = session.socket
    session[PEER] = `${socket?.remoteAddress ?? 'unknown'}:${socket?.remotePort ?? 0}`
    this.#sessions.add(session)
    session.on('error', ignore) // a client's protocol error ends its session; nothing for us to do
    session.once('close', () => this.#sessions.delete(session))
  }

  #pingAll(): void {
    for (const session of this.#sessions) {
      if (session.destroyed || session.closed) continue
      const timer = setTimeout(() => session.destroy(), KEEPALIVE_TIMEOUT_MS).unref()
      try {
        session.ping((err) => {
          clearTimeout(timer)
          if (err) session.destroy()
        })
      } catch {
        clearTimeout(timer)
      }
    }
  }

  #stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', ignore) // resets by the client end the call; 'close' tells the service
    const contentType = headers['content-type']
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE }, { endStream: true })
      return
    }
    const path = headers[':path']
    const timeoutMs = parseGrpcTimeout(headers['grpc-timeout'])
    if (Number.isNaN(timeoutMs)) return endCall(stream, status.INTERNAL, `Invalid grpc-timeout value: ${String(headers['grpc-timeout'])}`, true)
    const encoding = headers['grpc-encoding'] as string | undefined
    const peer = (stream.session as NamedSession | undefined)?.[PEER] ?? 'unknown:0'
    const maxBytes = this.#options.maxReceiveBytes
    const signaling = path === undefined ? undefined : this.#signaling?.get(path)
    if (signaling) {
      if (signaling.unary) {
        this.#unaryInFlight++
        stream.on('close', this.#unaryEnded)
      }
      return readRequest(stream, signaling.handler, maxBytes, encoding, timeoutMs, peer, headers)
    }
    const method = path === undefined ? undefined : this.#methods.get(path)
    if (!method) return endCall(stream, status.UNIMPLEMENTED, `The server does not implement the method ${path}`, true)
    runGenericCall(stream, headers, method, { maxBytes, encoding, timeoutMs, peer, unaryStarted: this.#unaryStarted, unaryEnded: this.#unaryEnded })
  }
}

function ignore(): void {}

/** The hot path: `frame` goes to the recipient's subscribers as it is. */
function publish(handlers: SignalingHandlers, stream: ServerHttp2Stream, frame: Buffer, context: RequestContext): void {
  const refusal = handlers.publish(frame, context.peer)
  if (refusal) endCall(stream, refusal.code, refusal.details)
  else answerUnary(stream, EMPTY_ANSWER)
}

function subscribe(handlers: SignalingHandlers, stream: ServerHttp2Stream, frame: Buffer, context: RequestContext): void {
  const request = decodeSubscribeRequest(frame.subarray(MESSAGE_HEADER_BYTES))
  const proof = context.headers[AUTH_METADATA_KEY]
  const subscriber = new H2SubscriberStream(stream)
  if (Number.isFinite(context.deadline)) {
    const timer = setTimeout(() => subscriber.fail(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), Math.max(0, context.deadline - Date.now()))
    stream.once('close', () => clearTimeout(timer))
  }
  handlers.subscribe(subscriber, request, typeof proof === 'string' ? proof : undefined, context.peer)
}

/** A Subscribe stream: frames arrive already prefixed and are written as they are. */
class H2SubscriberStream implements SubscriberStream {
  constructor(private readonly stream: ServerHttp2Stream) {}

  write(frame: Buffer): boolean {
    startResponse(this.stream)
    return this.stream.write(frame)
  }

  get writableNeedDrain(): boolean {
    return this.stream.writableNeedDrain
  }

  get writableLength(): number {
    return this.stream.destroyed ? 0 : this.stream.writableLength
  }

  once(event: 'drain', listener: () => void): void {
    this.stream.once(event, listener)
  }

  off(event: 'drain', listener: () => void): void {
    this.stream.off(event, listener)
  }

  fail(code: status, details: string): void {
    endCall(this.stream, code, details, true)
  }

  onEnd(leave: () => void): void {
    this.stream.once('close', leave)
  }
}
