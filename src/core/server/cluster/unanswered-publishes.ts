// The publishes one Redis Cluster master has not answered yet, in the order they were sent (Redis answers a
// connection's commands in order): what redis-sharded.ts sends again when the answer is MOVED or ASK (the
// slot moved: a resharding) or when the connection is lost before the answer. The hot path only appends
// four values (recipient, envelope, sequence number, no failure yet) and drops them on the answer; objects
// are made only for the publishes that come back for another try.

/** A publish to send again: the same bytes and the same sequence number, so that receivers deliver it once. */
export interface PublishToRetry {
  recipient: Uint8Array
  envelope: Uint8Array
  sequence: number
  /** When a try of it first failed (undefined while none has): its retry window runs from there. */
  failedAt: number | undefined
}

/** Entries answered before the arrays are compacted. */
const COMPACT_AT = 1024

export class UnansweredPublishes {
  #recipients: Uint8Array[] = []
  #envelopes: Uint8Array[] = []
  #sequences: number[] = []
  #failedAt: (number | undefined)[] = []
  #head = 0

  get length(): number {
    return this.#recipients.length - this.#head
  }

  push(recipient: Uint8Array, envelope: Uint8Array, sequence: number, failedAt?: number): void {
    this.#recipients.push(recipient)
    this.#envelopes.push(envelope)
    this.#sequences.push(sequence)
    this.#failedAt.push(failedAt)
  }

  /** The oldest `count` were answered: forgotten. */
  answered(count: number): void {
    this.#advance(Math.min(count, this.length))
  }

  /** The oldest `count` (fewer if fewer wait), removed, to be sent again. */
  take(count: number): PublishToRetry[] {
    const n = Math.min(count, this.length)
    const taken: PublishToRetry[] = []
    for (let i = this.#head; i < this.#head + n; i++) taken.push({ recipient: this.#recipients[i]!, envelope: this.#envelopes[i]!, sequence: this.#sequences[i]!, failedAt: this.#failedAt[i] })
    this.#advance(n)
    return taken
  }

  #advance(n: number): void {
    this.#head += n
    if (this.#head === this.#recipients.length) {
      this.#recipients = []
      this.#envelopes = []
      this.#sequences = []
      this.#failedAt = []
      this.#head = 0
    } else if (this.#head >= COMPACT_AT) {
      this.#recipients = this.#recipients.slice(this.#head)
      this.#envelopes = this.#envelopes.slice(this.#head)
      this.#sequences = this.#sequences.slice(this.#head)
      this.#failedAt = this.#failedAt.slice(this.#head)
      this.#head = 0
    }
  }
}
