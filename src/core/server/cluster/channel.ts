// What the Redis transports (redis-cluster.ts, redis-sharded.ts) share: the channel a recipient key maps to,
// how long a join waits for the broker's confirmation, and the publishes a drain waits for.

const CHANNEL_PREFIX = 'cunicu:env:'
/** How long join waits for a SUBSCRIBE confirmation before letting the subscriber go live anyway. */
const JOIN_TIMEOUT_MS = 3000

/** One channel per recipient key: "cunicu:env:" + base64(key). */
export function channelName(key: Uint8Array): string {
  return CHANNEL_PREFIX + Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')
}

/** Resolves once the subscribe attempt settled, or after JOIN_TIMEOUT_MS: a join never hangs on the broker. */
export function untilSubscribed(pending: Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, JOIN_TIMEOUT_MS)
    void pending.finally(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** Publishes not yet answered by the broker, so that flush() (a drain) can wait for them. */
export class InFlight {
  readonly #pending = new Set<Promise<unknown>>()

  /** Tracks `sent`; `onFailure` runs if the broker refused it or the connection dropped it. */
  track(sent: Promise<unknown>, onFailure: () => void): void {
    const tracked: Promise<unknown> = sent.catch(onFailure).finally(() => this.#pending.delete(tracked))
    this.#pending.add(tracked)
  }

  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
  }
}
