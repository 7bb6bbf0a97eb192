import { credentials, makeGenericClientConstructor, status, type Client, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js'
import { service as healthService } from 'grpc-health-check'
import { afterEach, describe, expect, it } from 'vitest'
import { Envelope, type SignalingClient } from '../src/gen/signaling/signaling.js'
import { parseListen, SignalingServer, type ServerLimits } from '../src/core/server/signaling-server.js'
import { envelopeTo, publish, randomKey, rawClient, subscribe, wire } from './helpers/signaling.js'
import { listServices } from './helpers/reflection.js'
import { waitUntil, withTimeout } from './helpers/wait.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function startServer(limits?: Partial<ServerLimits>, version = '9.8.7-test'): Promise<{ server: SignalingServer; client: SignalingClient }> {
  const server = await SignalingServer.start({ listen: '127.0.0.1:0', limits, version })
  closers.push(() => server.close(500))
  const client = rawClient(server.address)
  closers.push(() => client.close())
  return { server, client }
}

function expectStatus(err: unknown, code: status, detail: RegExp): void {
  const e = err as ServiceError
  expect(e.code, `${e.code} ${e.details}`).toBe(code)
  expect(e.details).toMatch(detail)
}

describe('SignalingServer', () => {
  it('binds an ephemeral port and reports the real address', async () => {
    const { server } = await startServer()
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(server.address).not.toBe('127.0.0.1:0')
  })

  it('parses listen addresses, IPv6 included', () => {
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 })
    expect(parseListen(':8080')).toEqual({ host: '0.0.0.0', port: 8080 })
    expect(() => parseListen('localhost')).toThrow(/not HOST:PORT/)
    expect(() => parseListen('1.2.3.4:70000')).toThrow(/not HOST:PORT/)
  })

  it('sends one empty envelope first, then the envelopes for the key', async () => {
    const { client } = await startServer()
    const key = randomKey()
    const sub = subscribe(client, key)
    const sync = await sub.synced
    expect(Envelope.encode(sync).finish().length).toBe(0)
    expect(sync.sender.length).toBe(0)
    expect(sync.recipient.length).toBe(0)
    expect(sync.contents).toBeUndefined()
    const sent = envelopeTo(key)
    await publish(client, sent)
    const [got] = await sub.waitFor(1)
    expect(wire(got!)).toBe(wire(sent))
    sub.call.cancel()
  })

  it.each([0, 31, 33])('rejects a %i-byte subscribe key with INVALID_ARGUMENT', async (length) => {
    const { client, server } = await startServer()
    const err = await withTimeout(subscribe(client, randomKey(length)).failed, 5000, 'the subscribe error')
    expectStatus(err, status.INVALID_ARGUMENT, new RegExp(`subscribe key is ${length} bytes.*32 bytes`))
    expect(server.stats().subscribers).toBe(0)
  })

  it('rejects publish with a malformed sender or recipient', async () => {
    const { client, server } = await startServer()
    const good = randomKey()
    await expect(publish(client, envelopeTo(good, randomKey(31)))).rejects.toSatisfy((e) => {
      expectStatus(e, status.INVALID_ARGUMENT, /sender is 31 bytes/)
      return true
    })
    await expect(publish(client, envelopeTo(randomKey(33), good))).rejects.toSatisfy((e) => {
      expectStatus(e, status.INVALID_ARGUMENT, /recipient is 33 bytes/)
      return true
    })
    await expect(publish(client, Envelope.create({ sender: good }))).rejects.toSatisfy((e) => {
      expectStatus(e, status.INVALID_ARGUMENT, /recipient is 0 bytes/)
      return true
    })
    expect(server.stats().published).toBe(0)
  })

  it('rejects an envelope over maxEnvelopeBytes with RESOURCE_EXHAUSTED naming the limit', async () => {
    const { client } = await startServer()
    await expect(publish(client, envelopeTo(randomKey(), randomKey(), 100 * 1024))).rejects.toSatisfy((e) => {
      expectStatus(e, status.RESOURCE_EXHAUSTED, /limit of 65536 bytes/)
      return true
    })
    // Just under the limit is fine.
    await publish(client, envelopeTo(randomKey(), randomKey(), 60 * 1024))
  })

  it('drops envelopes nobody is subscribed for, and never replays them', async () => {
    const { client, server } = await startServer()
    const key = randomKey()
    const early = envelopeTo(key)
    await publish(client, early)
    const sub = subscribe(client, key)
    await sub.synced
    const late = envelopeTo(key)
    await publish(client, late)
    await sub.waitFor(1)
    // A second, later envelope proves nothing else was queued in between.
    await publish(client, envelopeTo(key))
    const got = await sub.waitFor(2)
    expect(wire(got[0]!)).toBe(wire(late))
    expect(got.map(wire)).not.toContain(wire(early))
    expect(server.stats()).toMatchObject({ published: 3, delivered: 2, dropped: 0 })
    sub.call.cancel()
  })

  it('fans out to every subscriber of a key, and only to them', async () => {
    const { client, server } = await startServer()
    const key = randomKey()
    const a = subscribe(client, key)
    const b = subscribe(client, key)
    const other = subscribe(client, randomKey())
    await Promise.all([a.synced, b.synced, other.synced])
    expect(server.stats()).toMatchObject({ subscribers: 3, topics: 2 })
    const sent = envelopeTo(key)
    await publish(client, sent)
    expect((await a.waitFor(1)).map(wire)).toEqual([wire(sent)])
    expect((await b.waitFor(1)).map(wire)).toEqual([wire(sent)])
    expect(other.received).toEqual([])
    for (const s of [a, b, other]) s.call.cancel()
  })

  it('stops delivering to a cancelled stream and removes its topic', async () => {
    const { client, server } = await startServer()
    const key = randomKey()
    const sub = subscribe(client, key)
    await sub.synced
    expect(server.stats()).toMatchObject({ subscribers: 1, topics: 1 })
    sub.call.cancel()
    await waitUntil(() => server.stats().subscribers === 0, 5000, 'the server to see the cancel')
    expect(server.stats().topics).toBe(0)
    await publish(client, envelopeTo(key))
    expect(server.stats()).toMatchObject({ published: 1, delivered: 0 })
  })

  it('answers GetBuildInfo with version, os and arch', async () => {
    const { client } = await startServer()
    const info = await new Promise((resolve, reject) => client.getBuildInfo({}, (err, res) => (err ? reject(err) : resolve(res))))
    expect(info).toMatchObject({ version: '9.8.7-test' })
    const { os, arch } = info as { os: string; arch: string }
    expect(os).toBe(process.platform === 'win32' ? 'windows' : process.platform)
    expect(arch).not.toBe('')
  })

  it('serves the standard health check', async () => {
    const { server } = await startServer()
    const Health = makeGenericClientConstructor(healthService as unknown as ServiceDefinition, 'Health')
    const health = new Health(server.address, credentials.createInsecure()) as unknown as Client & {
      check(req: { service: string }, cb: (err: ServiceError | null, res: { status: string }) => void): void
    }
    closers.push(() => health.close())
    const check = (service: string): Promise<string> =>
      new Promise((resolve, reject) => health.check({ service }, (err, res) => (err ? reject(err) : resolve(res.status))))
    expect(await check('')).toBe('SERVING')
    expect(await check('cunicu.signaling.Signaling')).toBe('SERVING')
    await expect(check('no.such.Service')).rejects.toMatchObject({ code: status.NOT_FOUND })
  })

  it.each(['v1', 'v1alpha'])('lists cunicu.signaling.Signaling through reflection %s', async (version) => {
    const { server } = await startServer()
    const names = await listServices(server.address, version as 'v1' | 'v1alpha')
    expect(names).toContain('cunicu.signaling.Signaling')
    expect(names).not.toContain('cunicu.signaling.RelayRegistry')
  })

  it('drops the oldest envelopes of a stuck reader without slowing the others', async () => {
    const limit = 64
    // The publish rate limit is not what this test is about: lift it so 5000 publishes go through at once.
    const { server, client } = await startServer({ queueMaxEnvelopes: limit, publishRatePerSecond: 1e6, publishBurst: 1e6 })
    const key = randomKey()
    // Its own connection, so its full HTTP/2 window cannot hold back the fast reader's.
    const stuckClient = rawClient(server.address, { 'grpc.use_local_subchannel_pool': 1 })
    closers.push(() => stuckClient.close())
    const stuck = subscribe(stuckClient, key)
    await stuck.synced
    stuck.call.pause()
    const fast = subscribe(client, key)
    await fast.synced

    const total = 5000
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < total) {
        next++
        await publish(client, envelopeTo(key))
      }
    }
    // Few publishes in flight: server, readers and publisher share one event loop here, and a burst
    // wider than the queue would (rightly) make even the reading subscriber drop.
    await withTimeout(Promise.all(Array.from({ length: 4 }, worker)), 50_000, `${total} publishes`)
    const got = await fast.waitFor(total, 10_000)
    expect(got.length).toBe(total)
    const stats = server.stats()
    expect(stats.published).toBe(total)
    expect(stats.dropped).toBeGreaterThan(0)
    // Every copy was either handed to a stream, dropped, or is still within the stuck reader's queue bound.
    expect(2 * total - stats.delivered - stats.dropped).toBeLessThanOrEqual(limit)
    expect(stuck.received.length).toBeLessThan(total)
    // Which ones were dropped, not only how many: once it reads again, the stuck reader gets what its queue
    // kept, the newest, so the last envelope published (the fast reader's last) reaches it too.
    const newest = wire(got[total - 1]!)
    stuck.call.resume()
    await waitUntil(() => stuck.received.some((e) => wire(e) === newest), 10_000, 'the stuck reader to get the newest envelope')
    expect(wire(stuck.received.at(-1)!)).toBe(newest)
    stuck.call.cancel()
    fast.call.cancel()
  }, 70_000)

  it('ends open streams with UNAVAILABLE on close, and close is idempotent', async () => {
    const { server, client } = await startServer()
    const sub = subscribe(client, randomKey())
    await sub.synced
    await Promise.all([server.close(500), server.close(500)])
    const err = await withTimeout(sub.failed, 5000, 'the stream to end')
    expectStatus(err, status.UNAVAILABLE, /shutting down/)
    expect(server.stats()).toMatchObject({ subscribers: 0, topics: 0 })
  })
})
