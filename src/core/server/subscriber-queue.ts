// A bounded send queue per subscriber stream (the DERP pattern): while the stream pushes back (write()
// returned false) frames wait here; past the count or byte limit the OLDEST frame is dropped and counted.
// So a reader that never reads costs at most the limits, and never slows a publisher or other readers.

/** What the queue needs from a server stream (transport.ts SubscriberStream). */
export interface FrameSink {
  write(frame: Buffer): boolean
  readonly writableNeedDrain: boolean
  once(event: 'drain', listener: () => void): unknown
  off(event: 'drain', listener: () => void): unknown
}

export interface QueueLimits {
  maxFrames: number
  maxBytes: number
}

export type QueueDropReason = 'queue_full' | 'subscriber_gone'

export interface QueueCounters {
  /** One frame written to the stream; `acceptedAt` is when its publish was accepted (performance.now()). */
  delivered(acceptedAt: number): void
  dropped(count: number, reason: QueueDropReason): void
}

export class SubscriberQueue {
  // A deque as array + head index: shift() on a 1024-entry array per frame would be quadratic.
  #frames: Buffer[] = []
  /** When each frame's publish was accepted, parallel to #frames (for the delivery latency histogram). */
  #acceptedAt: number[] = []
  #head = 0
  #bytes = 0
  #waiting = false
  #closed = false
  readonly #onDrain = (): void => {
    this.#waiting = false
    this.#flush()
  }

  constructor(
    private readonly sink: FrameSink,
    private readonly limits: QueueLimits,
    private readonly counters: QueueCounters,
  ) {}

  get length(): number {
    return this.#frames.length - this.#head
  }

  get bytes(): number {
    return this.#bytes
  }

  push(frame: Buffer, acceptedAt = performance.now()): void {
    if (this.#closed) return
    // The common case, a reader keeping up: straight to the stream, no array touched.
    if (this.length === 0 && !this.#waiting && !this.sink.writableNeedDrain) {
      this.sink.write(frame)
      this.counters.delivered(acceptedAt)
      return
    }
    this.#frames.push(frame)
    this.#acceptedAt.push(acceptedAt)
    this.#bytes += frame.length
    this.#flush()
    let dropped = 0
    while (this.length > 0 && (this.length > this.limits.maxFrames || this.#bytes > this.limits.maxBytes)) {
      this.#shift()
      dropped++
    }
    if (dropped > 0) this.counters.dropped(dropped, 'queue_full')
  }

  /** Stops the queue; frames still waiting count as dropped, since they never reached the reader. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.sink.off('drain', this.#onDrain)
    const left = this.length
    this.#frames = []
    this.#acceptedAt = []
    this.#head = 0
    this.#bytes = 0
    if (left > 0) this.counters.dropped(left, 'subscriber_gone')
  }

  #flush(): void {
    while (!this.#closed && !this.#waiting && this.length > 0) {
      if (this.sink.writableNeedDrain) {
        this.#waiting = true
        this.sink.once('drain', this.#onDrain)
        return
      }
      const acceptedAt = this.#acceptedAt[this.#head]!
      this.sink.write(this.#shift())
      this.counters.delivered(acceptedAt)
    }
  }

  #shift(): Buffer {
    const frame = this.#frames[this.#head]!
    this.#frames[this.#head++] = EMPTY
    this.#bytes -= frame.length
    if (this.#head === this.#frames.length) {
      this.#frames = []
      this.#acceptedAt = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head)
      this.#acceptedAt = this.#acceptedAt.slice(this.#head)
      this.#head = 0
    }
    return frame
  }
}

const EMPTY = Buffer.alloc(0)
