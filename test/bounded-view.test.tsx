// The live views keep no history: memory and the work per frame stay the same however long a session runs
// (a `session --forward` view gets an event every second, for days).
import { Profiler } from 'react'
import { render } from 'ink-testing-library'
import { describe, expect, it } from 'vitest'
import { Emitter } from '../src/core/emitter.js'
import type { SessionEvent } from '../src/core/session/events.js'
import { CANDIDATES_MAX, EMPTY_SUMMARY, TIMELINE_MAX, reduceSummary, summarize } from '../src/ui/session-summary.js'
import { LiveSession } from '../src/ui/session-view.js'
import { FRAME_MS, useEventLog, type EventLog } from '../src/ui/use-events.js'

const at = (ms: number) => new Date(Date.UTC(2026, 10, 26, 12, 0, 0, 0) + ms).toISOString()
const frame = () => new Promise((resolve) => setTimeout(resolve, FRAME_MS * 3))
const candidate = (port: number) => ({ type: 'host', protocol: 'udp', address: '127.0.0.1', port, priority: 1, foundation: 'f' }) as const
const forward = (n: number): SessionEvent => ({
  at: at(n * 1000),
  type: 'forward',
  mode: 'raw',
  foreign: 0,
  local: '127.0.0.1:51821',
  active: true,
  sent: { datagrams: n, bytes: n * 100 },
  received: { datagrams: n, bytes: n * 100 },
  lost: 0,
  lossPercent: 0,
  replayed: 0,
  invalid: 0,
  notConnected: 0,
  noApp: 0,
  errors: 0,
  rate: { sentBitsPerSecond: 800, receivedBitsPerSecond: 800, sentPerSecond: 1, receivedPerSecond: 1 },
})

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

describe('the session summary, one event at a time', () => {
  it('never mutates what it was given, and bounds the timeline and candidate lists while counting on', () => {
    let s = deepFreeze(EMPTY_SUMMARY)
    const events: SessionEvent[] = []
    for (let i = 0; i < 100; i++) {
      events.push({ at: at(i), type: 'state', state: i % 2 ? 'checking' : 'connected', previous: i % 2 ? 'connected' : 'checking' })
      events.push({ at: at(i), type: 'candidate', side: 'remote', candidate: candidate(1000 + i) })
    }
    for (const e of events) s = deepFreeze(reduceSummary(s, e)) // a mutation of a frozen object throws
    expect(s.timeline).toHaveLength(TIMELINE_MAX)
    expect(s.timeline.at(-1)).toEqual({ state: 'checking', at: at(99) })
    expect(s.startedAt).toBe(at(0))
    expect(s.remoteCandidates).toHaveLength(CANDIDATES_MAX)
    expect(s.remoteCandidateCount).toBe(100)
    expect(summarize(events)).toEqual(s)
  })
})

describe('useEventLog', () => {
  it('keeps only the latest frame of events and folds each event exactly once', async () => {
    const emitter = new Emitter<number>()
    let folded = 0
    const sum = (total: number, n: number) => (folded++, total + n)
    let seen: EventLog<number, number> | undefined
    function Probe() {
      seen = useEventLog(emitter, sum, 0)
      return null
    }
    const { unmount } = render(<Probe />)
    for (let f = 0; f < 20; f++) {
      for (let i = 1; i <= 100; i++) emitter.emit(i)
      await frame()
      expect(seen!.fresh).toHaveLength(100) // this frame's events, never the history
    }
    expect(seen!.state).toBe(20 * 5050)
    expect(folded).toBe(2000)
    expect(seen!.frame).toBe(20)
    unmount()
  })
})

describe('the live session view', () => {
  /** Median commit time (React Profiler) over `frames` frames of `perFrame` events, after `history` events. */
  async function commitMs(history: number, frames = 12, perFrame = 5): Promise<number> {
    const emitter = new Emitter<SessionEvent>()
    const durations: number[] = []
    let measuring = false
    const onRender = (_id: string, _phase: string, actualDuration: number) => measuring && durations.push(actualDuration)
    const { lastFrame, unmount } = render(
      <Profiler id="session" onRender={onRender}>
        <LiveSession emitter={emitter} />
      </Profiler>,
    )
    emitter.emit({ at: at(0), type: 'state', state: 'connected', previous: 'checking' })
    for (let n = 1; n <= history; n++) emitter.emit(forward(n))
    await frame()
    await frame()
    measuring = true
    for (let f = 0; f < frames; f++) {
      for (let i = 0; i < perFrame; i++) emitter.emit(forward(history + f * perFrame + i + 1))
      await frame()
    }
    measuring = false
    expect(lastFrame()).toContain(`forward 127.0.0.1:51821 active ⇒ ${history + frames * perFrame} `) // the panel keeps up
    unmount()
    durations.sort((a, b) => a - b)
    return durations[Math.floor(durations.length / 2)]!
  }

  it('costs the same per frame after 30,000 events as after none', async () => {
    const fresh = await commitMs(0)
    const old = await commitMs(30_000)
    console.log(`live session view: median commit ${fresh.toFixed(3)} ms with no history, ${old.toFixed(3)} ms after 30,000 events`)
    // A view that re-read its history would take milliseconds here (30,000 events folded per frame).
    expect(old).toBeLessThan(Math.max(3 * fresh, fresh + 1))
  }, 60_000)
})
