// The live view shows what 'relays' and 'forward' events say: the relays in the log, the latest forward
// counters in the panel (not a log line per second), and a log line when forwarding pauses.
import { render } from 'ink-testing-library'
import { describe, expect, it } from 'vitest'
import type { SessionEvent } from '../src/core/session/events.js'
import { SessionView } from '../src/ui/session-view.js'

const at = (ms: number) => new Date(Date.UTC(2026, 10, 26, 12, 0, 0, ms)).toISOString()
const counters = (n: number, active = true) =>
  ({
    type: 'forward',
    local: '127.0.0.1:51821',
    app: '127.0.0.1:51820',
    mode: 'sealed',
    active,
    sent: { datagrams: n, bytes: n * 1000 },
    received: { datagrams: n - 2, bytes: (n - 2) * 1000 },
    lost: 2,
    lossPercent: 0.4,
    replayed: 0,
    invalid: 1,
    foreign: 0,
    notConnected: 0,
    noApp: 0,
    errors: 0,
    rate: { sentBitsPerSecond: 40_000_000, receivedBitsPerSecond: 39_000_000, sentPerSecond: 5000, receivedPerSecond: 4875 },
  }) as const

const events: SessionEvent[] = [
  {
    at: at(0),
    type: 'relays',
    stun: ['stun:10.0.0.1:3478'],
    turn: [{ url: 'turn:10.0.0.1:3478?transport=udp', username: '1795680036:k', source: 'server', expires: at(3_600_000) }],
    skipped: [],
  },
  { at: at(1000), ...counters(5000) },
  { at: at(2000), ...counters(10000) },
]

describe('session view: relays and forwarding', () => {
  it('logs the relays, shows the latest forward counters in the panel, logs a pause', () => {
    const { lastFrame, unmount, rerender } = render(<SessionView events={events} />)
    let frame = lastFrame()!
    expect(frame).toContain('relays stun stun:10.0.0.1:3478 · turn turn:10.0.0.1:3478?transport=udp (server)')
    expect(frame).toMatch(/forward 127\.0\.0\.1:51821 ⇄ 127\.0\.0\.1:51820 active ⇒ 10000 \(9765\.6 KiB, 40\.0 Mbit\/s\) ⇐ 9998/)
    expect(frame).toMatch(/lost 2 \(0\.4%\)/)
    expect(frame).toContain('refused 1')
    expect(frame).not.toContain('paused')
    rerender(<SessionView events={[...events, { at: at(3000), ...counters(10000, false) }]} />)
    frame = lastFrame()!
    expect(frame).toContain('forward 127.0.0.1:51821 paused: ⇒ 10000')
    expect(frame).toMatch(/51820 idle/)
    unmount()
  })
})
