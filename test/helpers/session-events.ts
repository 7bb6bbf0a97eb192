// Waiting on session events with a deadline, instead of sleeping: every wait names what it waited for.
import type { Emitter } from '../../src/core/emitter.js'
import type { SessionEvent } from '../../src/core/session/events.js'
import { PrivateKey } from '../../src/core/keys.js'

export interface Recorder {
  events: SessionEvent[]
  stop: () => void
}

/** Records every event of an emitter from now on. */
export function record(emitter: Emitter<SessionEvent>): Recorder {
  const events: SessionEvent[] = []
  const stop = emitter.on((e) => void events.push(e))
  return { events, stop }
}

/** Resolves with the first event (already recorded or future) matching `match`; rejects after timeoutMs. */
export function waitFor<T extends SessionEvent>(
  emitter: Emitter<SessionEvent>,
  match: (e: SessionEvent) => e is T,
  timeoutMs: number,
  what: string,
  seen: readonly SessionEvent[] = [],
): Promise<T> {
  const earlier = seen.find(match)
  if (earlier) return Promise.resolve(earlier)
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
    }, timeoutMs)
    const off = emitter.on((e) => {
      if (!match(e)) return
      clearTimeout(timer)
      off()
      resolve(e)
    })
  })
}

export const isState =
  (state: string) =>
  (e: SessionEvent): e is Extract<SessionEvent, { type: 'state' }> =>
    e.type === 'state' && e.state === state

export const isType =
  <K extends SessionEvent['type']>(type: K) =>
  (e: SessionEvent): e is Extract<SessionEvent, { type: K }> =>
    e.type === type

/** Two keys, the first one smaller (so the first peer controls). */
export function orderedKeys(): [PrivateKey, PrivateKey] {
  const a = PrivateKey.generate()
  const b = PrivateKey.generate()
  return Buffer.compare(Buffer.from(a.publicKey.bytes), Buffer.from(b.publicKey.bytes)) < 0 ? [a, b] : [b, a]
}
