// The FIFO of publishes a Redis Cluster master has not answered: answers remove from the front, a MOVED or a
// lost connection takes entries out (in order, with their bytes and sequence numbers) to be sent again.
import { describe, expect, it } from 'vitest'
import { UnansweredPublishes } from '../../src/core/server/cluster/unanswered-publishes.js'

const bytes = (n: number) => Uint8Array.of(n)

describe('UnansweredPublishes', () => {
  it('answers remove the oldest; take returns the next ones in order, with their bytes and sequence numbers', () => {
    const q = new UnansweredPublishes()
    for (let i = 0; i < 5; i++) q.push(bytes(i), bytes(100 + i), 1000 + i)
    q.answered(2)
    expect(q.length).toBe(3)
    expect(q.take(2)).toEqual([
      { recipient: bytes(2), envelope: bytes(102), sequence: 1002 },
      { recipient: bytes(3), envelope: bytes(103), sequence: 1003 },
    ])
    expect(q.length).toBe(1)
    // More than wait: what there is.
    expect(q.take(5).map((p) => p.sequence)).toEqual([1004])
    expect(q.length).toBe(0)
    q.answered(3)
    expect(q.length).toBe(0)
  })

  it('stays in order across compaction (thousands answered while more keep coming)', () => {
    const q = new UnansweredPublishes()
    let next = 0
    let answered = 0
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) q.push(bytes(next & 0xff), bytes(0), next++)
      q.answered(90)
      answered += 90
    }
    expect(q.length).toBe(next - answered)
    const rest = q.take(q.length).map((p) => p.sequence)
    expect(rest).toEqual(Array.from({ length: next - answered }, (_, i) => answered + i))
  })
})
