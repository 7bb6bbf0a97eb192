// The signaling service below its typed client: a grpc-js client whose (de)serializers are the identity, so
// tests can send any bytes as a message, and raw HTTP/2 requests, so they can send any gRPC framing at all.
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2'
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js'

export const PUBLISH_PATH = '/cunicu.signaling.Signaling/Publish'
export const SUBSCRIBE_PATH = '/cunicu.signaling.Signaling/Subscribe'
export const BUILD_INFO_PATH = '/cunicu.signaling.Signaling/GetBuildInfo'

const identity = (bytes: Buffer): Buffer => bytes
const method = (path: string, responseStream: boolean) => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
})

const RawSignalingClient = makeGenericClientConstructor({ publish: method(PUBLISH_PATH, false), subscribe: method(SUBSCRIBE_PATH, true) }, 'RawSignaling')

export interface RawSignaling extends Client {
  publish(request: Buffer, metadata: Metadata, options: { deadline: number }, callback: (err: ServiceError | null) => void): void
  subscribe(request: Buffer, metadata: Metadata, options: { deadline?: number }): ClientReadableStream<Buffer>
}

/** A client on its own HTTP/2 connection, sending request bytes as given. */
export function rawBytesClient(address: string): RawSignaling {
  return new RawSignalingClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as RawSignaling
}

/** Publishes raw bytes; resolves with the status code (0 = OK) and details, never rejects. */
export function publishBytes(client: RawSignaling, bytes: Buffer, timeoutMs = 5000): Promise<{ code: number; details: string }> {
  return new Promise((resolve) =>
    client.publish(bytes, new Metadata(), { deadline: Date.now() + timeoutMs }, (err) => resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '' })),
  )
}

/** A gRPC length-prefixed message: flag byte, 4-byte big-endian length (`declared`, which may lie), payload. */
export function grpcFrame(payload: Uint8Array, flag = 0, declared = payload.length): Buffer {
  const header = Buffer.alloc(5)
  header[0] = flag
  header.writeUInt32BE(declared >>> 0, 1)
  return Buffer.concat([header, payload])
}

export interface RawRequest {
  path: string
  headers?: Record<string, string>
  body?: Buffer
  /** False: leave our side open (the server must still end the call, e.g. by grpc-timeout). */
  end?: boolean
}

export interface RawOutcome {
  /** HTTP :status of the response. */
  httpStatus?: number
  /** grpc-status from a trailers-only response or the trailers. */
  grpcStatus?: number
  grpcMessage?: string
  /** Response bytes before the status (a Subscribe's sync frame, a unary answer). */
  data: Buffer
  /** A Subscribe stream became live (its first frame arrived) and we cancelled it. */
  cancelledLive?: boolean
  /** The stream was reset or errored without a status. */
  reset?: string
}

export function h2session(address: string): ClientHttp2Session {
  const session = connect(`http://${address}`)
  session.on('error', () => {}) // a server that refuses our garbage may end the session; the outcome says so
  return session
}

/**
 * One raw HTTP/2 request. Resolves once the call has an outcome: a status (gRPC or HTTP), a live
 * Subscribe (cancelled at once), or a reset; rejects only when nothing at all happens within `timeoutMs`.
 */
export function rawCall(session: ClientHttp2Session, request: RawRequest, timeoutMs = 5000): Promise<RawOutcome> {
  return new Promise((resolve, reject) => {
    const outcome: RawOutcome = { data: Buffer.alloc(0) }
    const stream = session.request(
      { ':method': 'POST', ':path': request.path, 'content-type': 'application/grpc', te: 'trailers', ...request.headers },
      { endStream: request.body === undefined && request.end !== false },
    )
    const timer = setTimeout(() => {
      stream.close(constants.NGHTTP2_CANCEL)
      reject(new Error(`no status within ${timeoutMs} ms for ${request.path} (${JSON.stringify(outcome)})`))
    }, timeoutMs)
    const settle = (): void => {
      clearTimeout(timer)
      // CANCEL, as a client abandoning a call does: a NO_ERROR reset would read as our side's end of request.
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL)
      resolve(outcome)
    }
    const takeStatus = (headers: IncomingHttpHeaders): boolean => {
      const code = headers['grpc-status']
      if (code === undefined) return false
      outcome.grpcStatus = Number(code)
      outcome.grpcMessage = decodeURIComponent(String(headers['grpc-message'] ?? ''))
      return true
    }
    stream.on('response', (headers) => {
      outcome.httpStatus = Number(headers[':status'])
      if (takeStatus(headers) || outcome.httpStatus !== 200) settle()
    })
    stream.on('data', (chunk: Buffer) => {
      outcome.data = Buffer.concat([outcome.data, chunk])
      if (request.path === SUBSCRIBE_PATH && outcome.data.length >= 5) {
        outcome.cancelledLive = true
        settle()
      }
    })
    stream.on('trailers', (headers) => takeStatus(headers) && settle())
    stream.on('error', (err) => {
      outcome.reset ??= err.message
      settle()
    })
    stream.on('close', () => {
      if (outcome.grpcStatus === undefined && outcome.httpStatus === undefined && !outcome.cancelledLive) outcome.reset ??= `closed, RST code ${stream.rstCode}`
      settle()
    })
    if (request.body !== undefined) {
      if (request.end === false) stream.write(request.body)
      else stream.end(request.body)
    }
  })
}
