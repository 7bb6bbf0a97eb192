// Asking the peer for its ICE credentials (WIRE.md §7, need_creds): send ours at once, then again after each
// back-off delay until the peer's arrive. Signaling is fire-and-forget, so a peer that was not subscribed
// yet, or a message lost while the backend reconnected, is covered by the next request.
import { Backoff, type BackoffOptions } from '../backoff.js'

export class CredentialRequests {
  readonly #backoff: Backoff
  #timer?: NodeJS.Timeout

  constructor(backoff?: BackoffOptions, random?: () => number) {
    this.#backoff = new Backoff(backoff, random)
  }

  /** Whether a resend is scheduled. */
  get pending(): boolean {
    return this.#timer !== undefined
  }

  /**
   * Sends at once and repeats with a growing delay while `waiting()` holds (checked before every resend);
   * replaces any earlier run.
   */
  start(send: () => void, waiting: () => boolean): void {
    this.stop()
    this.#backoff.reset()
    send()
    this.#schedule(send, waiting)
  }

  /** No more resends (the peer's credentials arrived, or the attempt ended). */
  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #schedule(send: () => void, waiting: () => boolean): void {
    if (!waiting()) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (!waiting()) return
      send()
      this.#schedule(send, waiting)
    }, this.#backoff.next())
  }
}
