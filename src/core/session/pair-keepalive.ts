// A STUN Binding request on the nominated pair every second, so that a live peer of any kind (cunicu-ts,
// cunīcu/pion, aioice) answers something the silence detector can hear. werift's own consent checks run only
// every 4–6 s, too rarely to notice 5 s of silence, and it exposes no way to send one more often: this uses
// the same internals its consent check uses (buildRequest, the pair's protocol), pinned by werift-ice 0.2.3.
// Answers are authenticated: werift checks MESSAGE-INTEGRITY with the peer's pwd before resolving a request.
import type { Connection } from 'werift-ice'

export const DEFAULT_KEEPALIVE_INTERVAL_MS = 1_000

export interface PairKeepaliveOptions {
  intervalMs?: number
  /** An authenticated answer from the peer arrived. */
  onAnswer: () => void
}

interface ConsentInternals {
  buildRequest?: (options: { nominate: boolean; localUsername: string; remoteUsername: string; iceControlling: boolean; localCandidate: unknown }) => {
    transactionIdHex: string
  }
}

export class PairKeepalive {
  readonly #connection: Connection
  readonly #o: Required<PairKeepaliveOptions>
  readonly #abort = new AbortController()
  #timer?: NodeJS.Timeout

  constructor(connection: Connection, options: PairKeepaliveOptions) {
    this.#connection = connection
    this.#o = { intervalMs: DEFAULT_KEEPALIVE_INTERVAL_MS, ...options }
  }

  start(): void {
    if (this.#abort.signal.aborted || this.#timer) return
    this.#timer = setInterval(() => this.#ping(), this.#o.intervalMs)
  }

  /** Idempotent: stops the timer and abandons the request in flight. */
  close(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#abort.abort()
  }

  #ping(): void {
    const connection = this.#connection
    const pair = connection.nominated
    const build = (connection as unknown as ConsentInternals).buildRequest
    if (!pair || typeof build !== 'function' || connection.state === 'closed' || connection.state === 'failed') return
    let request: Parameters<typeof pair.protocol.request>[0]
    try {
      request = build.call(connection, {
        nominate: false,
        localUsername: connection.localUsername,
        remoteUsername: connection.remoteUsername,
        iceControlling: connection.iceControlling,
        localCandidate: pair.localCandidate,
      }) as unknown as Parameters<typeof pair.protocol.request>[0]
    } catch {
      return
    }
    pair.protocol
      .request(request, pair.remoteAddr, Buffer.from(connection.remotePassword, 'utf8'), {
        retransmissions: 0,
        // The next ping goes out then anyway; a later answer still counts for nothing but is harmless.
        responseTimeout: this.#o.intervalMs,
        signal: this.#abort.signal,
      })
      .then(
        () => {
          if (!this.#abort.signal.aborted) this.#o.onAnswer()
        },
        () => {}, // a lost ping is what the silence detector measures, not an error
      )
  }
}
