// Every method but the two hot ones (GetBuildInfo, grpc.health.v1 Check/Watch, reflection, RelayRegistry)
// served on either HTTP/2 transport through an adapter that gives their existing implementations grpc-js's call shape:
// `call.request`, `call.metadata`, `getPeer()`, `write()`/`end()`, 'data'/'end'/'cancelled' events and a
// unary callback. These are rare calls; clarity wins over allocations here.
import { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders } from 'node:http2'
import type { GrpcStream } from './grpc-stream.js'
import { Metadata, status, type MethodDefinition } from '@grpc/grpc-js'
import { frameMessage, MessageDecoder } from './grpc-wire.js'
import { answerUnary, endCall, startResponse } from './h2-stream-status.js'
import { readRequest } from './request-body.js'

// grpc-js's handler shapes, loosely: each implementation gets a call and, for unary ones, a callback.
export type GenericImplementation = (call: any, callback?: any) => void

export interface GenericMethod {
  definition: MethodDefinition<any, any>
  implementation: GenericImplementation
}

export interface GenericCallOptions {
  maxBytes: number
  encoding: string | undefined
  timeoutMs: number | undefined
  peer: string
  /** Unary calls are counted (a drain lets them finish): started, and ended once answered or gone. */
  unaryStarted(): void
  unaryEnded(): void
}

interface GrpcError {
  code?: number
  details?: string
  message?: string
}

class H2ServerCall extends EventEmitter {
  request: unknown = undefined
  cancelled = false
  readonly metadata: Metadata
  #ended = false

  constructor(
    private readonly stream: GrpcStream,
    headers: IncomingHttpHeaders,
    private readonly method: GenericMethod,
    private readonly peer: string,
    private readonly deadline: number,
  ) {
    super()
    this.metadata = Metadata.fromHttp2Headers(headers)
    stream.on('close', () => {
      if (this.#ended) return
      this.#ended = true
      this.cancelled = true
      super.emit('cancelled', 'cancelled')
    })
  }

  getPeer(): string {
    return this.peer
  }

  getDeadline(): Date | number {
    return Number.isFinite(this.deadline) ? new Date(this.deadline) : Infinity
  }

  getPath(): string {
    return this.method.definition.path
  }

  sendMetadata(): void {
    startResponse(this.stream)
  }

  write(message: unknown): boolean {
    if (this.#ended) return false
    startResponse(this.stream)
    return this.stream.write(frameMessage(this.method.definition.responseSerialize(message)))
  }

  end(): void {
    this.finish(status.OK, '')
  }

  /** grpc-js ends a call when its handler emits 'error' with a status; so does this adapter. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'error') return super.emit(event, ...args)
    const err = (args[0] ?? {}) as GrpcError
    this.finish(err.code ?? status.UNKNOWN, err.details ?? err.message ?? 'unknown error')
    return true
  }

  /** The unary answer. */
  answer(err: GrpcError | null, value: unknown): void {
    if (err) return this.finish(err.code ?? status.UNKNOWN, err.details ?? err.message ?? 'unknown error')
    if (this.#ended) return
    this.#ended = true
    let frame: Buffer
    try {
      frame = frameMessage(this.method.definition.responseSerialize(value))
    } catch {
      return endCall(this.stream, status.INTERNAL, 'Error serializing response')
    }
    answerUnary(this.stream, frame)
  }

  finish(code: number, details: string): void {
    if (this.#ended) return
    this.#ended = true
    endCall(this.stream, code, details, true)
  }

  deliver(message: Buffer): boolean {
    try {
      super.emit('data', this.method.definition.requestDeserialize(message))
      return true
    } catch {
      this.finish(status.INTERNAL, 'Error deserializing request')
      return false
    }
  }
}

export function runGenericCall(stream: GrpcStream, headers: IncomingHttpHeaders, method: GenericMethod, options: GenericCallOptions): void {
  const { definition, implementation } = method
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs
  const call = new H2ServerCall(stream, headers, method, options.peer, deadline)
  if (definition.requestStream) return streamRequests(stream, call, implementation, options)
  const unary = !definition.responseStream
  if (unary) {
    options.unaryStarted()
    stream.once('close', options.unaryEnded)
  }
  readRequest(
    stream,
    (_stream, frame) => {
      try {
        call.request = definition.requestDeserialize(frame.subarray(5))
      } catch {
        return call.finish(status.INTERNAL, 'Error deserializing request')
      }
      if (unary) implementation(call, (err: GrpcError | null, value: unknown) => call.answer(err, value))
      else {
        if (Number.isFinite(deadline)) {
          const timer = setTimeout(() => call.finish(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), deadline - Date.now())
          stream.once('close', () => clearTimeout(timer))
        }
        implementation(call)
      }
    },
    options.maxBytes,
    options.encoding,
    options.timeoutMs,
    options.peer,
    headers,
  )
}

/** Client- and bidi-streaming calls (reflection): messages as 'data' events, the client's half-close as 'end'. */
function streamRequests(stream: GrpcStream, call: H2ServerCall, implementation: GenericImplementation, options: GenericCallOptions): void {
  const decoder = new MessageDecoder(options.maxBytes, options.encoding)
  if (options.timeoutMs !== undefined) {
    const timer = setTimeout(() => call.finish(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), options.timeoutMs)
    stream.once('close', () => clearTimeout(timer))
  }
  implementation(call)
  stream.on('data', (chunk: Buffer) => {
    const messages = decoder.push(chunk)
    if (!Array.isArray(messages)) return call.finish(messages.code, messages.details)
    for (const message of messages) if (!call.deliver(message)) return
  })
  stream.on('end', () => {
    if (decoder.leftover > 0) return call.finish(status.INTERNAL, 'Incomplete message at the end of the request')
    call.emit('end')
  })
}
