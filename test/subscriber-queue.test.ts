// The per-subscriber queue's policy, by content: while the reader pushes back, the OLDEST frames are
// dropped and the newest kept (a drop-newest mutant fails here), within the frame and the byte limit, and
// what is kept reaches the reader in order once it drains.
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { SubscriberQueue, type FrameSink } from '../src/core/server/subscriber-queue.js'

class StuckSink extends EventEmitter implements FrameSink {
  readonly written: string[] = []
  writableNeedDrain = true
  write(frame: Buffer): boolean {
    this.written.push(String(frame))
    return !this.writableNeedDrain
  }
  drain(): void {
    this.writableNeedDrain = false
    this.emit('drain')
  }
}

function queue(limits: { maxFrames: number; maxBytes: number }) {
  const sink = new StuckSink()
  const counts = { delivered: 0, dropped: 0 }
  const q = new SubscriberQueue(sink, limits, { delivered: () => void counts.delivered++, dropped: (n) => void (counts.dropped += n) })
  return { sink, counts, q }
}

describe('SubscriberQueue', () => {
  it('drops the oldest when full: the newest maxFrames remain and reach the reader in order', () => {
    const { sink, counts, q } = queue({ maxFrames: 3, maxBytes: 1 << 20 })
    for (let i = 0; i < 10; i++) q.push(Buffer.from(`frame ${i}`))
    expect(sink.written).toEqual([])
    expect(counts).toEqual({ delivered: 0, dropped: 7 })
    sink.drain()
    expect(sink.written).toEqual(['frame 7', 'frame 8', 'frame 9'])
    expect(counts).toEqual({ delivered: 3, dropped: 7 })
  })

  it('drops the oldest past the byte limit too, keeping the newest that fit', () => {
    const { sink, counts, q } = queue({ maxFrames: 100, maxBytes: 10 })
    for (const text of ['aaaa', 'bbbb', 'cccc', 'dd']) q.push(Buffer.from(text))
    // 4+4+4+2 = 14 > 10: "aaaa" goes; 10 bytes remain.
    expect(q.bytes).toBe(10)
    sink.drain()
    expect(sink.written).toEqual(['bbbb', 'cccc', 'dd'])
    expect(counts.dropped).toBe(1)
  })

  it('writes straight through while the reader keeps up, and counts frames left at close as dropped', () => {
    const { sink, counts, q } = queue({ maxFrames: 2, maxBytes: 1 << 20 })
    sink.writableNeedDrain = false
    q.push(Buffer.from('one'))
    q.push(Buffer.from('two'))
    expect(sink.written).toEqual(['one', 'two'])
    sink.writableNeedDrain = true
    q.push(Buffer.from('three'))
    q.close()
    expect(counts).toEqual({ delivered: 2, dropped: 1 })
    q.push(Buffer.from('after close'))
    sink.drain()
    expect(sink.written).toEqual(['one', 'two'])
  })
})
