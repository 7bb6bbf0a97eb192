// multicast:// backend, sending tests: run only by test/multicast.test.ts, inside a network namespace it
// creates (CUNICU_TEST_NETNS set), so that every datagram stays in that namespace.
import { createSocket } from 'node:dgram'
import { randomBytes, randomInt } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { Backend } from '../../src/core/backend.js'
import { openBackend } from '../../src/core/backends/index.js'
import { MulticastBackend, parseMulticastUrl } from '../../src/core/backends/multicast.js'
import { PrivateKey } from '../../src/core/keys.js'
import { Envelope, Message } from '../../src/gen/signaling/signaling.js'
import { runScenario } from '../helpers/acceptance.js'
import { killAll, startCli } from '../helpers/cli.js'
import { deferred, withTimeout } from '../helpers/wait.js'

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

if (!inside) throw new Error('run through test/multicast.test.ts, which makes the network namespace these tests send in')

describe('multicast backend (inside the test namespace)', () => {
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
