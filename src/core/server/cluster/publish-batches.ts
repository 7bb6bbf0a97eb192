// When the publish connections of one cluster transport write what they gathered (resp-connection.ts): the
// end of the tick while idle, at most once per MIN_FLUSH_INTERVAL_MS while busy, and all of a transport's
// connections (one per Redis Cluster master) together, so that what they send reaches the other instances'
// subscriber connections at about the same moment: one wake-up there instead of one per shard. A receiving
// instance pays per wake-up more than per envelope, so a few more envelopes per batch save more CPU than the
// wait costs: BENCHMARKS.md finding 8a (at ~10,000 envelopes/s, a write per tick and per connection cost
// ~1.5–1.7 × a plain relay's CPU per envelope over two instances, batches ~1.1–1.2 ×). The wait is at most
// MIN_FLUSH_INTERVAL_MS of latency between instances, and only while busy.

/** What a batch writes: a connection with publishes encoded but not yet sent. */
export interface Flushable {
  flush(): void
}

const MIN_FLUSH_INTERVAL_MS = 1

export class PublishBatches {
  #due: Flushable[] = []
  #timer: NodeJS.Timeout | undefined
  #immediate: NodeJS.Immediate | undefined
  #lastFlushAt = -Infinity
  #closed = false

  /** `connection` has something to send: it is flushed with the next batch. Once per batch and connection. */
  add(connection: Flushable): void {
    if (this.#closed) return
    this.#due.push(connection)
    if (this.#timer !== undefined || this.#immediate !== undefined) return
    const wait = this.#lastFlushAt + MIN_FLUSH_INTERVAL_MS - performance.now()
    if (wait <= 0) this.#immediate = setImmediate(this.#run)
    else this.#timer = setTimeout(this.#runWhenDue, wait)
  }

  /** Idempotent; no timer remains (what was due is not sent: its connections are closing too). */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    clearImmediate(this.#immediate)
    this.#due = []
  }

  /**
   * A timer may fire before its delay has passed on performance.now()'s clock (libuv measures it from the
   * event loop's cached time, which can lag): then it waits for the rest.
   */
  readonly #runWhenDue = (): void => {
    const wait = this.#lastFlushAt + MIN_FLUSH_INTERVAL_MS - performance.now()
    if (wait > 0) this.#timer = setTimeout(this.#runWhenDue, wait)
    else this.#run()
  }

  readonly #run = (): void => {
    this.#timer = undefined
    this.#immediate = undefined
    this.#lastFlushAt = performance.now()
    const due = this.#due
    this.#due = []
    for (const connection of due) connection.flush()
  }
}
