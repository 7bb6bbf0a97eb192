// HTTP/2 framing (RFC 9113 §4 and §6): frame types, flags, error codes, settings identifiers, and the
// 9-byte frame header. Frames we send are built whole into one buffer, so a frame is one socket write.

export const FRAME_HEADER_BYTES = 9
export const CONNECTION_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export enum FrameType {
  DATA = 0x0,
  HEADERS = 0x1,
  PRIORITY = 0x2,
  RST_STREAM = 0x3,
  SETTINGS = 0x4,
  PUSH_PROMISE = 0x5,
  PING = 0x6,
  GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8,
  CONTINUATION = 0x9,
}

export enum Flag {
  END_STREAM = 0x1,
  ACK = 0x1,
  END_HEADERS = 0x4,
  PADDED = 0x8,
  PRIORITY = 0x20,
}

/** Error codes (RFC 9113 §7); the values node:http2's constants.NGHTTP2_* name too. */
export enum ErrorCode {
  NO_ERROR = 0x0,
  PROTOCOL_ERROR = 0x1,
  INTERNAL_ERROR = 0x2,
  FLOW_CONTROL_ERROR = 0x3,
  SETTINGS_TIMEOUT = 0x4,
  STREAM_CLOSED = 0x5,
  FRAME_SIZE_ERROR = 0x6,
  REFUSED_STREAM = 0x7,
  CANCEL = 0x8,
  COMPRESSION_ERROR = 0x9,
  CONNECT_ERROR = 0xa,
  ENHANCE_YOUR_CALM = 0xb,
  INADEQUATE_SECURITY = 0xc,
  HTTP_1_1_REQUIRED = 0xd,
}

export enum Setting {
  HEADER_TABLE_SIZE = 0x1,
  ENABLE_PUSH = 0x2,
  MAX_CONCURRENT_STREAMS = 0x3,
  INITIAL_WINDOW_SIZE = 0x4,
  MAX_FRAME_SIZE = 0x5,
  MAX_HEADER_LIST_SIZE = 0x6,
}

export const DEFAULT_WINDOW = 65_535
export const DEFAULT_MAX_FRAME_SIZE = 16_384
export const MAX_WINDOW = 2 ** 31 - 1
export const MAX_FRAME_SIZE_LIMIT = 2 ** 24 - 1

/** A frame as one buffer: header, then `payloadBytes` bytes for the caller to fill from offset 9. */
export function frame(type: FrameType, flags: number, streamId: number, payloadBytes: number): Buffer {
  const buffer = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadBytes)
  buffer.writeUIntBE(payloadBytes, 0, 3)
  buffer[3] = type
  buffer[4] = flags
  buffer.writeUInt32BE(streamId, 5)
  return buffer
}

/** A frame whose payload is `payload` (copied after the header). */
export function frameWith(type: FrameType, flags: number, streamId: number, payload: Uint8Array): Buffer {
  const buffer = frame(type, flags, streamId, payload.length)
  buffer.set(payload, FRAME_HEADER_BYTES)
  return buffer
}

export function settingsFrame(settings: readonly (readonly [Setting, number])[]): Buffer {
  const buffer = frame(FrameType.SETTINGS, 0, 0, 6 * settings.length)
  settings.forEach(([id, value], i) => {
    buffer.writeUInt16BE(id, FRAME_HEADER_BYTES + 6 * i)
    buffer.writeUInt32BE(value, FRAME_HEADER_BYTES + 6 * i + 2)
  })
  return buffer
}

export const SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0, 0)

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const buffer = frame(FrameType.WINDOW_UPDATE, 0, streamId, 4)
  buffer.writeUInt32BE(increment, FRAME_HEADER_BYTES)
  return buffer
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const buffer = frame(FrameType.RST_STREAM, 0, streamId, 4)
  buffer.writeUInt32BE(code, FRAME_HEADER_BYTES)
  return buffer
}

export function goawayFrame(lastStreamId: number, code: number, debug = ''): Buffer {
  const text = Buffer.from(debug, 'utf8')
  const buffer = frame(FrameType.GOAWAY, 0, 0, 8 + text.length)
  buffer.writeUInt32BE(lastStreamId & MAX_WINDOW, FRAME_HEADER_BYTES)
  buffer.writeUInt32BE(code, FRAME_HEADER_BYTES + 4)
  buffer.set(text, FRAME_HEADER_BYTES + 8)
  return buffer
}

export function pingFrame(payload: Uint8Array, ack: boolean): Buffer {
  return frameWith(FrameType.PING, ack ? Flag.ACK : 0, 0, payload)
}

/** HEADERS (+ CONTINUATION when the block exceeds the peer's frame size) as one buffer. */
export function headersFrames(streamId: number, block: Uint8Array, endStream: boolean, maxFrameSize: number): Buffer {
  if (block.length <= maxFrameSize) {
    return frameWith(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId, block)
  }
  const parts: Buffer[] = []
  for (let offset = 0; offset < block.length; offset += maxFrameSize) {
    const chunk = block.subarray(offset, offset + maxFrameSize)
    const last = offset + maxFrameSize >= block.length
    const type = offset === 0 ? FrameType.HEADERS : FrameType.CONTINUATION
    const flags = (last ? Flag.END_HEADERS : 0) | (offset === 0 && endStream ? Flag.END_STREAM : 0)
    parts.push(frameWith(type, flags, streamId, chunk))
  }
  return Buffer.concat(parts)
}

/** A DATA frame carrying `data` (copied: one write per frame). */
export function dataFrame(streamId: number, data: Uint8Array, endStream: boolean): Buffer {
  return frameWith(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, data)
}
