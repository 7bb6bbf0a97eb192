// The server's two admission rules at their boundaries, with injected clocks: the publish token bucket and
// the subscribe-proof replay guard. (Their behaviour inside the server is tested in server-limits and auth.)
import { describe, expect, it } from 'vitest'
import { ReplayGuard } from '../../src/core/server/replay-guard.js'
import { monotonicNow, TokenBucket } from '../../src/core/server/token-bucket.js'

describe('TokenBucket at its boundaries', () => {
  it('starts full, refills in fractions, and is full again only at the burst', () => {
    let now = 500
    const bucket = new TokenBucket(4, 2, () => now)
    expect(bucket.full).toBe(true)
    expect(bucket.tokens).toBe(2)
    expect(bucket.tryTake()).toBe(true)
    expect(bucket.full).toBe(false)
    now += 125 // half a token at 4/s
    expect(bucket.tokens).toBe(1.5)
    expect(bucket.full).toBe(false)
    now += 125
    expect(bucket.tokens).toBe(2)
    expect(bucket.full).toBe(true)
    now += 10_000
    expect(bucket.tokens).toBe(2) // never above the burst
  })

  it('takes a token only when a whole one is there, and takes exactly one', () => {
    let now = 0
    const bucket = new TokenBucket(1000, 1, () => now)
    expect(bucket.tryTake()).toBe(true)
    expect(bucket.tokens).toBe(0)
    now += 0.5
    expect(bucket.tryTake()).toBe(false)
    expect(bucket.tokens).toBe(0.5) // a refused take costs nothing
    now += 0.5
    expect(bucket.tryTake()).toBe(true)
    expect(bucket.tokens).toBe(0)
  })

  it('refuses rates and bursts that could never admit anything, naming them', () => {
    expect(() => new TokenBucket(-1, 5)).toThrow(new RangeError('a token bucket needs a rate > 0 and a burst >= 1, got -1/s and 5'))
    expect(() => new TokenBucket(Number.NaN, 5)).toThrow(RangeError)
    expect(() => new TokenBucket(5, 0.5)).toThrow(RangeError)
    expect(() => new TokenBucket(5, Number.NaN)).toThrow(RangeError)
    expect(new TokenBucket(0.001, 1).burst).toBe(1)
  })

  it('defaults to the monotonic clock', () => {
    const before = performance.now()
    const now = monotonicNow()
    expect(now).toBeGreaterThanOrEqual(before)
    expect(now).toBeLessThanOrEqual(performance.now())
    expect(new TokenBucket(1, 3).tokens).toBe(3)
  })
})

describe('ReplayGuard at its boundaries', () => {
  const SKEW = 1000
  const nonce = (n: number): Uint8Array => Uint8Array.of(n, n >> 8)

  it('accepts timestamps exactly at the skew on either side, and nothing beyond', () => {
    const now = 50_000
    const guard = new ReplayGuard(SKEW, 10, () => now)
    expect(guard.admit(now - SKEW, nonce(1))).toBe('fresh')
    expect(guard.admit(now + SKEW, nonce(2))).toBe('fresh')
    expect(guard.admit(now - SKEW - 1, nonce(3))).toBe('too-old')
    expect(guard.admit(now + SKEW + 1, nonce(4))).toBe('too-new')
    expect(guard.size).toBe(2) // refused timestamps are not remembered
  })

  it('remembers a nonce until its timestamp leaves the skew, and forgets it then', () => {
    let now = 50_000
    const guard = new ReplayGuard(SKEW, 10, () => now)
    expect(guard.admit(now, nonce(1))).toBe('fresh')
    now += SKEW // the proof's timestamp is at the edge: still acceptable, so still a replay
    expect(guard.admit(now - SKEW, nonce(1))).toBe('replayed')
    expect(guard.admit(now, nonce(2))).toBe('fresh')
    now += 1 // nonce 1 expired; nonce 2 has not
    expect(guard.admit(now, nonce(3))).toBe('fresh')
    expect(guard.size).toBe(2) // the expired one was pruned from the front
    expect(guard.admit(now, nonce(2))).toBe('replayed')
    // The same nonce with a new, fresh timestamp after expiry is a new proof.
    expect(guard.admit(now, nonce(1))).toBe('fresh')
  })

  it('when full, first drops every expired entry, also behind live ones, before refusing', () => {
    let now = 50_000
    const guard = new ReplayGuard(SKEW, 3, () => now)
    expect(guard.admit(now + SKEW, nonce(1))).toBe('fresh') // expires last
    expect(guard.admit(now - SKEW, nonce(2))).toBe('fresh') // expires first
    expect(guard.admit(now, nonce(3))).toBe('fresh')
    expect(guard.admit(now, nonce(4))).toBe('full')
    now += 1 // nonce 2 has expired but sits behind the live nonce 1
    expect(guard.admit(now, nonce(4))).toBe('fresh')
    expect(guard.size).toBe(3)
    expect(guard.admit(now, nonce(1))).toBe('replayed')
    expect(guard.admit(now, nonce(5))).toBe('full')
    guard.clear()
    expect(guard.size).toBe(0)
    expect(guard.admit(now, nonce(5))).toBe('fresh')
  })

  it('an expired nonce behind a live one is not a replay, even before it is pruned', () => {
    let now = 50_000
    const guard = new ReplayGuard(SKEW, 10, () => now)
    expect(guard.admit(now + SKEW, nonce(1))).toBe('fresh') // expires last, stays in front
    expect(guard.admit(now - SKEW, nonce(2))).toBe('fresh') // expires first, behind it
    now += 1
    expect(guard.admit(now, nonce(2))).toBe('fresh')
    expect(guard.admit(now, nonce(2))).toBe('replayed')
  })

  it('tells nonces apart by every byte', () => {
    const now = 50_000
    const guard = new ReplayGuard(SKEW, 10, () => now)
    expect(guard.admit(now, Uint8Array.of(1, 2))).toBe('fresh')
    expect(guard.admit(now, Uint8Array.of(1, 3))).toBe('fresh')
    expect(guard.admit(now, Uint8Array.of(1, 2))).toBe('replayed')
  })

  it('uses the wall clock and a capacity of 100,000 unless given', () => {
    const guard = new ReplayGuard(SKEW)
    expect(guard.capacity).toBe(100_000)
    expect(guard.admit(Date.now(), nonce(1))).toBe('fresh')
    expect(guard.admit(Date.now() - 10 * SKEW, nonce(2))).toBe('too-old')
  })
})
