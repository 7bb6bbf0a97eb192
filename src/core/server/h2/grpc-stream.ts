// The server side of one HTTP/2 stream as the gRPC layer (request-body, h2-stream-status, generic-call,
// grpc-router) uses it: the part of node:http2's ServerHttp2Stream we need, which a ServerHttp2Stream
// satisfies as it is and our own HTTP/2 implementation (../h2js/) implements without a Duplex per call.

/** Response headers or trailers: names in lower case, values as they go on the wire. */
export type StreamHeaders = Readonly<Record<string, string | number>>

export interface RespondOptions {
  endStream?: boolean
  /** The status follows in trailers: 'wantTrailers' fires once the data went out, then sendTrailers(). */
  waitForTrailers?: boolean
}

export interface GrpcStream {
  readonly headersSent: boolean
  /** Gone: reset, or both sides ended and closed. */
  readonly destroyed: boolean
  readonly closed: boolean
  readonly writableEnded: boolean
  /** The client's half ended (END_STREAM received). */
  readonly readableEnded: boolean
  /** Bytes written and not yet handed on (flow control, a busy socket). */
  readonly writableLength: number
  readonly writableNeedDrain: boolean
  respond(headers: StreamHeaders, options?: RespondOptions): void
  write(chunk: Buffer): boolean
  end(chunk?: Buffer): void
  sendTrailers(headers: StreamHeaders): void
  /** Resets the stream with this HTTP/2 error code (RST_STREAM). */
  close(code?: number): void
  on(event: 'data', listener: (chunk: Buffer) => void): this
  on(event: 'end' | 'close' | 'wantTrailers' | 'drain', listener: () => void): this
  on(event: 'error', listener: (err: Error) => void): this
  once(event: 'end' | 'close' | 'wantTrailers' | 'drain', listener: () => void): this
  off(event: 'drain', listener: () => void): this
}
