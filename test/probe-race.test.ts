// Issue 10, "no probe race": the peer that connects second used to wait out a 3 s probe timer in about half
// of all runs. Twenty demos and twenty pairs of `session` processes in a row must each reach 'verified' on
// both sides within 1 s of both peers being subscribed (process start is not part of it: that is the CLI's
// start-up time, measured by the bench). And --exit-on-connected never exits 0 before the probe settled.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Demo, type DemoEvent } from '../src/core/demo.js'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, startCli, type CliProcess } from './helpers/cli.js'
import { preparePython, startPython, type PythonEnv } from './helpers/interop.js'

afterEach(killAll)

const RUNS = 20
const LIMIT_MS = 1000

let dir: string
let py: PythonEnv | undefined
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-race-'))
})
afterAll(() => py?.cleanup())

function keyFile(key: PrivateKey): string {
  const file = join(dir, `${key.publicKey.short.replace(/\//g, '_')}.key`)
  writeFileSync(file, key.toBase64() + '\n', { mode: 0o600 })
  return file
}

async function signal(): Promise<{ server: CliProcess; backend: string }> {
  const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
  const { address } = await server.waitForEvent((e) => e.type === 'listening')
  return { server, backend: `grpc://${address}?insecure=true` }
}

const summary = (ms: number[]) => `slowest ${Math.max(...ms)} ms, median ${[...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)]} ms`

describe('no probe race', () => {
  it(`demo ${RUNS} times in a row: every run verified on both sides within ${LIMIT_MS} ms`, async () => {
    const toVerified: number[] = []
    const total: number[] = []
    for (let run = 0; run < RUNS; run++) {
      const demo = new Demo()
      const events: { event: DemoEvent; t: number }[] = []
      demo.events.on((event) => void events.push({ event, t: performance.now() }))
      const result = await demo.run({ timeoutMs: 20_000 })
      expect(result, `run ${run + 1}`).toEqual({ ok: true, reason: 'both peers connected' })
      const last = (type: string) => Math.max(...events.filter(({ event }) => event.type === 'peer' && event.event.type === type).map(({ t }) => t))
      for (const peer of ['A', 'B']) expect(events.filter(({ event: e }) => e.type === 'peer' && e.peer === peer && e.event.type === 'verified'), `run ${run + 1} peer ${peer}`).toHaveLength(1)
      toVerified.push(Math.round(last('verified') - last('subscribed')))
      total.push((events.find(({ event }) => event.type === 'done')!.event as Extract<DemoEvent, { type: 'done' }>).elapsedMs)
    }
    console.log(`demo × ${RUNS}: both subscribed → both verified: ${summary(toVerified)}; whole demo (server start included): ${summary(total)}`)
    expect(Math.max(...toVerified)).toBeLessThanOrEqual(LIMIT_MS)
    // The figure of issue 10 (0.14–3.2 s): the whole demo, its server's start included.
    expect(Math.max(...total)).toBeLessThanOrEqual(LIMIT_MS)
  }, 120_000)

  it(`two session processes ${RUNS} times in a row: every run verified on both sides within ${LIMIT_MS} ms, and exit 0 only after it`, async () => {
    const { server, backend: backendUrl } = await signal()
    const toVerified: number[] = []
    for (let run = 0; run < RUNS; run++) {
      const a = PrivateKey.generate()
      const b = PrivateKey.generate()
      const start = (self: PrivateKey, other: PrivateKey) =>
        startCli(['session', other.publicKey.toString(), '-k', keyFile(self), '-b', backendUrl, '--loopback', '--json', '--exit-on-connected', '--timeout', '20'])
      const pa = start(a, b)
      const pb = start(b, a)
      const context = () => `run ${run + 1}\nA:\n${pa.lines.join('\n')}\n${pa.stderr}\nB:\n${pb.lines.join('\n')}\n${pb.stderr}`
      expect(await pa.exit(30_000), context()).toBe(0)
      expect(await pb.exit(30_000), context()).toBe(0)
      for (const p of [pa, pb]) {
        // Exit 0 means the probe settled: 'verified' came before the session closed.
        const types = p.events.map((e) => (e.type === 'state' ? `state ${e.state}` : e.type))
        expect(types.indexOf('verified'), context()).toBeGreaterThan(-1)
        expect(types.indexOf('verified'), context()).toBeLessThan(types.indexOf('state closed'))
      }
      const at = (p: CliProcess, type: string) => Date.parse(p.events.find((e) => e.type === type)!.at)
      toVerified.push(Math.max(at(pa, 'verified'), at(pb, 'verified')) - Math.max(at(pa, 'subscribed'), at(pb, 'subscribed')))
    }
    console.log(`session processes × ${RUNS}: both subscribed → both verified: ${summary(toVerified)}`)
    expect(Math.max(...toVerified)).toBeLessThanOrEqual(LIMIT_MS)
    server.child.kill('SIGTERM')
    await server.exit()
  }, 300_000)

  it('--exit-on-connected against a peer that never answers probes: exit 4 "not verified" at --timeout, never 0 before unverified', async () => {
    py = preparePython()
    const { server, backend } = await signal()
    const address = backend.replace(/^grpc:\/\/|\?.*$/g, '')
    const ours = PrivateKey.generate()
    const theirs = PrivateKey.generate()
    // aioice connects but, not being cunicu-ts, leaves our probes unanswered: 'unverified' comes 3 s after
    // 'connected', so a 2 s timeout passes while connected and unverified, the situation of issue 10.
    const peer = startPython(py, 'peer.py', ['session', '--server', address, '--key', theirs.toBase64(), '--peer', ours.publicKey.toString(), '--timeout', '30', '--linger', '5'])
    await peer.waitForEvent((e) => e.type === 'subscribed')
    const ts = startCli(['session', theirs.publicKey.toString(), '-k', keyFile(ours), '-b', backend, '--loopback', '--json', '--exit-on-connected', '--timeout', '2'])
    const context = () => `cunicu-ts:\n${ts.lines.join('\n')}\n${ts.stderr}\npython:\n${peer.lines.join('\n')}\n${peer.stderr}`
    expect(await ts.exit(20_000), context()).toBe(4)
    expect(ts.events.some((e) => e.type === 'state' && e.state === 'connected'), context()).toBe(true)
    expect(ts.events.some((e) => e.type === 'verified' || e.type === 'unverified'), context()).toBe(false)
    expect(ts.events.at(-1), context()).toMatchObject({ type: 'error', message: 'timed out after 2 s: connected but the path is not verified yet (state connected)', exit: 4 })
    server.child.kill('SIGTERM')
    await server.exit()
  }, 60_000)

  it('demo: a timeout after both peers connected says "not verified", not "not connected"', async () => {
    const demo = new Demo()
    // No real run settles its probes within 5 ms (the server alone takes longer to start), so the peers'
    // 'connected' is told here, right as they start, and the timer then finds both connected, unverified.
    let told = false
    demo.events.on((e) => {
      if (told || e.type !== 'peer') return
      told = true
      for (const peer of ['A', 'B'] as const) demo.events.emit({ type: 'peer', peer, event: { type: 'state', state: 'connected', previous: 'checking', at: new Date().toISOString() } })
    })
    const result = await demo.run({ timeoutMs: 5 })
    expect(told).toBe(true)
    expect(result).toEqual({ ok: false, reason: 'not verified within 0.005 s', timedOut: true })
  })
})
