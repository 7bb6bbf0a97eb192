// One HTTP/2 connection on our own server (RFC 9113), directly on a net.Socket or tls.TLSSocket: frames
// parsed from the socket's reads (a frame split across reads keeps only its own bytes), SETTINGS, PING,
// GOAWAY, flow control both ways, and streams handed to the gRPC layer as they open. Per connection it holds
// this object, the HPACK decoder's table and the open streams, nothing sized for traffic it does not have:
// that is what makes an idle peer cheap (issue 12; node:http2's session alone costs ~17 KiB).
// Its length (~430 lines) is one handler per frame type over the one connection state they share; reading
// frames (frame-reader.ts), HPACK and the streams (h2-stream.ts) live in their own files.
import { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders } from 'node:http2'
import type { Socket } from 'node:net'
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  dataFrame,
  FrameType,
  goawayFrame,
  headersFrames,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW,
  pingFrame,
  rstStreamFrame,
  Setting,
  SETTINGS_ACK,
  settingsFrame,
  windowUpdateFrame,
} from './frame.js'
import type { GuardedSession } from '../connection-guard.js'
import { ConnectionError, FrameReader, unpad, type FrameHandler } from './frame-reader.js'
import { CompressionError, HpackDecoder } from './hpack-decoder.js'
import { H2Stream, type StreamOwner } from './h2-stream.js'
import { TokenBucket } from '../token-bucket.js'

export interface ConnectionSettings {
  maxConcurrentStreams: number
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on a stream before we update its window. */
  initialWindowSize: number
  maxHeaderListSize: number
  /** Our SETTINGS_HEADER_TABLE_SIZE: the bound of the client's dynamic table in our decoder. */
  headerTableSize: number
}

export type StreamHandler = (stream: H2Stream, headers: IncomingHttpHeaders, connection: H2Connection) => void

/** Unsent bytes in the socket above which response data waits in its stream (and writableLength says so). */
const SOCKET_BACKLOG_BYTES = 64 * 1024
/**
 * Unsent bytes above which we stop reading the client until it reads what we sent: a client that sends
 * requests, PINGs or SETTINGS without reading the answers (a control-frame flood) is held back by TCP, not
 * by our memory. Above SOCKET_BACKLOG_BYTES, so response data never trips it by itself.
 */
const READ_PAUSE_BYTES = 256 * 1024
/** After a connection error's GOAWAY, how long the client may take to close before the socket is cut. */
const FAIL_LINGER_MS = 1000
/** A header block (HEADERS + CONTINUATION) larger than this ends the connection before it is decoded. */
const HEADER_BLOCK_LIMIT_FACTOR = 2
/**
 * Streams a client may cancel (RST_STREAM on an open stream) or have refused, at once and then per second:
 * beyond that the connection ends with ENHANCE_YOUR_CALM. Opening and cancelling streams in a loop ("rapid
 * reset", CVE-2023-44487) makes a server start and tear down calls without bound while no limit on open
 * streams is ever reached; nghttp2 (and so node:http2) holds such a bucket too. A client that is not
 * attacking cancels a call now and then (a deadline, a peer that restarts).
 */
export const STREAM_RESET_BURST = 1000
export const STREAM_RESETS_PER_SECOND = 100
const PING_PAYLOAD = Buffer.from('cunicuts')
const EMPTY = Buffer.alloc(0)

interface PendingHeaders {
  streamId: number
  endStream: boolean
  parts: Buffer[]
  size: number
}

