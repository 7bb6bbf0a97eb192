// The publishes one Redis Cluster master has not answered yet, in the order they were sent (Redis answers a
// connection's commands in order): what redis-sharded.ts sends again when the answer is MOVED or ASK (the
// slot moved: a planned failover, a resharding) or when the connection is lost before the answer. The hot
// path only appends three references and drops them again on the answer; objects are made only for the
// publishes that come back for another try.

/** A publish to send again: the same bytes and the same sequence number, so that receivers deliver it once. */
export interface PublishToRetry {
  recipient: Uint8Array
  envelope: Uint8Array
  sequence: number
}

/** Entries answered before the arrays are compacted. */
const COMPACT_AT = 1024

export class UnansweredPublishes {
  #recipients: Uint8Array[] = []
  #envelopes: Uint8Array[] = []
  #sequences: number[] = []
  #head = 0

  get length(): number {
    return this.#recipients.length - this.#head
  }

  push(recipient: Uint8Array, envelope: Uint8Array, sequence: number): void {
    this.#recipients.push(recipient)
    this.#envelopes.push(envelope)
    this.#sequences.push(sequence)
  }

  /** The oldest `count` were answered: forgotten. */
  answered(count: number): void {
    this.#advance(Math.min(count, this.length))
  }

  /** The oldest `count` (fewer if fewer wait), removed, to be sent again. */
  take(count: number): PublishToRetry[] {
    const n = Math.min(count, this.length)
    const taken: PublishToRetry[] = []
    for (let i = this.#head; i < this.#head + n; i++) taken.push({ recipient: this.#recipients[i]!, envelope: this.#envelopes[i]!, sequence: this.#sequences[i]! })
    this.#advance(n)
    return taken
  }

  #advance(n: number): void {
    this.#head += n
    if (this.#head === this.#recipients.length) {
      this.#recipients = []
      this.#envelopes = []
      this.#sequences = []
      this.#head = 0
    } else if (this.#head >= COMPACT_AT) {
      this.#recipients = this.#recipients.slice(this.#head)
      this.#envelopes = this.#envelopes.slice(this.#head)
      this.#sequences = this.#sequences.slice(this.#head)
      this.#head = 0
    }
  }
}
