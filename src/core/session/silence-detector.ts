// Notices a connected path going quiet, as pion/ice does (cunīcu's ICE library): disconnected after 5 s
// without hearing anything from the peer on the pair, failed after 25 s. werift-ice has neither: it has no
// disconnected state and fails only when consent expires after 30 s (ICE-NOTES "Consent"). The session
// feeds it every sign of life (datagrams on the pair, answers to our keepalives); a pair-keepalive makes
// sure a live peer produces one at least every second.

export const DEFAULT_DISCONNECTED_AFTER_MS = 5_000
export const DEFAULT_FAILED_AFTER_MS = 25_000
const DEFAULT_CHECK_EVERY_MS = 250

export type PathLiveness = 'alive' | 'silent' | 'failed'

export interface SilenceDetectorOptions {
  disconnectedAfterMs?: number
  failedAfterMs?: number
  /** How often the silence is measured; bounds how late a transition is noticed. */
  checkEveryMs?: number
  /** Milliseconds from a monotonic clock; performance.now() by default (injectable for tests). */
  now?: () => number
  /** Nothing heard for disconnectedAfterMs. */
  onSilent: (silentMs: number) => void
  /** Heard again after onSilent. */
  onHeardAgain: (silentMs: number) => void
  /** Nothing heard for failedAfterMs; the detector stops itself. */
  onFailed: (silentMs: number) => void
}

export class SilenceDetector {
  readonly #o: Required<SilenceDetectorOptions>
  #last = 0
  #state: PathLiveness = 'alive'
  #timer?: NodeJS.Timeout
  #closed = false

  constructor(options: SilenceDetectorOptions) {
    this.#o = {
      disconnectedAfterMs: DEFAULT_DISCONNECTED_AFTER_MS,
      failedAfterMs: DEFAULT_FAILED_AFTER_MS,
      checkEveryMs: DEFAULT_CHECK_EVERY_MS,
      now: () => performance.now(),
      ...options,
    }
    if (!(this.#o.failedAfterMs > this.#o.disconnectedAfterMs)) throw new RangeError('failedAfterMs must exceed disconnectedAfterMs')
  }

  get state(): PathLiveness {
    return this.#state
  }

  /** Starts measuring, counting from now (the path was just heard: it connected). */
  start(): void {
    if (this.#closed || this.#timer) return
    this.#last = this.#o.now()
    this.#timer = setInterval(() => this.#check(), this.#o.checkEveryMs)
  }

  /** A sign of life from the peer on the path. Cheap: it runs for every datagram. */
  heard(): void {
    if (this.#closed) return
    const now = this.#o.now()
    if (this.#state === 'silent') {
      const silentMs = now - this.#last
      this.#state = 'alive'
      this.#last = now
      this.#o.onHeardAgain(silentMs)
      return
    }
    this.#last = now
  }

  /** Idempotent; no callback follows. */
  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  #check(): void {
    if (this.#closed) return
    const silentMs = this.#o.now() - this.#last
    if (silentMs >= this.#o.failedAfterMs) {
      this.#state = 'failed'
      this.close()
      this.#o.onFailed(silentMs)
    } else if (silentMs >= this.#o.disconnectedAfterMs && this.#state === 'alive') {
      this.#state = 'silent'
      this.#o.onSilent(silentMs)
    }
  }
}
