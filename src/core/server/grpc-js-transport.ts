// The grpc-js transport (`signal --transport grpc-js`): grpc-js's server behind our connection guard, with
// the Signaling service adapted to the service's handlers. Kept as the reference the node:http2 transport
// (h2/) is measured and tested against.
import type { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js'
import type { BuildInfo, Empty } from '../../gen/common.js'
import { AUTH_METADATA_KEY } from '../auth-proof.js'
import { frameMessage, MESSAGE_HEADER_BYTES } from './h2/grpc-wire.js'
import { SignalingServerError } from './server-config.js'
import type { ServerTransport, SignalingHandlers, SubscriberStream, TransportOptions } from './transport.js'
import { UnaryCallTracker } from './unary-calls.js'
import { endedAtDeadline, wireService, type SubscribeRequest } from './wire-service.js'

export class GrpcJsTransport implements ServerTransport {
  readonly #server: Server
  readonly #unaryCalls = new UnaryCallTracker()
  readonly #injector: ReturnType<Server['createConnectionInjector']>
  readonly http2Server: EventEmitter

  constructor(options: TransportOptions) {
    this.#server = new Server({
      'grpc.max_receive_message_length': options.maxReceiveBytes,
      'grpc.max_concurrent_streams': options.maxConcurrentStreams,
      interceptors: [this.#unaryCalls.interceptor],
    })
    const credentials = options.tls
      ? ServerCredentials.createSsl(null, [{ cert_chain: options.tls.cert, private_key: options.tls.key }], false)
      : ServerCredentials.createInsecure()
    this.#injector = this.#server.createConnectionInjector(credentials)
    this.http2Server = injectorHttp2Server(this.#server)
  }

  get services(): Server {
    return this.#server
  }

  get unaryInFlight(): number {
    return this.#unaryCalls.inFlight
  }

  injectConnection(socket: Socket): void {
    this.#injector.injectConnection(socket)
  }

  addSignaling(handlers: SignalingHandlers): void {
    this.#server.addService(wireService, {
      getBuildInfo: (_call: ServerUnaryCall<Empty, BuildInfo>, callback: sendUnaryData<BuildInfo>) => callback(null, handlers.buildInfo()),
      subscribe: (call: ServerWritableStream<SubscribeRequest, Buffer>) => {
        if (endedAtDeadline(call)) return
        const proof = call.metadata.get(AUTH_METADATA_KEY)[0]
        handlers.subscribe(new GrpcJsSubscriberStream(call), call.request, typeof proof === 'string' ? proof : undefined, call.getPeer())
      },
      publish: (call: ServerUnaryCall<Buffer, Empty>, callback: sendUnaryData<Empty>) => {
        if (endedAtDeadline(call)) return callback({ code: status.DEADLINE_EXCEEDED, details: 'deadline exceeded before the request was complete' })
        const refusal = handlers.publish(frameMessage(call.request), call.getPeer())
        callback(refusal ?? null, refusal ? undefined : {})
      },
    })
  }

  shutdown(deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown()
        resolve()
      }, Math.max(100, deadline - performance.now()))
      this.#server.tryShutdown(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  forceShutdown(): void {
    this.#server.forceShutdown()
  }
}

/** grpc-js writes the message prefix itself: it gets the frame without it. */
class GrpcJsSubscriberStream implements SubscriberStream {
  constructor(private readonly call: ServerWritableStream<SubscribeRequest, Buffer>) {}

  write(frame: Buffer): boolean {
    return this.call.write(frame.subarray(MESSAGE_HEADER_BYTES))
  }

  get writableNeedDrain(): boolean {
    return this.call.writableNeedDrain
  }

  get writableLength(): number {
    return this.call.writableLength
  }

  once(event: 'drain', listener: () => void): void {
    this.call.once(event, listener)
  }

  off(event: 'drain', listener: () => void): void {
    this.call.off(event, listener)
  }

  fail(code: status, details: string): void {
    this.call.emit('error', { code, details })
  }

  onEnd(leave: () => void): void {
    for (const event of ['cancelled', 'error', 'finish', 'close']) this.call.on(event, leave)
  }
}

/** grpc-js's HTTP/2 server behind the connection injector just created (grpc-js 1.14 keeps it in a private map). */
function injectorHttp2Server(server: Server): EventEmitter {
  const servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers
  const last = servers ? [...servers.keys()].at(-1) : undefined
  if (!last) throw new SignalingServerError('this @grpc/grpc-js version does not expose its HTTP/2 server: the connection guard needs 1.14')
  return last
}
