// The README's main command: an embedded server and two peers completing a session, in one process.
import { afterEach, describe, expect, it } from 'vitest'
import { killAll, runCli } from './helpers/cli.js'

afterEach(killAll)

describe('demo', () => {
  it('ends with both peers connected on one pair, verified, with opposite roles, and exits 0', async () => {
    const { code, stdout, stderr } = await runCli(['demo', '--json'], { timeoutMs: 40_000 })
    expect(code, stderr).toBe(0)
    const events = stdout.split('\n').map((line) => JSON.parse(line))
    expect(events[0]).toMatchObject({ type: 'server', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) })
    expect(events.find((e) => e.type === 'done')).toMatchObject({ ok: true, reason: 'both peers connected' })
    const of = (peer: string, type: string) => events.filter((e) => e.type === 'peer' && e.peer === peer && e.event.type === type).map((e) => e.event)
    expect(new Set([of('A', 'role')[0].role, of('B', 'role')[0].role])).toEqual(new Set(['controlling', 'controlled']))
    const pairA = of('A', 'pair').at(-1)
    const pairB = of('B', 'pair').at(-1)
    expect(pairA.local.port).toBe(pairB.remote.port)
    expect(pairA.remote.port).toBe(pairB.local.port)
    expect(of('A', 'verified')).toHaveLength(1)
    expect(of('B', 'verified')).toHaveLength(1)
    // Credentials went both ways through the server, sealed.
    expect(of('A', 'envelope').some((e) => e.direction === 'in' && e.kind === 'credentials')).toBe(true)
    expect(of('B', 'envelope').some((e) => e.direction === 'in' && e.kind === 'credentials')).toBe(true)
  }, 60_000)

  it('reports a timeout with the reason', async () => {
    const { Demo } = await import('../src/core/demo.js')
    const demo = new Demo()
    const done: unknown[] = []
    demo.events.on((e) => e.type === 'done' && done.push(e))
    // 5 ms cannot suffice: starting the server and two subscriptions alone takes longer.
    const result = await demo.run({ timeoutMs: 5 })
    expect(result).toEqual({ ok: false, reason: 'not connected within 0.005 s', timedOut: true })
    expect(done).toMatchObject([{ ok: false, reason: 'not connected within 0.005 s' }])
  })
})
