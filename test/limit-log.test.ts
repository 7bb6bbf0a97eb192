// LimitLog: one line per peer, limit and interval, carrying how many refusals it stands for.
import { describe, expect, it } from 'vitest'
import { LimitLog } from '../src/core/server/limit-log.js'
import type { ServerLog } from '../src/core/server/server-log.js'

function collect(): { log: ServerLog; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const warn = (fields: Record<string, unknown>, msg: string) => void lines.push({ ...fields, msg })
  return { lines, log: { debug: () => {}, info: () => {}, warn, error: () => {} } }
}

describe('LimitLog', () => {
  it('writes the first hit at once, then one line per interval with the refusals since the last line', () => {
    let now = 0
    const { log, lines } = collect()
    const limits = new LimitLog(log, 10_000, () => now)
    for (let i = 0; i < 5; i++) limits.hit({ peer: 'a:1', limit: 'publish_rate' }, 'over the rate')
    expect(lines).toEqual([{ event: 'limit', limit: 'publish_rate', peer: 'a:1', refused: 1, intervalMs: 10_000, msg: 'over the rate' }])
    // Another limit, another peer: lines of their own.
    limits.hit({ peer: 'a:1', limit: 'subscribe_rate' }, 'x')
    limits.hit({ peer: 'b:2', limit: 'publish_rate' }, 'y')
    expect(lines.map((l) => `${l.peer} ${l.limit}`)).toEqual(['a:1 publish_rate', 'a:1 subscribe_rate', 'b:2 publish_rate'])
    now += 9_999
    limits.hit({ peer: 'a:1', limit: 'publish_rate' }, 'over the rate')
    expect(lines).toHaveLength(3)
    now += 1
    limits.hit({ peer: 'a:1', limit: 'publish_rate' }, 'over the rate')
    // 4 suppressed in the first interval, 1 more just before it ended, and this one.
    expect(lines.at(-1)).toMatchObject({ peer: 'a:1', limit: 'publish_rate', refused: 6 })
  })

  it('forgets a closed connection, and stays bounded', () => {
    const { log, lines } = collect()
    const limits = new LimitLog(log, 10_000, () => 0, 3)
    limits.hit({ peer: 'a:1', limit: 'l' }, 'm')
    limits.forget('a:1')
    limits.hit({ peer: 'a:1', limit: 'l' }, 'm')
    expect(lines).toHaveLength(2)
    for (const peer of ['b:1', 'c:1', 'd:1']) limits.hit({ peer, limit: 'l' }, 'm')
    // a:1 was the oldest of four: forgotten, so its next hit is written at once.
    limits.hit({ peer: 'a:1', limit: 'l' }, 'm')
    expect(lines).toHaveLength(6)
  })
})
