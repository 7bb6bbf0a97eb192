// Issue 11 acceptance: a rolling restart of two `signal --cluster` instances. Two sessions list both
// instances (-b i1 -b i2); SIGTERM instance 1 while a publisher hammers it: instance 1 stops accepting,
// sends GOAWAY, lets calls in flight finish and flushes, ends its streams (clients reconnect) and exits
// 143 only after that drain. No publish it accepted is lost, neither for its own subscriber nor for
// instance 2's; the sessions stay connected on instance 2, and reconnect to instance 1 when it is back.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ServiceError } from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, startCli, type CliProcess } from './helpers/cli.js'
import { unusedPort } from './helpers/net.js'
import { redisForFile } from './helpers/redis.js'
import { envelopeTo, publish, randomKey, rawClient, subscribe } from './helpers/signaling.js'
import { waitUntil } from './helpers/wait.js'

const redis = redisForFile()
afterEach(killAll)

const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-rolling-'))
function keyFile(name: string): { key: PrivateKey; file: string } {
  const key = PrivateKey.generate()
  const file = join(dir, `${name}.key`)
  writeFileSync(file, key.toBase64() + '\n', { mode: 0o600 })
  return { key, file }
}

async function instance(port: number): Promise<CliProcess> {
  const server = startCli(['signal', '--listen', `127.0.0.1:${port}`, '--cluster', redis.url, '--drain-timeout', '5', '--json'])
  await server.waitForEvent((e) => e.type === 'listening', 20_000)
  return server
}

const id = (env: { contents?: { nonce: Uint8Array } }) => Buffer.from(env.contents!.nonce).toString('hex')

describe('rolling restart of two --cluster instances', () => {
  it('SIGTERM drains instance 1 (exit 143): no accepted publish is lost, sessions stay connected and come back to it', async () => {
    const [port1, port2] = [await unusedPort(), await unusedPort()]
    let one = await instance(port1)
    const two = await instance(port2)
    const backends = [`grpc://127.0.0.1:${port1}?insecure=true`, `grpc://127.0.0.1:${port2}?insecure=true`]
    const a = keyFile('a')
    const b = keyFile('b')
    const session = (self: typeof a, other: typeof a) =>
      startCli(['session', other.key.publicKey.toString(), '-k', self.file, ...backends.flatMap((u) => ['-b', u]), '--loopback', '--timeout', '120', '--json'])
    const pa = session(a, b)
    const pb = session(b, a)
    await Promise.all([pa, pb].map((p) => p.waitForEvent((e) => e.type === 'verified', 60_000)))

    // A subscriber on each instance, for one key; a publisher on instance 1.
    const key = randomKey()
    const onOne = rawClient(`127.0.0.1:${port1}`, { 'grpc.use_local_subchannel_pool': 1 })
    const onTwo = rawClient(`127.0.0.1:${port2}`, { 'grpc.use_local_subchannel_pool': 1 })
    const publisher = rawClient(`127.0.0.1:${port1}`, { 'grpc.use_local_subchannel_pool': 1 })
    try {
      const s1 = subscribe(onOne, key)
      const s2 = subscribe(onTwo, key)
      await Promise.all([s1.synced, s2.synced])
      const s1Ended = s1.failed
      const accepted: string[] = []
      const failures: ServiceError[] = []
      let stop = false
      const sender = randomKey()
      const worker = async () => {
        while (!stop && accepted.length + failures.length < 50_000) {
          const envelope = envelopeTo(key, sender)
          try {
            await publish(publisher, envelope)
            accepted.push(id(envelope))
          } catch (err) {
            failures.push(err as ServiceError)
            if (failures.length >= 20) stop = true
          }
        }
      }
      const workers = Promise.all(Array.from({ length: 8 }, worker))
      await waitUntil(() => accepted.length >= 300, 30_000, '300 accepted publishes before the restart')
      const sessionEventsBefore = { a: pa.events.length, b: pb.events.length }
      const sigtermAt = Date.now()
      process.kill(one.child.pid!, 'SIGTERM')
      const exitCode = await one.exit(20_000)
      stop = true
      await workers
      expect(exitCode).toBe(143)
      // The drain happened before the exit: its log lines, then the stopped event.
      const drainLog = one.stderr.split('\n').filter((l) => l.includes('"event":"drain"'))
      expect(drainLog.map((l) => JSON.parse(l).phase)).toEqual(['started', 'done'])
      expect(one.events.at(-1)).toMatchObject({ type: 'stopped' })
      // (The sessions' own envelopes went through instance 1 too.)
      expect(one.events.at(-1)!.published).toBeGreaterThanOrEqual(accepted.length)
      // Every failed publish failed to reach instance 1 at all (it had stopped accepting), none mid-call.
      expect(failures.filter((f) => !/ECONNREFUSED/.test(f.details))).toEqual([])
      // Instance 1's own subscriber got every accepted envelope before its stream ended with UNAVAILABLE.
      expect((await s1Ended).code).toBe(14)
      const got1 = new Set(s1.received.map(id))
      expect(accepted.filter((x) => !got1.has(x))).toEqual([])
      // Instance 2's subscriber got every accepted envelope through Redis.
      await waitUntil(() => s2.received.length >= accepted.length, 15_000, `instance 2's subscriber to get ${accepted.length} envelopes (has ${s2.received.length})`)
      const got2 = new Set(s2.received.map(id))
      expect(accepted.filter((x) => !got2.has(x))).toEqual([])
      console.log(`rolling restart: ${accepted.length} publishes accepted by instance 1 before it drained, all delivered on both instances; publisher then failed with ${[...new Set(failures.map((f) => f.code))].join(', ')}`)

      // The sessions: instance 1's backend reconnects; no session left its connected state.
      for (const p of [pa, pb]) {
        await p.waitForEvent((e) => e.type === 'backend' && e.status.state === 'reconnecting' && String(e.status.backend).includes(`:${port1}`), 15_000)
        expect(p.child.exitCode).toBeNull()
      }
      const stateChanges = [...pa.events.slice(sessionEventsBefore.a), ...pb.events.slice(sessionEventsBefore.b)].filter((e) => e.type === 'state')
      expect(stateChanges).toEqual([])
      // Instance 1 comes back on its port (the second half of the rolling restart): the sessions reconnect to it.
      one = await instance(port1)
      for (const p of [pa, pb]) {
        await p.waitForEvent((e) => e.type === 'backend' && e.status.state === 'connected' && String(e.status.backend).includes(`:${port1}`) && Date.parse(e.at) > sigtermAt, 30_000)
      }
      expect([...pa.events.slice(sessionEventsBefore.a), ...pb.events.slice(sessionEventsBefore.b)].filter((e) => e.type === 'state')).toEqual([])
      for (const p of [pa, pb]) process.kill(p.child.pid!, 'SIGTERM')
      for (const p of [pa, pb]) await p.exit(15_000)
      for (const p of [one, two]) process.kill(p.child.pid!, 'SIGTERM')
      expect(await one.exit(20_000)).toBe(143)
      expect(await two.exit(20_000)).toBe(143)
      s2.call.cancel()
    } finally {
      for (const c of [onOne, onTwo, publisher]) c.close()
    }
  }, 180_000)
})
