// Two processes with the same key answer each other's restarts with restarts; each restart is legitimate
// on its own, so nothing is dropped, but the user is told once what is probably wrong.
export const RESTART_STORM_COUNT = 5
export const RESTART_STORM_WINDOW_MS = 30_000

export class RestartStormDetector {
  #restarts: number[] = []
  #reported = false

  constructor(
    private readonly count = RESTART_STORM_COUNT,
    private readonly windowMs = RESTART_STORM_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Notes one peer restart; returns the number of restarts in the window the first time it is a storm. */
  note(): number | undefined {
    const now = this.now()
    this.#restarts = this.#restarts.filter((t) => now - t < this.windowMs)
    this.#restarts.push(now)
    if (this.#restarts.length < this.count || this.#reported) return undefined
    this.#reported = true
    return this.#restarts.length
  }
}
