// The node:http2 transport's framing and the relay's envelope scan, below any server: messages split
// across chunks, grpc-timeout units, the statuses of malformed bodies, and the scan agreeing with the
// generated decoder on every input.
import { status } from '@grpc/grpc-js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Envelope } from '../../src/gen/signaling/signaling.js'
import { scanEnvelope } from '../../src/core/server/envelope-scan.js'
import { frameMessage, MessageDecoder, parseGrpcTimeout, unaryMessage } from '../../src/core/server/h2/grpc-wire.js'
import { gzipSync } from 'node:zlib'

const bytes = (...b: number[]) => Buffer.from(b)

describe('MessageDecoder', () => {
  it('reassembles messages split anywhere across chunks, and several in one chunk', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(2000), { maxLength: 6 }), (messages, cuts) => {
        const stream = Buffer.concat(messages.map((m) => frameMessage(m)))
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
        const decoder = new MessageDecoder(1 << 20, undefined)
        const out: Buffer[] = []
        let at = 0
        for (const point of [...points, stream.length]) {
          const got = decoder.push(stream.subarray(at, point))
          if (!Array.isArray(got)) throw new Error(got.details)
          out.push(...got.map((b) => Buffer.from(b)))
          at = point
        }
        expect(out.map((b) => b.toString('hex'))).toEqual(messages.map((m) => Buffer.from(m).toString('hex')))
        expect(decoder.leftover).toBe(0)
      }),
    )
  })

  it('refuses a declared length over the limit before buffering it', () => {
    const decoder = new MessageDecoder(100, undefined)
    expect(decoder.push(bytes(0, 0, 0, 0, 101))).toMatchObject({ code: status.RESOURCE_EXHAUSTED })
  })

  it('inflates gzip messages and refuses one that inflates past the limit', () => {
    const small = gzipSync(Buffer.from('hello'))
    const frame = Buffer.concat([bytes(1, 0, 0, 0, small.length), small])
    expect((new MessageDecoder(100, 'gzip').push(frame) as Buffer[]).map(String)).toEqual(['hello'])
    const bomb = gzipSync(Buffer.alloc(1 << 20))
    expect(new MessageDecoder(1000, 'gzip').push(Buffer.concat([bytes(1, 0, 0, (bomb.length >> 8) & 0xff, bomb.length & 0xff), bomb]))).toMatchObject({ code: status.RESOURCE_EXHAUSTED })
    expect(new MessageDecoder(1000, 'br').push(frame)).toMatchObject({ code: status.UNIMPLEMENTED })
  })
})

describe('unaryMessage', () => {
  it('gives the one message with its prefix, or the status grpc-js gives', () => {
    const frame = frameMessage(bytes(1, 2, 3))
    expect(unaryMessage(frame, 100, undefined).frame).toBe(frame)
    expect(unaryMessage(bytes(0, 0, 0), 100, undefined).refusal?.code).toBe(status.UNIMPLEMENTED)
    expect(unaryMessage(frame.subarray(0, 6), 100, undefined).refusal?.code).toBe(status.UNIMPLEMENTED)
    expect(unaryMessage(Buffer.concat([frame, frame]), 100, undefined).refusal?.code).toBe(status.UNIMPLEMENTED)
    expect(unaryMessage(bytes(0, 0xff, 0xff, 0xff, 0xff), 100, undefined).refusal?.code).toBe(status.RESOURCE_EXHAUSTED)
    expect(unaryMessage(Buffer.concat([bytes(1, 0, 0, 0, 3), bytes(1, 2, 3)]), 100, 'gzip').refusal?.code).toBe(status.INTERNAL)
  })
})

describe('parseGrpcTimeout', () => {
  it('reads every unit, and NaN for anything else', () => {
    expect(parseGrpcTimeout(undefined)).toBeUndefined()
    expect(parseGrpcTimeout('2H')).toBe(7_200_000)
    expect(parseGrpcTimeout('3M')).toBe(180_000)
    expect(parseGrpcTimeout('5S')).toBe(5000)
    expect(parseGrpcTimeout('300m')).toBe(300)
    expect(parseGrpcTimeout('1500u')).toBe(1.5)
    expect(parseGrpcTimeout('2000000n')).toBe(2)
    for (const bad of ['soon', '123456789S', '5s', '', '-1m']) expect(parseGrpcTimeout(bad), bad).toBeNaN()
  })
})

describe('scanEnvelope', () => {
  const key = fc.uint8Array({ minLength: 32, maxLength: 32 })
  const anyKey = fc.oneof(key, fc.uint8Array({ maxLength: 40 }))
  const envelope = fc
    .record({ sender: anyKey, recipient: anyKey, contents: fc.option(fc.record({ body: fc.uint8Array({ maxLength: 20_000 }), nonce: fc.uint8Array({ maxLength: 24 }) })) })
    .map(({ sender, recipient, contents }) => Buffer.from(Envelope.encode(Envelope.create({ sender, recipient, contents: contents ?? undefined })).finish()))
  const mangled = envelope.chain((b) => fc.tuple(fc.nat(Math.max(0, b.length - 1)), fc.integer({ min: 0, max: 255 }), fc.nat(b.length)).map(([at, v, cut]) => {
    const copy = Buffer.from(b)
    if (copy.length) copy[at] = v
    return copy.subarray(0, Math.max(cut, at + 1))
  }))

  it('finds the recipient exactly where the generated decoder does, and refuses exactly what it refuses', () => {
    fc.assert(
      fc.property(fc.oneof(envelope, mangled, fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b))), fc.nat(7), (body, pad) => {
        // Somewhere inside a larger buffer, as a frame inside a read buffer is.
        const buffer = Buffer.concat([Buffer.alloc(pad, 0xee), body, Buffer.alloc(3, 0xee)])
        const scan = scanEnvelope(buffer, pad, pad + body.length)
        let decoded: Envelope | undefined
        try {
          decoded = Envelope.decode(body)
        } catch {
          decoded = undefined
        }
        if (!decoded || decoded.sender.length !== 32 || decoded.recipient.length !== 32) {
          expect(typeof scan).toBe('string')
          return
        }
        expect(typeof scan).toBe('number')
        expect(buffer.subarray(scan as number, (scan as number) + 32).toString('hex')).toBe(Buffer.from(decoded.recipient).toString('hex'))
      }),
      { numRuns: 2000 },
    )
  })
})
