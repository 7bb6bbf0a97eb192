// Which (origin instance, sequence number) pairs already arrived from the cluster, so that an envelope that
// reaches an instance twice (during a Redis Cluster failover a channel can be subscribed on two nodes of its
// shard for a moment) is delivered once. Per origin: the highest sequence seen and a bitmap of the
// WINDOW before it, so out-of-order arrival across shards is fine; anything older than the window is let
// through (it cannot be told apart, and one connection delivers in order, so it is not a copy in practice).

/** Sequence numbers per origin remembered (a bitmap of WINDOW bits). */
const WINDOW = 4096
/** Origins remembered (512 bytes each): instances come and go with rolling restarts, each with a new id. */
const MAX_ORIGINS = 256

interface Window {
  top: number
  bits: Uint8Array
}

export class SeenSequences {
  readonly #byOrigin = new Map<string, Window>()

  /** Marks the pair seen; true if it was already. `sequence` is a uint32 that wraps. */
  isDuplicate(origin: string, sequence: number): boolean {
    let seen = this.#byOrigin.get(origin)
    if (!seen) {
      seen = { top: sequence, bits: new Uint8Array(WINDOW / 8) }
      this.#byOrigin.set(origin, seen)
      if (this.#byOrigin.size > MAX_ORIGINS) this.#byOrigin.delete(this.#byOrigin.keys().next().value!)
    } else {
      const ahead = (sequence - seen.top) | 0
      if (ahead > 0) {
        // The window slides forward: forget the bits it passes over.
        if (ahead >= WINDOW) seen.bits.fill(0)
        else for (let s = (seen.top + 1) >>> 0; s !== ((sequence + 1) >>> 0); s = (s + 1) >>> 0) seen.bits[(s % WINDOW) >> 3]! &= ~(1 << (s & 7))
        seen.top = sequence
      } else if (-ahead >= WINDOW) {
        return false
      }
    }
    const index = (sequence % WINDOW) >> 3
    const bit = 1 << (sequence & 7)
    if (seen.bits[index]! & bit) return true
    seen.bits[index]! |= bit
    return false
  }
}
