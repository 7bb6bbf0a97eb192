// The Ink views render what the events say: role and why, state timeline, envelopes, pair and RTT.
import { render } from 'ink-testing-library'
import { describe, expect, it } from 'vitest'
import type { SessionEvent } from '../src/core/session/events.js'
import type { InboxEvent } from '../src/core/inbox.js'
import type { DemoEvent } from '../src/core/demo.js'
import { SessionView } from '../src/ui/session-view.js'
import { InboxView } from '../src/ui/inbox-view.js'
import { DemoView } from '../src/ui/demo-view.js'
import { at, local, ours, remote, theirs } from './helpers/view-fixtures.js'


const sessionEvents: SessionEvent[] = [
  { at: at(0), type: 'role', ours, theirs, role: 'controlling', reason: 'our key AAAAAAAA… < their key f///////…: we control' },
  { at: at(1), type: 'subscribed', key: ours, peer: theirs, backend: 'grpc://127.0.0.1:8080?insecure=true' },
  { at: at(2), type: 'envelope', direction: 'out', kind: 'credentials', size: 170, backend: 'b' },
  { at: at(10), type: 'envelope', direction: 'in', kind: 'credentials', size: 168, backend: 'b' },
  { at: at(11), type: 'state', state: 'gathering', previous: 'idle' },
  { at: at(12), type: 'candidate', side: 'local', candidate: local },
  { at: at(20), type: 'candidate', side: 'remote', candidate: remote },
  { at: at(21), type: 'state', state: 'connecting', previous: 'gathering' },
  { at: at(22), type: 'state', state: 'checking', previous: 'connecting' },
  { at: at(60), type: 'state', state: 'connected', previous: 'checking' },
  { at: at(61), type: 'pair', local, remote },
  { at: at(63), type: 'verified', rttMs: 1.25 },
]

describe('session view', () => {
  it('shows keys, role and why, the timeline, envelopes, the pair and the RTT', () => {
    const { lastFrame, unmount } = render(<SessionView events={sessionEvents} />)
    const frame = lastFrame()!
    expect(frame).toContain('us AAAAAAAA… ⇄ peer f///////…')
    expect(frame).toMatch(/role controlling \(our key AAAAAAAA… < their key f\/{7}…: we\s+control\)/)
    expect(frame).toMatch(/state connected idle \+0ms → gathering \+11ms → connecting \+21ms → checking \+22ms → connected[\s│]+\+60ms/)
    expect(frame).toContain('envelopes ⇐ 1 ⇒ 1 · candidates local 1 remote 1')
    expect(frame).toContain('pair host udp 127.0.0.1:40001 ⇄ host udp 127.0.0.1:40002')
    expect(frame).toContain('path verified, RTT 1.25 ms')
    expect(frame).toContain('⇒ out credentials (170 B)')
    expect(frame).toContain('⇐ in  credentials (168 B)')
    unmount()
  })

  it('says plainly when the path is connected but unverified', () => {
    const events: SessionEvent[] = [...sessionEvents.slice(0, -1), { at: at(3000), type: 'unverified', reason: 'the peer did not answer path probes' }]
    const { lastFrame, unmount } = render(<SessionView events={events} />)
    expect(lastFrame()).toContain('path connected but unverified')
    expect(lastFrame()).toContain('path unverified: the peer did not answer path probes')
    unmount()
  })

  it('counts errors and shows the last one', () => {
    const events: SessionEvent[] = [...sessionEvents.slice(0, 3), { at: at(5), type: 'error', source: 'envelope', message: 'envelope from X failed authentication' }]
    const { lastFrame, unmount } = render(<SessionView events={events} />)
    expect(lastFrame()).toContain('1 errors')
    expect(lastFrame()).toContain('last error envelope: envelope from X failed authentication')
    unmount()
  })
})

describe('inbox view', () => {
  it('logs messages and dropped envelopes with a live status line', () => {
    const events: InboxEvent[] = [
      { type: 'subscribed', key: ours, from: 'any', backend: 'inprocess:', at: at(0) },
      { type: 'message', from: theirs, to: ours, backend: 'inprocess:', at: at(5), kind: 'candidate', size: 170, message: { candidate: { port: 7 } } },
      { type: 'error', reason: 'authentication-failed', message: 'tampered', backend: 'inprocess:', at: at(6) },
    ]
    const { lastFrame, unmount } = render(<InboxView events={events} />)
    const frame = lastFrame()!
    expect(frame).toContain('subscribed as AAAAAAAA… to any sender')
    expect(frame).toContain('⇐ candidate from f///////… (170 B) {"candidate":{"port":7}}')
    expect(frame).toContain('dropped envelope (authentication-failed): tampered')
    expect(frame).toContain('live · 1 messages · 1 dropped')
    unmount()
  })
})

describe('demo view', () => {
  it('labels both peers in the log and shows their panels', () => {
    const events: DemoEvent[] = [
      { type: 'server', address: '127.0.0.1:4000', at: at(0) },
      ...sessionEvents.map((event) => ({ type: 'peer' as const, peer: 'A' as const, event })),
      { type: 'peer', peer: 'B', event: { at: at(1), type: 'state', state: 'gathering', previous: 'idle' } },
      { type: 'done', ok: true, reason: 'both peers connected', elapsedMs: 500, at: at(100) },
    ]
    const { lastFrame, unmount } = render(<DemoView events={events} />)
    const frame = lastFrame()!
    expect(frame).toContain('embedded signaling server on 127.0.0.1:4000')
    expect(frame).toContain('[A] path verified, RTT 1.25 ms')
    expect(frame).toContain('[B] state gathering')
    expect(frame).toContain('peer A')
    expect(frame).toContain('peer B')
    expect(frame).toContain('✓ both peers connected in 500 ms')
    unmount()
  })
})
