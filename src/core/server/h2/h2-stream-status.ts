// Ending a gRPC call on an HTTP/2 stream (either transport's, grpc-stream.ts): a trailers-only response
// before any message went out, else trailers after the data. Shared by the hot methods and the generic-call
// adapter.
import type { status } from '@grpc/grpc-js'
import { RESPONSE_HEADERS, statusTrailers } from './grpc-wire.js'
import type { GrpcStream } from './grpc-stream.js'

/** RST_STREAM's NO_ERROR (RFC 9113 §7). */
const NO_ERROR = 0

export const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true })
const END_STREAM = Object.freeze({ endStream: true })
/** Set on a stream whose response headers went out with waitForTrailers: its status goes in trailers. */
const TRAILERS = Symbol('trailers')

type StatusStream = GrpcStream & { [TRAILERS]?: Record<string, string | number> }

/** Sends the response headers of a call that will write messages; its status later goes in trailers. */
export function startResponse(stream: GrpcStream): void {
  if (stream.headersSent || stream.destroyed) return
  stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS)
  stream.on('wantTrailers', sendTrailers) // fires once; on() spares the once() wrapper
}

function sendTrailers(this: StatusStream): void {
  const trailers = this[TRAILERS]
  if (trailers && !this.destroyed) this.sendTrailers(trailers)
}

/**
 * Ends the call with `code`: trailers-only when no headers went out, else trailers after what was written.
 * `reset`: the client's half may still be open (a deadline, a refusal before the request ended): reset the
 * stream with NO_ERROR after the status, so it does not linger.
 */
export function endCall(stream: GrpcStream, code: status, details: string, reset = false): void {
  if (stream.destroyed || stream.closed) return
  const s = stream as StatusStream
  if (s[TRAILERS]) return
  s[TRAILERS] = statusTrailers(code, details)
  if (!stream.headersSent) stream.respond({ ...RESPONSE_HEADERS, ...s[TRAILERS] }, END_STREAM)
  else if (!stream.writableEnded) stream.end()
  if (reset && !stream.readableEnded) stream.close(NO_ERROR)
}

/** An OK status after a unary answer (one message, already framed). */
export function answerUnary(stream: GrpcStream, frame: Buffer): void {
  if (stream.destroyed || stream.closed) return
  startResponse(stream)
  ;(stream as StatusStream)[TRAILERS] = OK_TRAILERS
  stream.end(frame)
}

const OK_TRAILERS = Object.freeze(statusTrailers(0, '')) as Record<string, string | number>
