// Two `cunicu-ts session` processes through a `cunicu-ts signal` process, on loopback, as users run them.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { compareKeyBytes, PrivateKey } from '../src/core/keys.js'
import { killAll, RUN, startCli, type CliProcess } from './helpers/cli.js'
import { Terminal } from './helpers/terminal.js'

afterEach(killAll)

interface Peer {
  key: PrivateKey
  file: string
}

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-session-'))
})

function peer(name: string): Peer {
  const key = PrivateKey.generate()
  const file = join(dir, `${name}-${key.publicKey.short.replace(/\//g, '_')}.key`)
  writeFileSync(file, key.toBase64() + '\n', { mode: 0o600 })
  return { key, file }
}

async function signal(): Promise<string> {
  const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
  const { address } = await server.waitForEvent((e) => e.type === 'listening')
  return `grpc://${address}?insecure=true`
}

function session(self: Peer, other: Peer, backend: string, ...extra: string[]): CliProcess {
  return startCli(['session', other.key.publicKey.toString(), '-k', self.file, '-b', backend, '--loopback', '--json', ...extra])
}

const connected = (e: Record<string, any>) => e.type === 'state' && e.state === 'connected'
const endpoint = (c: { address: string; port: number }) => `${c.address}:${c.port}`

describe('session between two processes', () => {
  it('connects: opposite roles by key order, the same pair from both ends, a verified path', async () => {
    const backend = await signal()
    const a = peer('a')
    const b = peer('b')
    const pa = session(a, b, backend, '--exit-on-connected', '--timeout', '30')
    const pb = session(b, a, backend, '--exit-on-connected', '--timeout', '30')
    expect(await pa.exit(40_000)).toBe(0)
    expect(await pb.exit(40_000)).toBe(0)

    const roleA = pa.events.find((e) => e.type === 'role')!
    const roleB = pb.events.find((e) => e.type === 'role')!
    const aSmaller = compareKeyBytes(a.key.publicKey.bytes, b.key.publicKey.bytes) < 0
    expect(roleA.role).toBe(aSmaller ? 'controlling' : 'controlled')
    expect(roleB.role).toBe(aSmaller ? 'controlled' : 'controlling')

    const pairA = pa.events.filter((e) => e.type === 'pair').at(-1)!
    const pairB = pb.events.filter((e) => e.type === 'pair').at(-1)!
    expect(endpoint(pairA.local)).toBe(endpoint(pairB.remote))
    expect(endpoint(pairA.remote)).toBe(endpoint(pairB.local))
    for (const p of [pa, pb]) {
      expect(p.events.some(connected)).toBe(true)
      expect(p.events.find((e) => e.type === 'verified')?.rttMs).toBeGreaterThan(0)
      expect(p.events.at(-1)).toMatchObject({ type: 'state', state: 'closed' })
    }
  }, 60_000)

  it('the second peer starting 5 s later still connects (credentials resent with back-off)', async () => {
    const backend = await signal()
    const a = peer('a')
    const b = peer('b')
    const pa = session(a, b, backend, '--exit-on-connected', '--timeout', '40')
    await pa.waitForEvent((e) => e.type === 'subscribed')
    // The delay is the scenario itself (a peer that comes late), not a synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 5_000))
    const started = Date.now()
    const pb = session(b, a, backend, '--exit-on-connected', '--timeout', '40')
    expect(await pb.exit(45_000)).toBe(0)
    expect(await pa.exit(45_000)).toBe(0)
    const firstOut = Date.parse(pa.events.find((e) => e.type === 'envelope')!.at)
    expect(started - firstOut).toBeGreaterThan(4_500)
    // A kept resending its credentials with back-off while alone.
    expect(pa.events.filter((e) => e.type === 'envelope' && e.direction === 'out' && e.kind === 'credentials' && Date.parse(e.at) < started).length).toBeGreaterThanOrEqual(4)
    expect(pa.events.some(connected) && pb.events.some(connected)).toBe(true)
  }, 60_000)

  it('a peer killed and started again (new credentials): the other restarts its agent and they reconnect', async () => {
    const backend = await signal()
    const a = peer('a')
    const b = peer('b')
    const pa = session(a, b, backend, '--timeout', '60') // stays up
    const pb1 = session(b, a, backend)
    await pa.waitForEvent(connected, 30_000)
    await pb1.waitForEvent(connected, 30_000)
    process.kill(pb1.child.pid!, 'SIGKILL')
    await pb1.exit()

    const pb2 = session(b, a, backend, '--exit-on-connected', '--timeout', '30')
    await pa.waitForEvent((e) => e.type === 'state' && e.state === 'restarting', 30_000)
    expect(await pb2.exit(40_000)).toBe(0)
    const restartAt = pa.events.findIndex((e) => e.type === 'state' && e.state === 'restarting')
    await pa.waitForEvent(() => pa.events.slice(restartAt).some(connected), 30_000)
    const pairs = pa.events.filter((e) => e.type === 'pair')
    const pairB2 = pb2.events.filter((e) => e.type === 'pair').at(-1)!
    await pa.waitForEvent(() => pa.events.filter((e) => e.type === 'pair').some((p) => endpoint(p.remote) === endpoint(pairB2.local)), 10_000)
    expect(pairs.length).toBeGreaterThanOrEqual(1)

    process.kill(pa.child.pid!, 'SIGTERM')
    expect(await pa.exit()).toBe(143)
  }, 90_000)

  it('a peer whose partner never comes exits with the timeout code 4 and says why', async () => {
    const backend = await signal()
    const a = peer('a')
    const b = peer('b')
    const pa = session(a, b, backend, '--exit-on-connected', '--timeout', '3')
    expect(await pa.exit(15_000)).toBe(4)
    // With --json the error is the last NDJSON line on stdout, after the session's own 'closed'.
    expect(pa.events.at(-1)).toMatchObject({ type: 'error', message: 'timed out after 3 s: not connected (state idle)', exit: 4 })
    expect(pa.events.at(-2)).toMatchObject({ type: 'state', state: 'closed' })
  }, 30_000)
})

describe('session on a real terminal', () => {
  it('shows the live view in tmux: role, state, envelopes, the pair and the RTT', async () => {
    const backend = await signal()
    const a = peer('a')
    const b = peer('b')
    const command = `NODE_ENV=production ${process.execPath} ${RUN} session ${b.key.publicKey} -k ${a.file} -b '${backend}' --loopback --timeout 30; sleep 30`
    const terminal = Terminal.open(command, { cols: 120, rows: 50 })
    try {
      const pb = session(b, a, backend, '--exit-on-connected', '--timeout', '30')
      expect(await pb.exit(40_000)).toBe(0)
      const screen = await terminal.waitFor((s) => /path verified/.test(s), 10_000)
      expect(screen, screen).toMatch(/path verified, RTT [\d.]+ ms/)
      expect(screen).toMatch(/role (controlling|controlled) \(our key/)
      expect(screen).toMatch(/state connected/)
      expect(screen).toMatch(/⇒ out credentials \(\d+ B\)/)
      expect(screen).toMatch(/pair host udp 127\.0\.0\.1:\d+ ⇄ host udp 127\.0\.0\.1:\d+/)
      expect(screen).toMatch(/path verified, RTT [\d.]+ ms/)
    } finally {
      terminal.close()
    }
  }, 60_000)
})
