// signal --cluster: several SignalingServer instances serving one key space through a real redis-server
// (Debian package redis-server) on 127.0.0.1, started and killed by PID here.
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { channelName } from '../src/core/server/cluster/channel.js'
import { parseClusterUrl } from '../src/core/server/cluster/cluster-url.js'
import { openCluster } from '../src/core/server/cluster/open-cluster.js'
import { SignalingServer } from '../src/core/server/signaling-server.js'
import { Message } from '../src/gen/signaling/signaling.js'
import { PEERS, runScenario } from './helpers/acceptance.js'
import { runCli, startCli } from './helpers/cli.js'
import { clusterKit, recorder, twoSignalProcesses, waitFor } from './helpers/cluster-kit.js'
import { unusedPort } from './helpers/net.js'
import { RedisServer } from './helpers/redis.js'
import { selfSignedCert } from './helpers/tls.js'

let redis: RedisServer
beforeAll(async () => {
  redis = await RedisServer.start()
})
afterAll(async () => {
  await redis?.kill()
})

const { closers, instance: instanceOn, backend } = clusterKit()
const instance = () => instanceOn(redis.url)

describe('signal --cluster (Redis Pub/Sub)', () => {
  it('runs the cunīcu acceptance scenario with the peers spread over 3 instances: each handler gets each message once', async () => {
    const instances = [await instance(), await instance(), await instance()]
    await runScenario(
      instances.map((i) => i.url),
      (b) => closers.push(() => b.close()),
    )
    const stats = instances.map((i) => i.server.stats())
    const sum = (f: (s: (typeof stats)[number]) => number) => stats.reduce((n, s) => n + f(s), 0)
    // 2 rounds of n(n-1) envelopes, each delivered to exactly one subscriber stream (one per peer).
    expect(sum((s) => s.published)).toBe(2 * PEERS * (PEERS - 1))
    expect(sum((s) => s.delivered)).toBe(2 * PEERS * (PEERS - 1))
    expect(sum((s) => s.dropped)).toBe(0)
    for (const s of stats) {
      expect(s.cluster).toMatchObject({ connected: true, publishFailed: 0, outages: 0 })
      expect(s.cluster!.channels).toBe(s.topics)
    }
    // What came through Redis: exactly the envelopes whose recipient sits on another instance than the sender.
    let crossing = 0
    for (let i = 0; i < PEERS; i++) for (let j = 0; j < PEERS; j++) if (i !== j && i % 3 !== j % 3) crossing++
    expect(sum((s) => s.cluster!.received)).toBe(2 * crossing)
  })

  it("an instance subscribes to a key's channel only while it has local subscribers for it", async () => {
    const [a, b] = [await instance(), await instance()]
    const alice = PrivateKey.generate()
    const bob = PrivateKey.generate()
    const channel = channelName(alice.publicKey.bytes)
    expect((await redis.numsub(channel)).get(channel)).toBe(0)

    const onA = await backend(a.url)
    const handler = recorder()
    await onA.subscribe({ ours: alice, theirs: bob.publicKey }, handler)
    // One connection: instance a's. Instance b has no subscriber for alice, so it is not subscribed.
    expect((await redis.numsub(channel)).get(channel)).toBe(1)
    expect(a.server.stats().cluster!.channels).toBe(1)
    expect(b.server.stats().cluster!.channels).toBe(0)
    expect(await redis.channels('cunicu:env:*')).toEqual([channel])

    // A second subscriber for the same key on b: b subscribes too; both instances deliver.
    const onB = await backend(b.url)
    const handlerB = recorder()
    await onB.subscribe({ ours: alice, theirs: bob.publicKey }, handlerB)
    expect((await redis.numsub(channel)).get(channel)).toBe(2)
    const publisher = await backend(b.url)
    await publisher.publish(bob, alice.publicKey, Message.create({ candidate: { port: 1 } }))
    await handler.wait(1)
    await handlerB.wait(1)

    // Last local subscriber gone: UNSUBSCRIBE.
    await onA.unsubscribe({ ours: alice, theirs: bob.publicKey }, handler)
    await waitFor(async () => (await redis.numsub(channel)).get(channel) === 1, 'instance a to unsubscribe')
    expect(a.server.stats().cluster!.channels).toBe(0)
    await onB.unsubscribe({ ours: alice, theirs: bob.publicKey }, handlerB)
    await waitFor(async () => (await redis.channels('cunicu:env:*')).length === 0, 'no cunicu channel left')
    expect(handler.ports).toEqual([1])
    expect(handlerB.ports).toEqual([1])
  })

  it('a publish on another instance right after the subscription went live is delivered (sync waits for SUBSCRIBE)', async () => {
    const [a, b] = [await instance(), await instance()]
    const onA = await backend(a.url)
    const onB = await backend(b.url)
    const sender = PrivateKey.generate()
    // Redis holds every command for 300 ms: the subscription may only go live once SUBSCRIBE was answered.
    const paused = PrivateKey.generate()
    const pausedHandler = recorder()
    await redis.command('CLIENT', 'PAUSE', '300', 'ALL')
    const started = Date.now()
    await onA.subscribe({ ours: paused, theirs: sender.publicKey }, pausedHandler)
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    await onB.publish(sender, paused.publicKey, Message.create({ candidate: { port: 1000 } }))
    await pausedHandler.wait(1)

    for (let round = 0; round < 20; round++) {
      const key = PrivateKey.generate()
      const handler = recorder()
      await onA.subscribe({ ours: key, theirs: sender.publicKey }, handler)
      await onB.publish(sender, key.publicKey, Message.create({ candidate: { port: round } }))
      await handler.wait(1)
      expect(handler.ports).toEqual([round])
    }
  })

  it('losing Redis is reported and recovered from: instances reconnect and resubscribe', async () => {
    const [a, b] = [await instance(), await instance()]
    const alice = PrivateKey.generate()
    const bob = PrivateKey.generate()
    const channel = channelName(alice.publicKey.bytes)
    const onA = await backend(a.url)
    const handler = recorder()
    await onA.subscribe({ ours: alice, theirs: bob.publicKey }, handler)
    const publisherB = await backend(b.url)
    const publisherA = await backend(a.url)
    await publisherB.publish(bob, alice.publicKey, Message.create({ candidate: { port: 1 } }))
    await handler.wait(1)

    const lost = [a.next('lost'), b.next('lost')]
    await redis.kill()
    const [lostA] = await Promise.all(lost)
    expect(lostA).toMatchObject({ state: 'lost', url: redis.url })
    expect(a.server.stats().cluster).toMatchObject({ connected: false, outages: 1 })
    expect(b.server.stats().cluster).toMatchObject({ connected: false, outages: 1 })

    // Meanwhile each instance still serves its own subscribers.
    await publisherA.publish(bob, alice.publicKey, Message.create({ candidate: { port: 2 } }))
    await handler.wait(2)
    // ...and a publish on b cannot reach a: counted as failed, not queued for later.
    await publisherB.publish(bob, alice.publicKey, Message.create({ candidate: { port: 99 } }))
    expect(b.server.stats().cluster!.publishFailed).toBeGreaterThanOrEqual(1)

    const recovered = [a.next('recovered'), b.next('recovered')]
    await redis.start()
    await Promise.all(recovered)
    expect(a.server.stats().cluster).toMatchObject({ connected: true, channels: 1 })
    // The live channel was subscribed again on the new server.
    expect((await redis.numsub(channel)).get(channel)).toBe(1)

    await publisherB.publish(bob, alice.publicKey, Message.create({ candidate: { port: 3 } }))
    await handler.wait(3)
    expect(handler.ports).toEqual([1, 2, 3])
  }, 60_000)

  it('publishes Redis never answered count as failed when the connection drops, and flush() then resolves', async () => {
    const cluster = await openCluster(parseClusterUrl(redis.url), { deliver: () => {} })
    try {
      // Redis holds every reply: the publishes are written, none is answered.
      await redis.command('CLIENT', 'PAUSE', '5000', 'ALL')
      for (let i = 0; i < 5; i++) cluster.publish(new Uint8Array(32).fill(i), Buffer.from(`envelope ${i}`))
      let flushed = false
      const flush = cluster.flush().then(() => (flushed = true))
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(flushed).toBe(false)
      await redis.kill()
      await flush
      expect(cluster.stats()).toMatchObject({ published: 5, publishFailed: 5, connected: false })
    } finally {
      await cluster.close()
      await redis.start()
    }
  })

  it('refuses to start when Redis is unreachable, with the URL in the message', async () => {
    const port = await unusedPort()
    await expect(SignalingServer.start({ listen: '127.0.0.1:0', cluster: parseClusterUrl(`redis://127.0.0.1:${port}`) })).rejects.toThrow(
      new RegExp(`cluster redis://127.0.0.1:${port} unreachable`),
    )
  })
})

