// The session's small memories, each bounded: recent remote candidates (replayed into a newer agent),
// retired remote credentials (late copies are no restart), and the restart-storm detector.
import { describe, expect, it } from 'vitest'
import type { CandidateInfo } from '../src/core/session/events.js'
import { RecentCandidates } from '../src/core/session/recent-candidates.js'
import { RestartStormDetector } from '../src/core/session/restart-storm.js'
import { RetiredCredentials } from '../src/core/session/retired-credentials.js'

const host = (port: number): CandidateInfo => ({ type: 'host', protocol: 'udp', address: '127.0.0.1', port, priority: 1, foundation: 'f' })

describe('RecentCandidates', () => {
  it('tells new from known, replays those within the TTL (oldest first) and forgets older ones', () => {
    let now = 0
    const recent = new RecentCandidates(1000, 10, () => now)
    expect(recent.remember(host(1))).toBe(true)
    now = 500
    expect(recent.remember(host(2))).toBe(true)
    expect(recent.remember(host(1))).toBe(false) // known: refreshed, moves to the end
    expect(recent.current().map((c) => c.port)).toEqual([2, 1])
    now = 1600 // host 2 (seen at 500) is older than the TTL, host 1 (refreshed at 500) too
    expect(recent.current()).toEqual([])
    expect(recent.remember(host(2))).toBe(true) // forgotten, so new again
  })

  it('keeps at most its limit, dropping the oldest', () => {
    const recent = new RecentCandidates(60_000, 3, () => 0)
    for (const port of [1, 2, 3, 4, 5]) recent.remember(host(port))
    expect(recent.current().map((c) => c.port)).toEqual([3, 4, 5])
  })
})

describe('RetiredCredentials', () => {
  it('knows what it retired, up to its limit (the oldest is forgotten first)', () => {
    const retired = new RetiredCredentials(2)
    const creds = (n: number) => ({ ufrag: `ufrag${n}`.padEnd(16, 'x'), pwd: `pwd${n}`.padEnd(32, 'y') })
    retired.retire(creds(1))
    retired.retire(creds(2))
    expect(retired.has(creds(1))).toBe(true)
    expect(retired.has({ ...creds(1), pwd: 'other'.padEnd(32, 'z') })).toBe(false)
    retired.retire(creds(3))
    expect([1, 2, 3].map((n) => retired.has(creds(n)))).toEqual([false, true, true])
  })
})

describe('RestartStormDetector', () => {
  it('reports once, when the count is reached within the window; restarts spread out never report', () => {
    let now = 0
    const spread = new RestartStormDetector(3, 1000, () => now)
    for (let i = 0; i < 10; i++) {
      expect(spread.note()).toBeUndefined()
      now += 600 // at most two in any 1 s window
    }
    now = 0
    const storm = new RestartStormDetector(3, 1000, () => now)
    expect([storm.note(), storm.note()]).toEqual([undefined, undefined])
    now = 900
    expect(storm.note()).toBe(3)
    expect(storm.note()).toBeUndefined() // told once
  })
})
