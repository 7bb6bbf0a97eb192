// multicast:// backend. Every datagram these tests send stays inside a network namespace the test makes
// itself: the outer run (root, as in CI) creates one, turns on lo there (with the MULTICAST flag) and runs
// this same file again inside it (CUNICU_TEST_NETNS set), where the sending tests run. The host's own
// interfaces never see a datagram, whatever the backend does with its interface option.
import { execFileSync, spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { randomBytes, randomInt } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BackendError, openBackend, type Backend } from '../src/core/backend.js'
import { MulticastBackend, parseMulticastUrl } from '../src/core/backends/multicast.js'
import { PrivateKey } from '../src/core/keys.js'
import { Envelope, Message } from '../src/gen/signaling/signaling.js'
import { runScenario } from './helpers/acceptance.js'
import { killAll, ROOT, startCli } from './helpers/cli.js'
import { deferred, withTimeout } from './helpers/wait.js'

const NETNS = process.env.CUNICU_TEST_NETNS
const inside = NETNS !== undefined && NETNS !== ''

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await killAll()
})

/** A fresh organisation-local group and port per test, so parallel runs never hear each other. */
function groupUrl(): string {
  return `multicast://239.255.${randomInt(1, 255)}.${randomInt(1, 255)}:${randomInt(20000, 60000)}?interface=lo&loopback=true`
}

const udpSockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length

/**
 * libuv frees a closed handle only after close()'s callback, and the previous test's sockets may still be
 * closing: polls (on timers, so the loop's close phase runs between checks) until the count is `target`,
 * or, without a target, until it stops changing. Returns the count.
 */
async function socketsSettle(target?: number): Promise<number> {
  const deadline = Date.now() + 2000
  let last = udpSockets()
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const now = udpSockets()
    if (target === undefined ? now === last : now === target) return now
    if (Date.now() > deadline) throw new Error(`UDP sockets: ${now}, expected ${target ?? 'a stable count'}`)
    last = now
  }
}

describe('multicast URL', () => {
  const parse = (text: string) => parseMulticastUrl(new URL(text))

  it('parses group, port, interface (name or address) and loopback', () => {
    expect(parse('multicast://239.0.0.1:9999?interface=lo&loopback=true')).toEqual({
      group: '239.0.0.1',
      port: 9999,
      family: 4,
      interfaceAddress: '127.0.0.1',
      loopback: true,
    })
    expect(parse('multicast://239.0.0.1:9999?interface=127.0.0.1')).toMatchObject({ interfaceAddress: '127.0.0.1', loopback: false })
    expect(parse('multicast://[ff02::1:c]:9999?interface=lo')).toMatchObject({ group: 'ff02::1:c', family: 6, interfaceAddress: '::%lo' })
    expect(parse('multicast://239.1.2.3:1')).toMatchObject({ interfaceAddress: undefined, loopback: false })
  })

  it.each([
    ['multicast://239.0.0.1?interface=lo', /a port is required/],
    ['multicast://10.0.0.1:9999', /not a multicast address/],
    ['multicast://example.org:9999', /not an IP multicast group/],
    ['multicast://239.0.0.1:9999?interface=no-such-if0', /no network interface "no-such-if0"/],
    ['multicast://239.0.0.1:9999?interface=::1', /not IPv4 like the group/],
    ['multicast://239.0.0.1:9999?loopback=yes', /loopback must be true or false/],
    ['multicast://239.0.0.1:9999?ttl=3', /unknown parameter "ttl"/],
  ])('rejects %s', async (url, message) => {
    const attempt = openBackend(url)
    await expect(attempt).rejects.toThrow(BackendError)
    await expect(attempt).rejects.toThrow(message)
  })
})