/** Alice subscribes on the signal at `subscribeAt`, Bob publishes `port` to her at `publishAt`: what she got. */
async function relayOnce(subscribeAt: string, publishAt: string, port: number): Promise<number[]> {
  const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
  const subscriber = await backend(`grpc://${subscribeAt}?insecure=true`)
  const publisher = await backend(`grpc://${publishAt}?insecure=true`)
  const handler = recorder()
  await subscriber.subscribe({ ours: alice, theirs: bob.publicKey }, handler)
  await publisher.publish(bob, alice.publicKey, Message.create({ candidate: { port } }))
  await handler.wait(1)
  await Promise.all([subscriber.close(), publisher.close()])
  return handler.ports
}

describe('signal --cluster processes', () => {
  it('two signal processes relay to each other; a plain signal never loads the Redis client', async () => {
    const trace = join(mkdtempSync(join(tmpdir(), 'cunicu-ts-cluster-')), 'imports.txt')
    const traceHook = new URL('./helpers/trace-imports.mjs', import.meta.url).pathname
    const plain = startCli(['signal', '--listen', '127.0.0.1:0', '--json'], { env: { NODE_OPTIONS: `--import ${traceHook}`, TRACE_IMPORTS_FILE: trace } })
    const {
      processes: [one, two],
      addresses: [addrOne, addrTwo],
    } = await twoSignalProcesses(redis.url)
    await plain.waitForEvent((e) => e.type === 'listening')
    for (const p of [one, two]) expect(p.events[0]).toMatchObject({ type: 'cluster', state: 'connected', url: redis.url })

    expect(await relayOnce(addrOne, addrTwo, 5)).toEqual([5])

    for (const p of [plain, one, two]) process.kill(p.child.pid!, 'SIGTERM')
    for (const p of [plain, one, two]) expect(await p.exit(), p.stderr).toBe(143)
    expect(one.events.find((e) => e.type === 'stopped')?.cluster).toMatchObject({ received: 1, connected: false })
    expect(two.events.find((e) => e.type === 'stopped')?.cluster).toMatchObject({ published: 1 })
    const loaded = readFileSync(trace, 'utf8')
    expect(loaded).toContain('signaling-server') // the trace works
    // Module paths, not the checkout's (a worktree may be named after Redis).
    expect(loaded).not.toMatch(/node_modules\/(@redis\/|redis\/)|cluster\/redis-/)
  }, 60_000)

  it('rediss://: two signal processes relay to each other through a Redis that speaks only TLS; a certificate they do not trust is refused (exit 3)', async () => {
    const tls = selfSignedCert()
    closers.push(() => tls.cleanup())
    const tlsOnly = await RedisServer.start(undefined, [], tls)
    closers.push(() => tlsOnly.kill())
    const url = tlsOnly.url
    // The test's own CA, the way an operator would add one to Node's trust store.
    const trusted = { NODE_EXTRA_CA_CERTS: tls.certFile }
    const {
      processes: [one, two],
      addresses: [addrOne, addrTwo],
    } = await twoSignalProcesses(url, { env: trusted })
    for (const p of [one, two]) expect(p.events[0]).toMatchObject({ type: 'cluster', state: 'connected', url })
    expect(await relayOnce(addrOne, addrTwo, 7)).toEqual([7])
    for (const p of [one, two]) process.kill(p.child.pid!, 'SIGTERM')
    for (const p of [one, two]) expect(await p.exit(), p.stderr).toBe(143)

    // Without that CA the certificate is self-signed and unknown: no connection, and the reason says so.
    const untrusted = await runCli(['signal', '--listen', '127.0.0.1:0', '--cluster', url], { env: { NODE_EXTRA_CA_CERTS: undefined } })
    console.log(`rediss:// with an untrusted certificate: ${untrusted.stderr.trim()}`)
    expect(untrusted.code).toBe(3)
    expect(untrusted.stderr).toContain(`cluster ${url} unreachable`)
    expect(untrusted.stderr).toMatch(/self[- ]signed certificate/i)
  }, 60_000)

  it('signal --cluster with Redis unreachable exits 3 and names the URL', async () => {
    const port = await unusedPort()
    const result = await runCli(['signal', '--listen', '127.0.0.1:0', '--cluster', `redis://127.0.0.1:${port}`])
    expect(result.code).toBe(3)
    expect(result.stderr).toContain(`cluster redis://127.0.0.1:${port} unreachable`)
  })

  it('signal --cluster with a URL of another scheme is bad input: exit 2, one line naming it', async () => {
    const result = await runCli(['signal', '--listen', '127.0.0.1:0', '--cluster', 'memcached://127.0.0.1:11211'])
    expect(result.code).toBe(2)
    expect(result.stderr).toBe('Error: cluster "memcached://127.0.0.1:11211": unknown scheme "memcached:" (known: redis:, rediss:, redis-cluster:, rediss-cluster:)\n')
  })
})
