// Peer departure (issue 10): the silence detector on its own (a fake clock), then sessions in one process:
// a clean stop says goodbye and the other side waits for the peer at once; a peer that vanishes is
// 'disconnected' after the silence threshold and 'failed' (then a restart) after the longer one, while a
// live peer that is not cunicu-ts (a bare werift agent: no probes) stays 'connected' thanks to the keepalive.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { InprocessBackend } from '../src/core/backends/inprocess.js'
import type { PrivateKey } from '../src/core/keys.js'
import type { SessionEvent } from '../src/core/session/events.js'
import { Session, type SessionOptions } from '../src/core/session/session.js'
import { SilenceDetector } from '../src/core/session/silence-detector.js'
import { startPlainIcePeer } from './helpers/plain-ice-peer.js'
import { isState, isType, orderedKeys, record, waitFor } from './helpers/session-events.js'

const FAST_BACKOFF = { initialMs: 100, factor: 1.5, maxMs: 1000, jitter: 0.5 }

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  vi.useRealTimers()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('SilenceDetector', () => {
  function detector(now: { t: number }) {
    const seen: string[] = []
    // pion/ice's defaults: disconnected after 5 s, failed after 25 s (checked every 250 ms).
    const d = new SilenceDetector({
      now: () => now.t,
      onSilent: (ms) => seen.push(`silent ${ms}`),
      onHeardAgain: (ms) => seen.push(`heard ${ms}`),
      onFailed: (ms) => seen.push(`failed ${ms}`),
    })
    return { d, seen }
  }
  /** Advances the fake clock and the fake timers together, in check-sized steps. */
  const advance = (now: { t: number }, ms: number) => {
    for (let done = 0; done < ms; done += 250) {
      now.t += 250
      vi.advanceTimersByTime(250)
    }
  }

  it('stays alive while heard, goes silent at 5 s, comes back when heard, fails at 25 s and stops', () => {
    vi.useFakeTimers()
    const now = { t: 1000 }
    const { d, seen } = detector(now)
    d.start()
    for (let i = 0; i < 20; i++) {
      advance(now, 1000)
      d.heard()
    }
    expect(seen).toEqual([])
    expect(d.state).toBe('alive')
    advance(now, 4750)
    expect(seen).toEqual([])
    advance(now, 250)
    expect(seen).toEqual(['silent 5000'])
    expect(d.state).toBe('silent')
    advance(now, 2000)
    expect(seen).toEqual(['silent 5000']) // told once, not on every check
    d.heard()
    expect(seen).toEqual(['silent 5000', 'heard 7000'])
    expect(d.state).toBe('alive')
    advance(now, 24_750)
    expect(seen).toEqual(['silent 5000', 'heard 7000', 'silent 5000'])
    advance(now, 250)
    expect(seen).toEqual(['silent 5000', 'heard 7000', 'silent 5000', 'failed 25000'])
    expect(d.state).toBe('failed')
    // Failed is final: no timer left, nothing more reported.
    d.heard()
    advance(now, 30_000)
    expect(seen).toHaveLength(4)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('close() stops it for good; a failed threshold below the disconnected one is refused', () => {
    vi.useFakeTimers()
    const now = { t: 0 }
    const { d, seen } = detector(now)
    d.start()
    d.close()
    d.close()
    advance(now, 30_000)
    expect(seen).toEqual([])
    expect(vi.getTimerCount()).toBe(0)
    expect(() => new SilenceDetector({ disconnectedAfterMs: 5000, failedAfterMs: 5000, onSilent() {}, onHeardAgain() {}, onFailed() {} })).toThrow(RangeError)
  })
})

function session(ours: PrivateKey, theirs: PrivateKey, options: Partial<SessionOptions> = {}) {
  const backend = new InprocessBackend()
  const s = new Session({ backend, ours, theirs: theirs.publicKey, ice: { loopback: true, connectTimeoutMs: 10_000 }, backoff: FAST_BACKOFF, ...options })
  const log = record(s.events)
  cleanups.push(async () => {
    await s.close()
    await backend.close()
  })
  return { session: s, log }
}

const after = (events: readonly SessionEvent[], from: SessionEvent) => events.slice(events.indexOf(from) + 1)

describe('Session: peer departure', () => {
  it('a clean stop says goodbye: the other side leaves connected within 1 s, waits for the peer, and both reconnect when it comes back', async () => {
    const [small, large] = orderedKeys()
    const a = session(small, large)
    const b1 = session(large, small)
    await Promise.all([a.session.start(), b1.session.start()])
    await waitFor(a.session.events, isType('verified'), 15_000, 'A verified', a.log.events)
    await waitFor(b1.session.events, isType('verified'), 15_000, 'B verified', b1.log.events)

    expect(a.session.state).toBe('connected')
    const before = a.log.events.at(-1)!
    const stoppedAt = performance.now()
    await b1.session.close()
    const left = await waitFor(a.session.events, (e): e is Extract<SessionEvent, { type: 'state' }> => e.type === 'state' && e.state !== 'connected', 5000, 'A leaves connected', after(a.log.events, before))
    const noticedMs = performance.now() - stoppedAt
    console.log(`clean stop noticed by the peer in ${noticedMs.toFixed(1)} ms`)
    expect(noticedMs).toBeLessThan(1000)
    expect(left).toMatchObject({ state: 'idle', previous: 'connected', reason: 'the peer stopped (it said goodbye on the path): waiting for the peer' })
    // It asks for the peer's new credentials (cunīcu's idle behaviour), not for a restart of anything.
    await waitFor(a.session.events, (e): e is SessionEvent => e.type === 'envelope' && e.direction === 'out' && e.kind === 'credentials', 5000, 'A asks again', after(a.log.events, left))

    const b2 = session(large, small)
    const mark = a.log.events.at(-1)!
    await b2.session.start()
    await waitFor(b2.session.events, isType('verified'), 15_000, 'B2 verified', b2.log.events)
    await waitFor(a.session.events, isType('verified'), 15_000, 'A verified again', after(a.log.events, mark))
    expect(a.session.state).toBe('connected')
  })

  it('a live peer without probes stays connected through the silence threshold; once it vanishes: disconnected, then failed and a restart', async () => {
    const [small, large] = orderedKeys()
    const a = session(small, large, { probeTimeoutMs: 300, pathSilence: { disconnectedAfterMs: 800, failedAfterMs: 2500, keepaliveIntervalMs: 150 } })
    // The peer: a bare werift agent driven by hand (like a non-cunicu-ts ICE peer), answering STUN only.
    const peer = await startPlainIcePeer(large, small.publicKey)
    cleanups.push(() => peer.close())
    await a.session.start()
    const connected = await waitFor(a.session.events, isState('connected'), 10_000, 'connected', a.log.events)
    await waitFor(a.session.events, isType('unverified'), 5000, 'unverified', a.log.events)
    // Three silence thresholds of a peer that sends nothing of its own but answers the keepalive.
    await new Promise((resolve) => setTimeout(resolve, 2400))
    expect(after(a.log.events, connected).filter((e) => e.type === 'state')).toEqual([])

    const vanishedAt = performance.now()
    await peer.agent!.close() // no goodbye: what kill -9 or a pulled cable looks like from here
    const disconnected = await waitFor(a.session.events, isState('disconnected'), 5000, 'disconnected', a.log.events)
    const disconnectedMs = performance.now() - vanishedAt
    const failed = await waitFor(a.session.events, isState('failed'), 10_000, 'failed', a.log.events)
    const failedMs = performance.now() - vanishedAt
    const idle = await waitFor(a.session.events, isState('idle'), 10_000, 'restart (idle)', after(a.log.events, failed))
    console.log(`vanished peer: disconnected after ${disconnectedMs.toFixed(0)} ms, failed after ${failedMs.toFixed(0)} ms (thresholds 800 / 2500 ms)`)
    expect(disconnectedMs).toBeGreaterThanOrEqual(800 - 200) // the last keepalive answer may predate the close
    expect(disconnectedMs).toBeLessThan(4000)
    expect(failedMs).toBeGreaterThanOrEqual(2500 - 200)
    expect(disconnected.reason).toMatch(/^nothing heard from the peer on the path for \d+(\.\d)? s$/)
    expect(failed.reason).toMatch(/^nothing heard from the peer on the path for \d+(\.\d)? s: the path is gone$/)
    expect(idle.reason).toMatch(/^retrying with new credentials after/)
  })
})
