// The session view when the peer goes away (issue 10): a silent path says so and hides the stale RTT; a
// path that is gone (the peer said goodbye, or failed) clears the pair and RTT and says it waits for the peer.
import { render } from 'ink-testing-library'
import { describe, expect, it } from 'vitest'
import type { SessionEvent } from '../src/core/session/events.js'
import { SessionView } from '../src/ui/session-view.js'
import { at, local, ours, remote, theirs } from './helpers/view-fixtures.js'


const verified: SessionEvent[] = [
  { at: at(0), type: 'role', ours, theirs, role: 'controlling', reason: 'our key AAAAAAAA… < their key f///////…: we control' },
  { at: at(11), type: 'state', state: 'gathering', previous: 'idle' },
  { at: at(60), type: 'state', state: 'connected', previous: 'gathering' },
  { at: at(61), type: 'pair', local, remote },
  { at: at(63), type: 'verified', rttMs: 1.25 },
]
const PAIR = 'pair host udp 127.0.0.1:40001 ⇄ host udp 127.0.0.1:40002'
const count = (frame: string, text: string) => frame.split(text).length - 1

function frameOf(events: SessionEvent[]): string {
  const { lastFrame, unmount } = render(<SessionView events={events} />)
  const frame = lastFrame()!
  unmount()
  return frame
}

describe('session view: the peer goes away', () => {
  it('connected: the panel shows the pair and the RTT (each also once in the log)', () => {
    const frame = frameOf(verified)
    expect(count(frame, 'path verified, RTT 1.25 ms')).toBe(2)
    expect(count(frame, PAIR)).toBe(2) // the panel, and the log's "selected pair …" line
    expect(frame).toContain(`selected ${PAIR}`)
  })

  it('disconnected: keeps the pair, hides the stale RTT, says it is waiting for the peer', () => {
    const frame = frameOf([...verified, { at: at(5100), type: 'state', state: 'disconnected', previous: 'connected', reason: 'nothing heard from the peer on the path for 5 s' }])
    expect(frame).toMatch(/state disconnected/)
    expect(frame).toContain('path silent, waiting for the peer')
    expect(count(frame, 'path verified, RTT 1.25 ms')).toBe(1) // the log line only
    expect(frame).toContain('(nothing heard from the peer on the path for 5 s)')
  })

  it('back to connected after the silence: the RTT is shown again', () => {
    const frame = frameOf([
      ...verified,
      { at: at(5100), type: 'state', state: 'disconnected', previous: 'connected' },
      { at: at(5600), type: 'state', state: 'connected', previous: 'disconnected', reason: 'the peer is heard again after 5.5 s of silence' },
    ])
    expect(count(frame, 'path verified, RTT 1.25 ms')).toBe(2)
  })

  for (const [what, gone] of [
    ['the peer said goodbye', { at: at(900), type: 'state', state: 'idle', previous: 'connected', reason: 'the peer stopped (it said goodbye on the path): waiting for the peer' }],
    ['the path failed', { at: at(25_100), type: 'state', state: 'failed', previous: 'disconnected', reason: 'nothing heard from the peer on the path for 25 s: the path is gone' }],
  ] as const) {
    it(`${what}: the pair and RTT are cleared from the panel`, () => {
      const frame = frameOf([...verified, gone])
      expect(frame).toMatch(/pair —/)
      expect(count(frame, 'path verified, RTT 1.25 ms')).toBe(1)
      expect(count(frame, PAIR)).toBe(1) // the log's "selected pair" line stays: it is history
      if (gone.state === 'idle') expect(frame).toContain('path waiting for the peer')
    })
  }
})