export class H2Connection extends EventEmitter implements StreamOwner, GuardedSession {
  destroyed = false
  closed = false
  connectionWindow = DEFAULT_WINDOW
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE
  readonly #streams = new Map<number, H2Stream>()
  #decoder: HpackDecoder | undefined
  readonly #reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE)
  #settingsReceived = false
  #continuation: PendingHeaders | undefined
  #lastStreamId = 0
  /** The last stream id our GOAWAY promised to serve; streams above it are ignored. */
  #goawayLastStreamId: number | undefined
  #peerInitialWindow = DEFAULT_WINDOW
  /** Connection-level: what the client may still send, and what it sent since our last WINDOW_UPDATE. */
  #receiveWindow: number
  #unacknowledged = 0
  #blocked: Set<H2Stream> | undefined
  /** Made at the first cancelled or refused stream: an idle peer never pays for it. */
  #resets: TokenBucket | undefined
  #pingTimer: NodeJS.Timeout | undefined
  readonly #onData = (chunk: Buffer): void => this.#receive(chunk)
  readonly #onFrame: FrameHandler = (type, flags, streamId, payload) => {
    this.#frame(type, flags, streamId, payload)
    return !this.destroyed
  }
  readonly #onDrain = (): void => {
    if (this.socket.isPaused() && !this.destroyed) this.socket.resume()
    this.#flushBlocked()
  }
  readonly #onClose = (): void => this.#teardown()

  constructor(
    readonly socket: Socket,
    /** The connection's name, "ip:port" (computed once: every call reads it). */
    readonly peer: string,
    private readonly settings: ConnectionSettings,
    private readonly onStream: StreamHandler,
  ) {
    super()
    this.#receiveWindow = Math.max(DEFAULT_WINDOW, settings.initialWindowSize)
    socket.on('data', this.#onData)
    socket.on('drain', this.#onDrain)
    socket.on('close', this.#onClose)
    socket.on('error', ignore) // a reset by the client ends the connection: 'close' follows
    const preface = settingsFrame([
      [Setting.MAX_CONCURRENT_STREAMS, settings.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, settings.initialWindowSize],
      [Setting.MAX_HEADER_LIST_SIZE, settings.maxHeaderListSize],
      [Setting.HEADER_TABLE_SIZE, settings.headerTableSize],
    ])
    const raise = this.#receiveWindow - DEFAULT_WINDOW
    socket.write(raise > 0 ? Buffer.concat([preface, windowUpdateFrame(0, raise)]) : preface)
  }

  get socketBusy(): boolean {
    return this.socket.writableLength >= SOCKET_BACKLOG_BYTES
  }

  /** Open streams. */
  get streamCount(): number {
    return this.#streams.size
  }

  /**
   * GOAWAY: no streams above `lastStreamId` (default: the last one we saw) will be served; the connection
   * stays until the client closes it (or close()/destroy()).
   */
  goaway(code: number = ErrorCode.NO_ERROR, lastStreamId: number = this.#lastStreamId): void {
    if (this.destroyed) return
    this.#goawayLastStreamId = Math.min(this.#goawayLastStreamId ?? MAX_WINDOW, lastStreamId)
    this.socket.write(goawayFrame(lastStreamId, code))
  }

  /** Graceful: GOAWAY unless sent, no new streams; the socket ends once the open streams ended. */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.#goawayLastStreamId === undefined) this.goaway()
    if (this.#streams.size === 0) this.socket.end()
  }

  destroy(): void {
    if (this.destroyed) return
    this.socket.destroy()
    this.#teardown()
  }

  /** Keepalive: a PING the client must answer within `timeoutMs`, else the connection is cut. */
  ping(timeoutMs: number): void {
    if (this.destroyed || this.#pingTimer) return
    this.#pingTimer = setTimeout(() => this.destroy(), timeoutMs).unref()
    this.socket.write(pingFrame(PING_PAYLOAD, false))
  }

  // StreamOwner: what streams send.
  sendHeaders(streamId: number, block: Buffer, endStream: boolean): void {
    if (!this.destroyed) this.socket.write(headersFrames(streamId, block, endStream, this.maxFrameSize))
  }

  sendData(streamId: number, data: Buffer, endStream: boolean): void {
    if (this.destroyed) return
    const size = this.maxFrameSize
    if (data.length <= size) return void this.socket.write(dataFrame(streamId, data, endStream))
    for (let offset = 0; offset < data.length; offset += size) {
      const last = offset + size >= data.length
      this.socket.write(dataFrame(streamId, data.subarray(offset, offset + size), endStream && last))
    }
  }

  sendReset(streamId: number, code: number): void {
    if (!this.destroyed) this.socket.write(rstStreamFrame(streamId, code))
  }

  blocked(stream: H2Stream): void {
    ;(this.#blocked ??= new Set()).add(stream)
  }

  streamClosed(stream: H2Stream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id)
    this.#blocked?.delete(stream)
    if (this.closed && this.#streams.size === 0 && !this.destroyed) this.socket.end()
  }

  #receive(chunk: Buffer): void {
    if (this.destroyed) return
    // One writev for everything this read makes us answer (SETTINGS ACK, responses, WINDOW_UPDATEs).
    this.socket.cork()
    try {
      this.#reader.push(chunk, this.#onFrame)
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err
      this.#fail(err.code, err.message)
    } finally {
      if (!this.socket.destroyed) {
        this.socket.uncork()
        if (this.socket.writableLength > READ_PAUSE_BYTES) this.socket.pause()
      }
    }
  }

  #frame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.#continuation && type !== FrameType.CONTINUATION) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'expected CONTINUATION')
    switch (type) {
      case FrameType.DATA:
        return this.#data(flags, streamId, payload)
      case FrameType.HEADERS:
        return this.#headersFrame(flags, streamId, payload)
      case FrameType.CONTINUATION:
        return this.#continuationFrame(flags, streamId, payload)
      case FrameType.PRIORITY:
        if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0')
        if (payload.length !== 5) this.#resetStream(streamId, ErrorCode.FRAME_SIZE_ERROR)
        return
      case FrameType.RST_STREAM:
        return this.#rstStream(streamId, payload)
      case FrameType.SETTINGS:
        return this.#settingsFrame(flags, streamId, payload)
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client')
      case FrameType.PING:
        return this.#pingFrame(flags, streamId, payload)
      case FrameType.GOAWAY:
        if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream')
        if (payload.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 bytes')
        // The client goes away: it opens no more streams and closes the connection once its calls ended.
        if (this.#streams.size === 0) this.socket.end()
        return
      case FrameType.WINDOW_UPDATE:
        return this.#windowUpdate(streamId, payload)
      default:
        return // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  #data(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0')
    const flowed = payload.length
    this.#receiveWindow -= flowed
    if (this.#receiveWindow < 0) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window')
    this.#unacknowledged += flowed
    // Data is consumed as it arrives (a request is bounded by maxReceiveBytes): the window goes back at half.
    if (this.#unacknowledged * 2 >= this.settings.initialWindowSize) {
      this.socket.write(windowUpdateFrame(0, this.#unacknowledged))
      this.#receiveWindow += this.#unacknowledged
      this.#unacknowledged = 0
    }
    const data = unpad(flags, payload)
    const stream = this.#streams.get(streamId)
    if (!stream) {
      if (streamId > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`)
      return // a stream we already closed or reset: its late data is dropped
    }
    if (stream.readableEnded) return this.#resetStream(streamId, ErrorCode.STREAM_CLOSED)
    stream.receiveWindow -= flowed
    if (stream.receiveWindow < 0) return this.#resetStream(streamId, ErrorCode.FLOW_CONTROL_ERROR)
    const endStream = (flags & Flag.END_STREAM) !== 0
    stream.unacknowledged += flowed
    if (!endStream && stream.unacknowledged * 2 >= this.settings.initialWindowSize) {
      this.socket.write(windowUpdateFrame(streamId, stream.unacknowledged))
      stream.receiveWindow += stream.unacknowledged
      stream.unacknowledged = 0
    }
    stream.receive(data, endStream)
  }

  #headersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0')
    let block = unpad(flags, payload)
    if (flags & Flag.PRIORITY) {
      if (block.length < 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS priority beyond the frame')
      block = block.subarray(5)
    }
    const endStream = (flags & Flag.END_STREAM) !== 0
    if (flags & Flag.END_HEADERS) return this.#headerBlock(streamId, block, endStream)
    this.#continuation = { streamId, endStream, parts: [Buffer.from(block)], size: block.length }
  }

  #continuationFrame(flags: number, streamId: number, payload: Buffer): void {
    const pending = this.#continuation
    if (!pending || pending.streamId !== streamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without HEADERS')
    pending.size += payload.length
    if (pending.size > HEADER_BLOCK_LIMIT_FACTOR * this.settings.maxHeaderListSize) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large')
    }
    pending.parts.push(Buffer.from(payload))
    if (!(flags & Flag.END_HEADERS)) return
    this.#continuation = undefined
    this.#headerBlock(streamId, Buffer.concat(pending.parts), pending.endStream)
  }

  #headerBlock(streamId: number, block: Buffer, endStream: boolean): void {
    let decoded
    try {
      decoded = (this.#decoder ??= new HpackDecoder(this.settings.headerTableSize)).decode(block)
    } catch (err) {
      if (err instanceof CompressionError) throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, err.message)
      throw err
    }
    const existing = this.#streams.get(streamId)
    if (existing) {
      // Trailers from the client: they must end its half.
      if (!endStream) return this.#resetStream(streamId, ErrorCode.PROTOCOL_ERROR)
      return existing.receive(EMPTY, true)
    }
    if (streamId % 2 === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `client stream id ${streamId} is even`)
    if (streamId <= this.#lastStreamId) return // a stream that already ended: nothing to open
    this.#lastStreamId = streamId
    if (this.#goawayLastStreamId !== undefined && streamId > this.#goawayLastStreamId) return
    if (this.#streams.size >= this.settings.maxConcurrentStreams) {
      this.#countReset()
      return this.#resetStream(streamId, ErrorCode.REFUSED_STREAM)
    }
    if (decoded.listSize > this.settings.maxHeaderListSize) return this.#resetStream(streamId, ErrorCode.ENHANCE_YOUR_CALM)
    if (decoded.malformed) return this.#resetStream(streamId, ErrorCode.PROTOCOL_ERROR)
    const stream = new H2Stream(streamId, this, this.#peerInitialWindow, this.settings.initialWindowSize)
    this.#streams.set(streamId, stream)
    this.emit('stream', stream, decoded.headers)
    this.onStream(stream, decoded.headers, this)
    if (endStream) stream.receive(EMPTY, true)
  }

  #rstStream(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0')
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM not 4 bytes')
    if (streamId > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`)
    const stream = this.#streams.get(streamId)
    if (!stream) return
    this.#countReset()
    stream.reset(payload.readUInt32BE(0))
  }

  /** One more stream the client cancelled or we refused; too many too fast ends the connection. */
  #countReset(): void {
    this.#resets ??= new TokenBucket(STREAM_RESETS_PER_SECOND, STREAM_RESET_BURST)
    if (!this.#resets.tryTake()) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many streams cancelled or refused (rapid reset)')
  }

  #settingsFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream')
    if (flags & Flag.ACK) {
      if (payload.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload')
      return
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS not a multiple of 6 bytes')
    for (let pos = 0; pos < payload.length; pos += 6) {
      const id = payload.readUInt16BE(pos)
      const value = payload.readUInt32BE(pos + 2)
      switch (id) {
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH not 0 or 1')
          break
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1')
          const delta = value - this.#peerInitialWindow
          this.#peerInitialWindow = value
          for (const stream of this.#streams.values()) {
            stream.sendWindow += delta
            if (stream.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1')
          }
          break
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range')
          this.maxFrameSize = value
          break
        default:
          // HEADER_TABLE_SIZE: our encoder uses no dynamic table, so any size suits it; the rest are advisory.
          break
      }
    }
    this.socket.write(SETTINGS_ACK)
    if (!this.#settingsReceived) {
      this.#settingsReceived = true
      this.emit('remoteSettings')
    }
    this.#flushBlocked()
  }

  #pingFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream')
    if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING not 8 bytes')
    if (!(flags & Flag.ACK)) return void this.socket.write(pingFrame(payload, true))
    if (this.#pingTimer) clearTimeout(this.#pingTimer)
    this.#pingTimer = undefined
  }

  #windowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE not 4 bytes')
    const increment = payload.readUInt32BE(0) & MAX_WINDOW
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0')
      this.connectionWindow += increment
      if (this.connectionWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1')
      return this.#flushBlocked()
    }
    const stream = this.#streams.get(streamId)
    if (!stream) {
      if (streamId > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`)
      return
    }
    if (increment === 0) return this.#resetStream(streamId, ErrorCode.PROTOCOL_ERROR)
    stream.sendWindow += increment
    if (stream.sendWindow > MAX_WINDOW) return this.#resetStream(streamId, ErrorCode.FLOW_CONTROL_ERROR)
    this.#flushBlocked()
  }

  /** Streams waiting for window or socket, in the order they began to wait, while both allow. */
  #flushBlocked(): void {
    const blocked = this.#blocked
    if (!blocked || this.destroyed) return
    for (const stream of blocked) {
      if (this.socketBusy || this.connectionWindow <= 0) return
      if (stream.sendWindow <= 0) continue
      blocked.delete(stream)
      stream.flush()
    }
  }

  #resetStream(streamId: number, code: ErrorCode): void {
    const stream = this.#streams.get(streamId)
    if (stream) stream.close(code)
    else this.sendReset(streamId, code)
  }

  /** A connection error: GOAWAY with its code, every stream gone, the socket closed. */
  #fail(code: ErrorCode, message: string): void {
    if (this.destroyed) return
    this.socket.end(goawayFrame(this.#lastStreamId, code, message))
    for (const stream of [...this.#streams.values()]) stream.destroy()
    setTimeout(() => this.destroy(), FAIL_LINGER_MS).unref()
  }

  #teardown(): void {
    if (this.destroyed) return
    this.destroyed = this.closed = true
    if (this.#pingTimer) clearTimeout(this.#pingTimer)
    this.#pingTimer = undefined
    this.#reader.clear()
    this.#decoder = undefined
    for (const stream of [...this.#streams.values()]) stream.destroy()
    this.#blocked = undefined
    this.socket.off('data', this.#onData)
    this.emit('close')
  }
}

function ignore(): void {}
