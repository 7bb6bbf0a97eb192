// Frames out of a connection's socket reads (RFC 9113 §3.4, §4.1): first the client preface (the magic
// string and a SETTINGS frame), then frames however the reads split them. Only an incomplete frame's bytes
// are kept between reads, copied out of the read they came in; complete frames are handed on as views of it.
import { CONNECTION_PREFACE, ErrorCode, Flag, FRAME_HEADER_BYTES, FrameType, MAX_WINDOW } from './frame.js'

/** A connection error (RFC 9113 §5.4.1): GOAWAY with this code, then the connection closes. */
export class ConnectionError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/** One frame; returns false when the connection is gone and nothing more should be read. */
export type FrameHandler = (type: number, flags: number, streamId: number, payload: Buffer) => boolean

export class FrameReader {
  #pending: Buffer | undefined
  #prefaceDone = false
  #settingsSeen = false

  /** `maxFrameSize`: our SETTINGS_MAX_FRAME_SIZE; a longer frame is a FRAME_SIZE_ERROR. */
  constructor(private readonly maxFrameSize: number) {}

  /** Hands every complete frame in what arrived so far to `onFrame`. Throws ConnectionError. */
  push(chunk: Buffer, onFrame: FrameHandler): void {
    const buffer = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk
    this.#pending = undefined
    let pos = 0
    if (!this.#prefaceDone) {
      const have = Math.min(buffer.length, CONNECTION_PREFACE.length)
      if (buffer.compare(CONNECTION_PREFACE, 0, have, 0, have) !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'invalid connection preface')
      if (have < CONNECTION_PREFACE.length) {
        this.#pending = Buffer.from(buffer)
        return
      }
      this.#prefaceDone = true
      pos = CONNECTION_PREFACE.length
    }
    while (buffer.length - pos >= FRAME_HEADER_BYTES) {
      const length = buffer.readUIntBE(pos, 3)
      if (length > this.maxFrameSize) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes above our SETTINGS_MAX_FRAME_SIZE`)
      const type = buffer[pos + 3]!
      const flags = buffer[pos + 4]!
      // Decided on the header: a client whose first frame is no SETTINGS is not waited for.
      if (!this.#settingsSeen) {
        if (type !== FrameType.SETTINGS || flags & Flag.ACK) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the client preface must end with SETTINGS')
        this.#settingsSeen = true
      }
      const end = pos + FRAME_HEADER_BYTES + length
      if (end > buffer.length) break
      const streamId = buffer.readUInt32BE(pos + 5) & MAX_WINDOW
      const payload = buffer.subarray(pos + FRAME_HEADER_BYTES, end)
      pos = end
      if (!onFrame(type, flags, streamId, payload)) return
    }
    if (pos < buffer.length) this.#pending = Buffer.from(buffer.subarray(pos))
  }

  /** Forgets an incomplete frame (the connection is gone). */
  clear(): void {
    this.#pending = undefined
  }
}

/** A DATA or HEADERS payload without its padding (RFC 9113 §6.1). */
export function unpad(flags: number, payload: Buffer): Buffer {
  if (!(flags & Flag.PADDED)) return payload
  if (payload.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padded frame without its pad length')
  const padding = payload[0]!
  if (padding >= payload.length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding as long as the frame')
  return payload.subarray(1, payload.length - padding)
}
