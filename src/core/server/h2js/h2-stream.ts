// One HTTP/2 stream on our own server connection (h2-connection.ts), as the gRPC layer sees it
// (../h2/grpc-stream.ts): an EventEmitter with a small state, not a Duplex. Response data goes out
// at once while the client's stream and connection windows and the socket allow, else waits here
// (writableLength tells how much), and flows on when a WINDOW_UPDATE or the socket's 'drain' comes.
import { EventEmitter } from 'node:events'
import type { GrpcStream, RespondOptions, StreamHeaders } from '../h2/grpc-stream.js'
import { encodeHeaders } from './hpack-encoder.js'
import { ErrorCode } from './frame.js'

/** What a stream needs from its connection. */
export interface StreamOwner {
  /** The client's connection-level send window (ours to spend). */
  connectionWindow: number
  readonly maxFrameSize: number
  /** The socket holds enough unsent bytes: data waits rather than piling up there. */
  readonly socketBusy: boolean
  sendHeaders(streamId: number, block: Buffer, endStream: boolean): void
  /** DATA frames for `data` (at most the peer's frame size each). */
  sendData(streamId: number, data: Buffer, endStream: boolean): void
  sendReset(streamId: number, code: number): void
  /** This stream waits for window or socket: flush it when either comes back. */
  blocked(stream: H2Stream): void
  /** The stream is closed: forget it. */
  streamClosed(stream: H2Stream): void
}

/** Header blocks of frozen header objects (RESPONSE_HEADERS, OK trailers) are encoded once. */
const encoded = new WeakMap<object, Buffer>()
function headerBlock(headers: StreamHeaders): Buffer {
  if (!Object.isFrozen(headers)) return encodeHeaders(headers)
  let block = encoded.get(headers)
  if (!block) encoded.set(headers, (block = encodeHeaders(headers)))
  return block
}

const EMPTY = Buffer.alloc(0)

export class H2Stream extends EventEmitter implements GrpcStream {
  headersSent = false
  destroyed = false
  closed = false
  writableEnded = false
  readableEnded = false
  /** The RST_STREAM code that ended it, if one did. */
  rstCode: number | undefined = undefined
  /** What the client lets us send on this stream. */
  sendWindow: number
  /** Request bytes received since our last WINDOW_UPDATE for this stream. */
  unacknowledged = 0
  /** Request bytes the client may still send before it must wait for us. */
  receiveWindow: number
  #queue: Buffer[] | undefined = undefined
  #queuedBytes = 0
  #waitForTrailers = false
  /** END_STREAM went out (response complete). */
  #localEnded = false

  constructor(
    readonly id: number,
    private readonly owner: StreamOwner,
    sendWindow: number,
    receiveWindow: number,
  ) {
    super()
    this.sendWindow = sendWindow
    this.receiveWindow = receiveWindow
  }

  get writableLength(): number {
    return this.#queuedBytes
  }

  get writableNeedDrain(): boolean {
    return this.#queuedBytes > 0
  }

  respond(headers: StreamHeaders, options?: RespondOptions): void {
    if (this.headersSent || this.closed) return
    this.headersSent = true
    const endStream = options?.endStream === true
    this.#waitForTrailers = options?.waitForTrailers === true
    this.owner.sendHeaders(this.id, headerBlock(headers), endStream)
    if (endStream) {
      this.writableEnded = true
      this.#ended()
    }
  }

  write(chunk: Buffer): boolean {
    if (this.writableEnded || this.closed) return false
    if (this.#queue) {
      this.#queue.push(chunk)
      this.#queuedBytes += chunk.length
      return false
    }
    this.#send(chunk)
    return this.#queuedBytes === 0
  }

  end(chunk?: Buffer): void {
    if (this.writableEnded || this.closed) return
    if (chunk && chunk.length > 0) this.write(chunk)
    this.writableEnded = true
    if (!this.#queue) this.#finishWriting()
  }

  sendTrailers(headers: StreamHeaders): void {
    if (this.#localEnded || this.closed) return
    this.owner.sendHeaders(this.id, headerBlock(headers), true)
    this.#ended()
  }

  close(code: number = ErrorCode.NO_ERROR): void {
    if (this.closed) return
    this.owner.sendReset(this.id, code)
    this.rstCode = code
    this.destroy()
  }

  /** Gone without a word on the wire (the client reset it, or the connection went). */
  destroy(): void {
    if (this.closed) return
    this.closed = this.destroyed = true
    this.#queue = undefined
    this.#queuedBytes = 0
    this.owner.streamClosed(this)
    process.nextTick(emitClose, this)
  }

  /** DATA from the client (padding removed); `endStream`: its half ends. */
  receive(data: Buffer, endStream: boolean): void {
    if (this.readableEnded || this.closed) return
    if (data.length > 0) this.emit('data', data)
    if (!endStream || this.closed) return
    this.readableEnded = true
    this.emit('end')
    if (this.#localEnded) this.destroy()
  }

  /** The client reset the stream. */
  reset(code: number): void {
    this.rstCode = code
    this.destroy()
  }

  /** Window or socket came back: sends what waits. Returns true when nothing waits any more. */
  flush(): boolean {
    const queue = this.#queue
    if (!queue || this.closed) return true
    this.#queue = undefined
    const pending = queue.length === 1 ? queue[0]! : Buffer.concat(queue)
    this.#queuedBytes = 0
    this.#send(pending)
    if (this.#queue) return false
    if (this.writableEnded) this.#finishWriting()
    this.emit('drain')
    return true
  }

  /** Sends as much of `chunk` as the windows and the socket allow, and queues the rest. */
  #send(chunk: Buffer): void {
    const owner = this.owner
    const allowed = owner.socketBusy ? 0 : Math.min(chunk.length, this.sendWindow, owner.connectionWindow)
    if (allowed > 0) {
      this.sendWindow -= allowed
      owner.connectionWindow -= allowed
      owner.sendData(this.id, allowed === chunk.length ? chunk : chunk.subarray(0, allowed), false)
    }
    if (allowed < chunk.length) {
      const rest = chunk.subarray(allowed)
      this.#queue = [rest]
      this.#queuedBytes = rest.length
      owner.blocked(this)
    }
  }

  /** Every byte went out after end(): the trailers (the caller's 'wantTrailers' handler), or END_STREAM. */
  #finishWriting(): void {
    if (this.#localEnded || this.closed) return
    if (this.#waitForTrailers) {
      this.emit('wantTrailers')
      return
    }
    this.owner.sendData(this.id, EMPTY, true)
    this.#ended()
  }

  #ended(): void {
    this.#localEnded = true
    if (this.readableEnded) this.destroy()
  }
}

function emitClose(stream: H2Stream): void {
  stream.emit('close')
}
