// The peer's candidates of the last RECENT_CANDIDATE_TTL_MS: a candidate can overtake the credentials it
// belongs to (the protobuf carries no agent generation, WIRE.md §7), so a newer agent replays them. Stale
// ones only add pairs that fail. Bounded: the oldest entry goes first.
import { candidateKey } from './candidate-mapping.js'
import type { CandidateInfo } from './events.js'

export const RECENT_CANDIDATE_TTL_MS = 30_000
export const RECENT_CANDIDATE_LIMIT = 64

export class RecentCandidates {
  readonly #entries = new Map<string, { info: CandidateInfo; at: number }>()

  constructor(
    private readonly ttlMs = RECENT_CANDIDATE_TTL_MS,
    private readonly limit = RECENT_CANDIDATE_LIMIT,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a candidate (refreshing its time); true when it was not known yet. */
  remember(info: CandidateInfo): boolean {
    const key = candidateKey(info)
    const isNew = !this.#entries.has(key)
    this.#entries.delete(key)
    this.#entries.set(key, { info, at: this.now() })
    if (this.#entries.size > this.limit) this.#entries.delete(this.#entries.keys().next().value!)
    return isNew
  }

  /** The candidates younger than the TTL, oldest first; older ones are forgotten. */
  current(): CandidateInfo[] {
    const cutoff = this.now() - this.ttlMs
    for (const [key, entry] of this.#entries) if (entry.at < cutoff) this.#entries.delete(key)
    return [...this.#entries.values()].map((e) => e.info)
  }
}
