// gRPC over HTTP/2 as the server sees it (the gRPC "PROTOCOL-HTTP2" document): length-prefixed messages
// (1 flag byte, 4-byte big-endian length), the grpc-timeout header, and statuses in trailers with a
// percent-encoded grpc-message. Error codes for malformed requests follow grpc-js's server, so clients and
// the hostile-input tests see the same statuses whichever transport answers.
import { gunzipSync, inflateSync } from 'node:zlib'
import { status } from '@grpc/grpc-js'

export const MESSAGE_HEADER_BYTES = 5

/** The response headers of every call (HTTP 200, gRPC content type). */
export const RESPONSE_HEADERS = Object.freeze({ ':status': 200, 'content-type': 'application/grpc+proto' })

export interface GrpcStatus {
  code: status
  details: string
}

/** A message as one buffer with its 5-byte prefix (uncompressed). */
export function frameMessage(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(MESSAGE_HEADER_BYTES + message.length)
  frame[0] = 0
  frame.writeUInt32BE(message.length, 1)
  frame.set(message, MESSAGE_HEADER_BYTES)
  return frame
}

/** grpc-message is percent-encoded (as grpc-js's encodeURI; every client decodes it). */
export function statusTrailers(code: status, details: string): Record<string, string | number> {
  return { 'grpc-status': code, 'grpc-message': encodeURI(details) }
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }

/**
 * The grpc-timeout header as milliseconds from now: undefined without one, NaN when it is not the
 * protocol's "1 to 8 digits and a unit" (answered with INTERNAL, as grpc-js does).
 */
export function parseGrpcTimeout(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined
  const match = /^(\d{1,8})([HMSmun])$/.exec(String(header))
  return match ? Number(match[1]) * TIMEOUT_UNITS[match[2]!]! : NaN
}

/** Why a unary request body is not exactly one message, or the message (its bytes, still with the prefix). */
export type UnaryBody = { frame: Buffer; refusal?: undefined } | { frame?: undefined; refusal: GrpcStatus }

/**
 * The one message of a unary request (or of a server-streaming call's request), given the whole request
 * body. Returns the frame with its prefix so a relay can forward it as is; a compressed message is
 * decompressed (gzip, deflate) into a new frame, bounded by `maxBytes`.
 */
export function unaryMessage(body: Buffer, maxBytes: number, encoding: string | undefined): UnaryBody {
  if (body.length < MESSAGE_HEADER_BYTES) return { refusal: { code: status.UNIMPLEMENTED, details: 'Received no request message' } }
  const declared = body.readUInt32BE(1)
  if (declared > maxBytes) return { refusal: tooLarge(declared, maxBytes) }
  const end = MESSAGE_HEADER_BYTES + declared
  if (body.length < end) return { refusal: { code: status.UNIMPLEMENTED, details: 'Received no request message' } }
  if (body.length > end) return { refusal: { code: status.UNIMPLEMENTED, details: `Received a second request message for server streaming method` } }
  if (body[0] !== 1) return { frame: body }
  const inflated = decompress(body.subarray(MESSAGE_HEADER_BYTES), maxBytes, encoding)
  return isStatus(inflated) ? { refusal: inflated } : { frame: frameMessage(inflated) }
}

/** Splits a stream of request bytes into messages (client- and bidi-streaming calls: reflection). */
export class MessageDecoder {
  #pending: Buffer = Buffer.alloc(0)

  constructor(
    private readonly maxBytes: number,
    private readonly encoding: string | undefined,
  ) {}

  /** The complete messages in `chunk` (prefix removed, decompressed), or the status that ends the call. */
  push(chunk: Buffer): Buffer[] | GrpcStatus {
    let buffer = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk
    const messages: Buffer[] = []
    while (buffer.length >= MESSAGE_HEADER_BYTES) {
      const declared = buffer.readUInt32BE(1)
      if (declared > this.maxBytes) return tooLarge(declared, this.maxBytes)
      const end = MESSAGE_HEADER_BYTES + declared
      if (buffer.length < end) break
      const payload = buffer.subarray(MESSAGE_HEADER_BYTES, end)
      if (buffer[0] === 1) {
        const inflated = decompress(payload, this.maxBytes, this.encoding)
        if (isStatus(inflated)) return inflated
        messages.push(inflated)
      } else messages.push(payload)
      buffer = buffer.subarray(end)
    }
    this.#pending = buffer
    return messages
  }

  /** Bytes of an incomplete message left at the end of the request. */
  get leftover(): number {
    return this.#pending.length
  }
}

function isStatus(value: Buffer | GrpcStatus): value is GrpcStatus {
  return !Buffer.isBuffer(value)
}

function tooLarge(declared: number, maxBytes: number): GrpcStatus {
  return { code: status.RESOURCE_EXHAUSTED, details: `Received message larger than max (${declared} vs. ${maxBytes})` }
}

/** Synchronous: request messages are bounded (≤ maxBytes out) and compressed ones are rare. */
function decompress(payload: Buffer, maxBytes: number, encoding = 'identity'): Buffer | GrpcStatus {
  if (encoding === 'identity') return payload
  if (encoding !== 'gzip' && encoding !== 'deflate') {
    return { code: status.UNIMPLEMENTED, details: `Received message compressed with unsupported encoding "${encoding}"` }
  }
  try {
    return (encoding === 'gzip' ? gunzipSync : inflateSync)(payload, { maxOutputLength: maxBytes })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      return { code: status.RESOURCE_EXHAUSTED, details: `Received message that decompresses to a size larger than ${maxBytes}` }
    }
    return { code: status.INTERNAL, details: 'Failed to decompress message' }
  }
}
