// The gRPC layer both HTTP/2 transports share (node:http2 in h2-transport.ts, our own in ../h2js/): which
// method a stream calls, the hot path for Publish and Subscribe, the adapter for every other method, and the
// count of unary calls in flight. It sees streams only as GrpcStream, so it knows neither HTTP/2 underneath.
// Publish and Subscribe: the publish's bytes, prefix and all, are what subscribers get; nothing is decoded
// but the recipient (envelope-scan.ts), and per call there is one small state object.
import type { IncomingHttpHeaders } from 'node:http2'
import { status, type MethodDefinition, type Server, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js'
import { BuildInfo, Empty } from '../../../gen/common.js'
import { AUTH_METADATA_KEY } from '../../auth-proof.js'
import type { ServerTransport, SignalingHandlers, SubscriberStream } from '../transport.js'
import { decodeSubscribeRequest } from '../wire-service.js'
import { frameMessage, MESSAGE_HEADER_BYTES, parseGrpcTimeout } from './grpc-wire.js'
import type { GrpcStream } from './grpc-stream.js'
import { runGenericCall, type GenericImplementation, type GenericMethod } from './generic-call.js'
import { answerUnary, endCall } from './h2-stream-status.js'
import { readRequest, type RequestContext, type RequestHandler } from './request-body.js'
import { startResponse } from './h2-stream-status.js'

export const PUBLISH_PATH = '/cunicu.signaling.Signaling/Publish'
export const SUBSCRIBE_PATH = '/cunicu.signaling.Signaling/Subscribe'
const BUILD_INFO_PATH = '/cunicu.signaling.Signaling/GetBuildInfo'
const HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE = 415

/** The Empty message a Publish answers with, framed once. */
const EMPTY_ANSWER = frameMessage(Empty.encode({}).finish())

export class GrpcRouter {
  readonly #maxReceiveBytes: number
  readonly #methods = new Map<string, GenericMethod>()
  /** The Signaling methods' request handlers, made once (not per call): see addSignaling. */
  #signaling: Map<string, { handler: RequestHandler; unary: boolean }> | undefined
  #unaryInFlight = 0
  readonly #unaryEnded = (): void => {
    this.#unaryInFlight--
  }
  readonly #unaryStarted = (): void => {
    this.#unaryInFlight++
  }

  constructor(maxReceiveBytes: number) {
    this.#maxReceiveBytes = maxReceiveBytes
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

  /** Unary calls started and not yet answered. */
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

  /** A new stream with its request headers, from the connection named `peer` ("ip:port"). */
  route(stream: GrpcStream, headers: IncomingHttpHeaders, peer: string): void {
    stream.on('error', ignore) // resets by the client end the call; 'close' tells the service
    const contentType = headers['content-type']
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE }, { endStream: true })
      return
    }
    const path = headers[':path']
    const timeoutMs = parseGrpcTimeout(headers['grpc-timeout'])
    if (Number.isNaN(timeoutMs)) return endCall(stream, status.INTERNAL, `Invalid grpc-timeout value: ${String(headers['grpc-timeout'])}`, true)
    const encoding = headers['grpc-encoding'] as string | undefined
    const maxBytes = this.#maxReceiveBytes
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

/** The half of ServerTransport both HTTP/2 transports answer from their router. */
export abstract class RoutingTransport implements Pick<ServerTransport, 'services' | 'unaryInFlight' | 'addSignaling'> {
  protected readonly router: GrpcRouter

  constructor(maxReceiveBytes: number) {
    this.router = new GrpcRouter(maxReceiveBytes)
  }

  /** Health, reflection and RelayRegistry register here with their grpc-js definitions and implementations. */
  get services(): Pick<Server, 'addService'> {
    return this.router.services
  }

  get unaryInFlight(): number {
    return this.router.unaryInFlight
  }

  addSignaling(handlers: SignalingHandlers): void {
    this.router.addSignaling(handlers)
  }
}

function ignore(): void {}

/** The hot path: `frame` goes to the recipient's subscribers as it is. */
function publish(handlers: SignalingHandlers, stream: GrpcStream, frame: Buffer, context: RequestContext): void {
  const refusal = handlers.publish(frame, context.peer)
  if (refusal) endCall(stream, refusal.code, refusal.details)
  else answerUnary(stream, EMPTY_ANSWER)
}

function subscribe(handlers: SignalingHandlers, stream: GrpcStream, frame: Buffer, context: RequestContext): void {
  const request = decodeSubscribeRequest(frame.subarray(MESSAGE_HEADER_BYTES))
  const proof = context.headers[AUTH_METADATA_KEY]
  const subscriber = new GrpcSubscriberStream(stream)
  if (Number.isFinite(context.deadline)) {
    const timer = setTimeout(() => subscriber.fail(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), Math.max(0, context.deadline - Date.now()))
    stream.once('close', () => clearTimeout(timer))
  }
  handlers.subscribe(subscriber, request, typeof proof === 'string' ? proof : undefined, context.peer)
}

/** A Subscribe stream: frames arrive already prefixed and are written as they are. */
class GrpcSubscriberStream implements SubscriberStream {
  constructor(private readonly stream: GrpcStream) {}

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
