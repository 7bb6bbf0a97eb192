// werift-ice nominates a pair inside checkComplete() (a check that succeeded with USE-CANDIDATE, ours or
// the peer's), but its connect() notices only at the next turn of its 20 ms check-scheduling loop
// (ICE-NOTES: "the ~20 ms floor"), and only then starts RFC 7675 consent, without which it lets no
// application data out. So for up to 20 ms a working path sits unused while the user waits (issue 10: a
// second peer's start → connected was ~20 ms longer than nomination). This watch resolves at the
// nomination itself and grants consent as werift does after its loop: a successful connectivity check is
// consent to send (RFC 7675 §5.1), and werift's own renomination path calls queryConsent() the same way.
// When connect() later reaches its end it starts consent again, which only restarts the same cadence.
import type { Connection } from 'werift-ice'

/** The two werift internals this needs; a werift without them leaves connect() as the only signal. */
interface NominationInternals {
  nominated?: unknown
  checkComplete(pair: unknown): void
  queryConsent(): void
}

export interface NominationWatch {
  /** Resolves when werift nominated a pair (never, if the watch was stopped first). */
  readonly nominated: Promise<void>
  /** Removes the hook (idempotent); the connection's own checkComplete runs alone again. */
  stop(): void
}

export function watchNomination(connection: Connection): NominationWatch {
  const internals = connection as unknown as NominationInternals
  const original = internals.checkComplete
  let resolve!: () => void
  const nominated = new Promise<void>((r) => (resolve = r))
  if (typeof original !== 'function' || typeof internals.queryConsent !== 'function') return { nominated, stop: () => {} }
  let hooked = true
  const stop = (): void => {
    if (!hooked) return
    hooked = false
    // The hook is an own property shadowing the prototype's method: deleting it restores werift's.
    Reflect.deleteProperty(internals, 'checkComplete')
  }
  const grant = (): void => {
    stop()
    internals.queryConsent()
    resolve()
  }
  if (internals.nominated) {
    grant()
    return { nominated, stop }
  }
  internals.checkComplete = function (this: NominationInternals, pair: unknown): void {
    original.call(this, pair)
    if (this.nominated) grant()
  }
  return { nominated, stop }
}