describe.skipIf(inside)('multicast in a network namespace of its own', () => {
  it('runs the sending tests of this file inside a fresh namespace (lo up, MULTICAST on)', async () => {
    if (process.getuid?.() !== 0) throw new Error('multicast tests need root to create a network namespace (ip netns add); CI runs as root')
    const ns = `cunicu-ts-mc-${process.pid}-${randomInt(1e6)}`
    try {
      execFileSync('ip', ['netns', 'add', ns])
    } catch (err) {
      throw new Error(`cannot create a network namespace (Debian package iproute2, and root): ${(err as Error).message}`)
    }
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up', 'multicast', 'on'])
      const vitest = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs')
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, vitest, 'run', 'test/multicast.test.ts', '--reporter=default'], {
        cwd: ROOT,
        env: { ...process.env, CUNICU_TEST_NETNS: ns, CI: 'true', NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let output = ''
      child.stdout.on('data', (d: Buffer) => (output += d.toString()))
      child.stderr.on('data', (d: Buffer) => (output += d.toString()))
      const timer = setTimeout(() => child.kill('SIGKILL'), 170_000)
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
      clearTimeout(timer)
      if (code !== 0) throw new Error(`multicast tests inside namespace ${ns} failed (exit ${code}):\n${output}`)
      // The inner run must really have run the sending tests, not skipped them.
      const passed = Number(/Tests\s+(\d+) passed/.exec(output.replace(/\x1b\[[0-9;]*m/g, ''))?.[1] ?? 0)
      expect(passed, output).toBeGreaterThanOrEqual(4 + 8)
    } finally {
      execFileSync('ip', ['netns', 'del', ns])
    }
  }, 180_000)
})

describe.runIf(inside)('multicast backend (inside the test namespace)', () => {
  it('runs the cunīcu acceptance scenario over one group: every handler gets its messages exactly once', async () => {
    const { backends } = await runScenario(groupUrl(), (b) => closers.push(() => b.close()))
    for (const b of backends) expect((b as MulticastBackend).droppedDatagrams).toBe(0)
  })

  it('drops garbage datagrams silently and keeps delivering', async () => {
    const url = groupUrl()
    const { group, port } = parseMulticastUrl(new URL(url))
    const backend = (await openBackend(url)) as MulticastBackend
    closers.push(() => backend.close())
    const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
    const got = deferred<number>()
    const errors: unknown[] = []
    await backend.subscribe({ ours: alice, theirs: bob.publicKey }, { onMessage: (m) => got.resolve(m.message.candidate?.port ?? -1), onError: (e) => errors.push(e) })

    const raw = createSocket({ type: 'udp4', reuseAddr: true })
    closers.push(() => new Promise<void>((resolve) => raw.close(() => resolve())))
    await new Promise<void>((resolve) => raw.bind(0, '127.0.0.1', resolve))
    raw.setMulticastInterface('127.0.0.1')
    const garbage = [
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), // not protobuf
      randomBytes(300),
      Buffer.from(Envelope.encode(Envelope.create({ sender: randomBytes(5), recipient: alice.publicKey.bytes })).finish()), // bad sender length
      Buffer.alloc(0),
    ]
    for (const datagram of garbage) await new Promise<void>((resolve, reject) => raw.send(datagram, port, group, (err) => (err ? reject(err) : resolve())))
    await backend.publish(bob, alice.publicKey, Message.create({ candidate: { port: 7 } }))
    expect(await withTimeout(got.promise, 5000, 'the real message after the garbage')).toBe(7)
    // Random bytes may happen to parse as an Envelope without 32-byte keys: dropped either way.
    expect(backend.droppedDatagrams).toBeGreaterThanOrEqual(3)
    expect(errors).toEqual([])
  })

  it('close() leaves no socket behind and is idempotent', async () => {
    const before = await socketsSettle()
    const backends: Backend[] = []
    for (let i = 0; i < 3; i++) backends.push(await openBackend(groupUrl()))
    const key = PrivateKey.generate()
    await backends[0]!.subscribe({ ours: key, theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} })
    await backends[1]!.publish(PrivateKey.generate(), key.publicKey, Message.create({}))
    expect(udpSockets()).toBe(before + 3)
    await Promise.all(backends.map((b) => b.close()))
    await Promise.all(backends.map((b) => b.close()))
    // libuv releases a closed handle on the next loop turn, after close()'s callback.
    await socketsSettle(before)
    await expect(backends[0]!.publish(key, key.publicKey, Message.create({}))).rejects.toThrow(/closed/)
  })

  it('two `session` processes connect over multicast alone (no server)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-mc-'))
    const [a, b] = [PrivateKey.generate(), PrivateKey.generate()]
    const files = [a, b].map((k, i) => {
      const file = join(dir, `${i}.key`)
      writeFileSync(file, k.toBase64() + '\n', { mode: 0o600 })
      return file
    })
    const url = groupUrl()
    const session = (self: string, other: PrivateKey) =>
      startCli(['session', other.publicKey.toString(), '-k', self, '-b', url, '--loopback', '--exit-on-connected', '--timeout', '30', '--json'])
    const pa = session(files[0]!, b)
    const pb = session(files[1]!, a)
    expect(await pa.exit(40_000), pa.stderr).toBe(0)
    expect(await pb.exit(40_000), pb.stderr).toBe(0)
    for (const p of [pa, pb]) {
      expect(p.events.some((e) => e.type === 'state' && e.state === 'connected')).toBe(true)
      expect(p.events.some((e) => e.type === 'envelope' && e.direction === 'in')).toBe(true)
    }
  }, 60_000)
})
