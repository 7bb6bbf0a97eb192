// The request of a call whose client sends one message and half-closes (unary and server-streaming calls:
// Publish, Subscribe, GetBuildInfo, health): the whole body collected (bounded), then handed on, or the
// call ended at its grpc-timeout. Built for the relay's hot path: one small state object per call and
// listeners shared by every stream (`this` is the stream), so a publish allocates no closures.
import type { IncomingHttpHeaders } from 'node:http2'
import type { GrpcStream } from './grpc-stream.js'
import { status } from '@grpc/grpc-js'
import { MESSAGE_HEADER_BYTES, unaryMessage } from './grpc-wire.js'
import { endCall } from './h2-stream-status.js'

/** Called with the request's one message (its frame, prefix included), once the client half-closed. */
export type RequestHandler = (stream: GrpcStream, frame: Buffer, context: RequestContext) => void

export interface RequestContext {
  /** The grpc-timeout as an absolute time (Date.now()), Infinity without one. */
  deadline: number
  /** The connection's name, "ip:port". */
  peer: string
  headers: IncomingHttpHeaders
}

const STATE = Symbol('request')

class RequestState implements RequestContext {
  first: Buffer | undefined = undefined
  more: Buffer[] | undefined = undefined
  size = 0
  timer: NodeJS.Timeout | undefined = undefined
  done = false

  constructor(
    readonly handler: RequestHandler,
    readonly maxBytes: number,
    readonly encoding: string | undefined,
    readonly deadline: number,
    readonly peer: string,
    readonly headers: IncomingHttpHeaders,
  ) {}
}

type Reading = GrpcStream & { [STATE]: RequestState }

/**
 * Reads the request of `stream` and calls `handler` with its message; malformed framing, a message over
 * `maxBytes` and the deadline end the call here with grpc-js's statuses. `timeoutMs`: from grpc-timeout.
 */
export function readRequest(
  stream: GrpcStream,
  handler: RequestHandler,
  maxBytes: number,
  encoding: string | undefined,
  timeoutMs: number | undefined,
  peer: string,
  headers: IncomingHttpHeaders,
): void {
  const state = new RequestState(handler, maxBytes, encoding, timeoutMs === undefined ? Infinity : Date.now() + timeoutMs, peer, headers)
  ;(stream as Reading)[STATE] = state
  if (timeoutMs !== undefined) state.timer = setTimeout(deadlineExceeded, timeoutMs, stream as Reading)
  stream.on('data', onData)
  stream.on('end', onEnd)
  stream.on('close', onClose)
}

function onData(this: Reading, chunk: Buffer): void {
  const state = this[STATE]
  if (state.done) return
  state.size += chunk.length
  // A message plus a second header is all a well-formed request may hold; more is refused now, not buffered.
  if (state.size > state.maxBytes + 2 * MESSAGE_HEADER_BYTES) {
    finish(state)
    endCall(this, status.RESOURCE_EXHAUSTED, `Received message larger than max (${state.size - MESSAGE_HEADER_BYTES} vs. ${state.maxBytes})`, true)
    return
  }
  if (state.first === undefined) state.first = chunk
  else (state.more ??= [state.first]).push(chunk)
}

function onEnd(this: Reading): void {
  const state = this[STATE]
  if (state.done) return
  finish(state)
  const body = state.more ? Buffer.concat(state.more) : (state.first ?? EMPTY)
  state.first = state.more = undefined
  const message = unaryMessage(body, state.maxBytes, state.encoding)
  if (message.refusal) return endCall(this, message.refusal.code, message.refusal.details)
  state.handler(this, message.frame, state)
  // A Subscribe's stream lives on: it need not keep its request's state and headers.
  this[STATE] = FINISHED
}

function onClose(this: Reading): void {
  finish(this[STATE])
}

function deadlineExceeded(stream: Reading): void {
  const state = stream[STATE]
  state.timer = undefined
  if (state.done) return
  finish(state)
  endCall(stream, status.DEADLINE_EXCEEDED, 'Deadline exceeded', true)
}

function finish(state: RequestState): void {
  if (state === FINISHED) return
  state.done = true
  if (state.timer) clearTimeout(state.timer)
  state.timer = undefined
}

const EMPTY = Buffer.alloc(0)

/** What a stream whose request was handled points to: done, nothing held. */
const FINISHED = new RequestState(() => {}, 0, undefined, Infinity, '', {})
FINISHED.done = true
