// Duplicate detection for envelopes from a Redis Cluster (seen-sequences.ts): a copy is caught, reordering
// within the window is not mistaken for one, and the window wraps with the uint32 sequence.
import { describe, expect, it } from 'vitest'
import { SeenSequences } from '../../src/core/server/cluster/seen-sequences.js'

describe('SeenSequences', () => {
  it('catches a second arrival, per origin, and lets reordered first arrivals through', () => {
    const seen = new SeenSequences()
    expect([5, 7, 6, 5, 7, 8].map((n) => seen.isDuplicate('A', n))).toEqual([false, false, false, true, true, false])
    expect(seen.isDuplicate('B', 5)).toBe(false) // another instance's 5
    expect(seen.isDuplicate('B', 5)).toBe(true)
  })

  it('slides: a sequence far ahead forgets the old bits, so the same slot number is new again', () => {
    const seen = new SeenSequences()
    expect(seen.isDuplicate('A', 1)).toBe(false)
    expect(seen.isDuplicate('A', 1 + 4096)).toBe(false) // same bit position, one window later
    expect(seen.isDuplicate('A', 1 + 4096)).toBe(true)
    expect(seen.isDuplicate('A', 100 + 4096)).toBe(false)
    expect(seen.isDuplicate('A', 2 + 4096)).toBe(false) // behind top but inside the window, first time
    expect(seen.isDuplicate('A', 2 + 4096)).toBe(true)
    expect(seen.isDuplicate('A', 1)).toBe(false) // older than the window: cannot tell, let through
  })

  it('wraps around 2^32', () => {
    const seen = new SeenSequences()
    expect(seen.isDuplicate('A', 0xffff_fffe)).toBe(false)
    expect(seen.isDuplicate('A', 0xffff_ffff)).toBe(false)
    expect(seen.isDuplicate('A', 0)).toBe(false)
    expect(seen.isDuplicate('A', 1)).toBe(false)
    expect(seen.isDuplicate('A', 0xffff_ffff)).toBe(true)
    expect(seen.isDuplicate('A', 0)).toBe(true)
  })
})
