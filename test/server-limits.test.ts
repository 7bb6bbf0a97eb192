// Every limit of the signaling server, and the status that answers a client past it. The server runs on
// loopback; "a connection" is a grpc-js client with its own subchannel pool (one HTTP/2 connection).
import { once } from 'node:events'
import { connect as http2Connect } from 'node:http2'
import { status, type ServiceError } from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import { ConnectionLimits } from '../src/core/server/connection-limits.js'
import { DEFAULT_LIMITS, SignalingServer, type ServerLimits } from '../src/core/server/signaling-server.js'
import { TokenBucket } from '../src/core/server/token-bucket.js'
import { Envelope, type SignalingClient } from '../src/gen/signaling/signaling.js'
import { envelopeTo, publish, rawClient, randomKey, subscribe, type Subscription } from './helpers/signaling.js'
import { killAll, runCli, startCli } from './helpers/cli.js'
import { waitUntil, withTimeout } from './helpers/wait.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await killAll()
})

interface Started {
  server: SignalingServer
  /** A new client on its own HTTP/2 connection. */
  connection(): SignalingClient
  /** Moves the rate limiter's clock forward; it stands still otherwise, so a slow machine cannot refill a bucket. */
  advance(ms: number): void
}

async function startServer(limits: Partial<ServerLimits> = {}): Promise<Started> {
  let now = 0
  const server = await SignalingServer.start({ listen: '127.0.0.1:0', limits, clock: () => now })
  closers.push(() => server.close(200))
  return {
    server,
    connection: () => {
      const client = rawClient(server.address, { 'grpc.use_local_subchannel_pool': 1 })
      closers.push(() => client.close())
      return client
    },
    advance: (ms) => (now += ms),
  }
}

function expectStatus(err: unknown, code: status, detail: RegExp): void {
  const e = err as ServiceError
  expect(e.code, `${e.code} ${e.details}`).toBe(code)
  expect(e.details).toMatch(detail)
}

async function refused(sub: Subscription): Promise<ServiceError> {
  return withTimeout(sub.failed, 5000, 'the refusal')
}

const publishError = (client: SignalingClient, envelope: Envelope): Promise<unknown> => publish(client, envelope).then(() => undefined, (e: unknown) => e)

describe('TokenBucket (injected clock, no sleeps)', () => {
  it('allows a burst, then the rate, never more than the burst', () => {
    let now = 0
    const bucket = new TokenBucket(10, 3, () => now)
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, true, false])
    now += 99
    expect(bucket.tryTake()).toBe(false) // 0.99 tokens
    now += 1
    expect(bucket.tryTake()).toBe(true) // 100 ms at 10/s = one token
    expect(bucket.tryTake()).toBe(false)
    now += 60_000
    expect(bucket.tokens).toBe(3)
    expect(bucket.full).toBe(true)
  })

  it('sustains exactly the rate over a long run', () => {
    let now = 0
    const bucket = new TokenBucket(200, 400, () => now)
    let taken = 0
    for (let ms = 0; ms < 10_000; ms++) {
      now = ms
      while (bucket.tryTake()) taken++
    }
    // The burst, plus 200/s for the 9.999 s after the start.
    expect(taken).toBe(400 + Math.floor((9_999 * 200) / 1000))
  })

  it('ignores a clock going backwards instead of draining', () => {
    let now = 1000
    const bucket = new TokenBucket(1, 2, () => now)
    bucket.tryTake()
    now = 0
    expect(bucket.tokens).toBe(1)
    now = 1000
    expect(bucket.tokens).toBe(2)
  })

  it('rejects a rate or burst that could never admit anything', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(RangeError)
    expect(() => new TokenBucket(1, 0)).toThrow(RangeError)
  })
})

describe('ConnectionLimits', () => {
  it('counts subscriptions per connection and forgets idle connections', () => {
    let now = 0
    const limits = new ConnectionLimits({ maxSubscriptions: 2, publishRatePerSecond: 1, publishBurst: 1, subscribeRatePerSecond: 1, subscribeBurst: 1 }, () => now)
    expect(limits.admitSubscription('a:1')).toBeUndefined()
    expect(limits.admitSubscription('a:1')).toBeUndefined()
    expect(limits.admitSubscription('a:1')).toMatch(/subscription limit of 2 per connection reached \(signal --max-subscriptions-per-connection\)/)
    expect(limits.admitSubscription('b:2')).toBeUndefined()
    limits.releaseSubscription('a:1')
    expect(limits.admitSubscription('a:1')).toBeUndefined()
    for (const peer of ['a:1', 'a:1', 'b:2']) limits.releaseSubscription(peer)
    expect(limits.size).toBe(0)
    // A publish-only connection stays until its bucket is full again, then a sweep forgets it.
    expect(limits.admitPublish('c:3')).toBeUndefined()
    expect(limits.admitPublish('c:3')).toMatch(/publish rate limit of 1\/s per connection exceeded/)
    now += 1000
    for (let i = 0; i < 1024; i++) limits.admitPublish(`d:${i}`)
    expect(limits.size).toBeLessThanOrEqual(1024)
    expect(limits.subscriptions('c:3')).toBe(0)
  })
})

describe('server limits over loopback', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_LIMITS).toMatchObject({
      maxEnvelopeBytes: 65536,
      maxSubscriptionsPerConnection: 64,
      maxStreams: 20_000,
      maxConnectionStreams: 256,
      publishRatePerSecond: 200,
      publishBurst: 400,
      subscribeRatePerSecond: 20,
      subscribeBurst: 64,
      maxConnections: 20_000,
      maxConnectionsPerIp: 256,
      handshakeTimeoutMs: 10_000,
      idleTimeoutMs: 300_000,
      maxAuthFailures: 10,
    })
  })

  it('refuses subscriptions past the per-connection limit with RESOURCE_EXHAUSTED, other connections unaffected', async () => {
    const { server, connection } = await startServer({ maxSubscriptionsPerConnection: 3 })
    const first = connection()
    const subs = [0, 1, 2].map(() => subscribe(first, randomKey()))
    await Promise.all(subs.map((s) => s.synced))
    expectStatus(await refused(subscribe(first, randomKey())), status.RESOURCE_EXHAUSTED, /subscription limit of 3 per connection reached \(signal --max-subscriptions-per-connection\)/)
    const other = subscribe(connection(), randomKey())
    await other.synced
    // Giving one back makes room on that connection again.
    subs[0]!.call.cancel()
    await waitUntil(() => server.stats().subscribers === 3, 5000, 'the cancel to reach the server')
    const again = subscribe(first, randomKey())
    await again.synced
    expect(server.stats()).toMatchObject({ subscribers: 4, refusedSubscribes: 1 })
    for (const s of [...subs, other, again]) s.call.cancel()
  })

  it('refuses subscriptions past the server-wide stream limit with RESOURCE_EXHAUSTED', async () => {
    const { server, connection } = await startServer({ maxStreams: 2 })
    const a = subscribe(connection(), randomKey())
    const b = subscribe(connection(), randomKey())
    await Promise.all([a.synced, b.synced])
    expectStatus(await refused(subscribe(connection(), randomKey())), status.RESOURCE_EXHAUSTED, /server-wide limit of 2 open subscriptions reached \(signal --max-streams\)/)
    a.call.cancel()
    await waitUntil(() => server.stats().subscribers === 1, 5000, 'the cancel to reach the server')
    const c = subscribe(connection(), randomKey())
    await c.synced
    // A refused or cancelled stream gives its budget back exactly once.
    expect(server.stats()).toMatchObject({ subscribers: 2, refusedSubscribes: 1 })
    b.call.cancel()
    c.call.cancel()
  })

  it('announces the HTTP/2 concurrent stream limit, and a subscription over its own limit still gets a status', async () => {
    const { server, connection } = await startServer({ maxConnectionStreams: 5, maxSubscriptionsPerConnection: 4 })
    const session = http2Connect(`http://${server.address}`)
    closers.push(() => session.destroy())
    session.on('error', () => {})
    await withTimeout(once(session, 'remoteSettings'), 5000, 'the server SETTINGS')
    expect(session.remoteSettings.maxConcurrentStreams).toBe(5)
    session.close()

    const client = connection()
    const subs = [0, 1, 2, 3].map(() => subscribe(client, randomKey()))
    await Promise.all(subs.map((s) => s.synced))
    // The fifth stream fits under HTTP/2's 5, so it reaches the server and is refused, never left waiting.
    expectStatus(await refused(subscribe(client, randomKey())), status.RESOURCE_EXHAUSTED, /limit of 4 per connection/)
    // With 4 streams held open and a limit of 5, publishes queue behind one another but all complete.
    const key = randomKey()
    await withTimeout(Promise.all(Array.from({ length: 20 }, () => publish(client, envelopeTo(key)))), 10_000, '20 publishes through one free stream slot')
    for (const s of subs) s.call.cancel()
  })

  it('refuses to start when HTTP/2 streams would not exceed the subscriptions per connection', async () => {
    await expect(SignalingServer.start({ listen: '127.0.0.1:0', limits: { maxConnectionStreams: 8, maxSubscriptionsPerConnection: 8 } })).rejects.toThrow(
      /maxConnectionStreams \(8\) must exceed maxSubscriptionsPerConnection \(8\)/,
    )
    await expect(SignalingServer.start({ listen: '127.0.0.1:0', limits: { publishBurst: 0 } })).rejects.toThrow(/publishBurst must be a positive integer/)
  })

  it('limits the publish rate per connection with a token bucket (RESOURCE_EXHAUSTED), refilling with time', async () => {
    const { server, connection, advance } = await startServer({ publishRatePerSecond: 10, publishBurst: 5 })
    const client = connection()
    const key = randomKey()
    for (let i = 0; i < 5; i++) await publish(client, envelopeTo(key))
    const err = await publishError(client, envelopeTo(key))
    expectStatus(err, status.RESOURCE_EXHAUSTED, /publish rate limit of 10\/s per connection exceeded \(burst 5; signal --publish-rate, --publish-burst\)/)
    // Another connection has its own bucket.
    await publish(connection(), envelopeTo(key))
    // 100 ms at 10/s is one token: one more publish, not two.
    advance(100)
    await publish(client, envelopeTo(key))
    expectStatus(await publishError(client, envelopeTo(key)), status.RESOURCE_EXHAUSTED, /publish rate limit/)
    // Garbage costs a token too, so a flood of it is limited like valid envelopes.
    advance(1000)
    for (let i = 0; i < 5; i++) expectStatus(await publishError(client, envelopeTo(key, randomKey(3))), status.INVALID_ARGUMENT, /sender is 3 bytes/)
    expectStatus(await publishError(client, envelopeTo(key, randomKey(3))), status.RESOURCE_EXHAUSTED, /publish rate limit/)
    expect(server.stats()).toMatchObject({ published: 7, refusedPublishes: 8 })
  })

  it('refuses an envelope over --max-envelope-bytes with RESOURCE_EXHAUSTED naming the flag, and a message over the transport limit too', async () => {
    const { server, connection } = await startServer({ maxEnvelopeBytes: 1000 })
    const client = connection()
    expectStatus(await publishError(client, envelopeTo(randomKey(), randomKey(), 2000)), status.RESOURCE_EXHAUSTED, /envelope is \d+ bytes, over this server's limit of 1000 bytes \(signal --max-envelope-bytes\)/)
    // Past max(2 × limit, 1 MiB) grpc-js refuses the frame before decoding it.
    expectStatus(await publishError(client, envelopeTo(randomKey(), randomKey(), 1024 * 1024 + 100)), status.RESOURCE_EXHAUSTED, /larger than max/)
    await publish(client, envelopeTo(randomKey(), randomKey(), 900))
    expect(server.stats()).toMatchObject({ published: 1, refusedPublishes: 1 })
  })

  it('answers requests that are not valid protobuf with INVALID_ARGUMENT, not INTERNAL', async () => {
    const { server } = await startServer()
    const { Client, credentials, Metadata } = await import('@grpc/grpc-js')
    const raw = new Client(server.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 })
    closers.push(() => raw.close())
    const identity = (b: Buffer): Buffer => b
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) // field 1, length far past the end
    const publishErr = await new Promise<ServiceError | null>((resolve) =>
      raw.makeUnaryRequest('/cunicu.signaling.Signaling/Publish', identity, identity, garbage, new Metadata(), { deadline: Date.now() + 5000 }, (err) => resolve(err)),
    )
    expectStatus(publishErr, status.INVALID_ARGUMENT, /publish request is not a valid Envelope message/)
    const stream = raw.makeServerStreamRequest('/cunicu.signaling.Signaling/Subscribe', identity, identity, garbage, new Metadata(), { deadline: Date.now() + 5000 })
    stream.on('data', () => {})
    const subscribeErr = await withTimeout(new Promise<ServiceError>((resolve) => stream.on('error', resolve)), 5000, 'the subscribe status')
    expectStatus(subscribeErr, status.INVALID_ARGUMENT, /subscribe request is not a valid SubscribeParams message/)
    expect(server.stats()).toMatchObject({ refusedPublishes: 1, refusedSubscribes: 1, subscribers: 0 })
  })
})

describe('signal flags', () => {
  it('hand the limits to the server', async () => {
    const signal = startCli(['signal', '--listen', '127.0.0.1:0', '--json', '--max-subscriptions-per-connection', '1', '--max-connection-streams', '3', '--publish-rate', '1', '--publish-burst', '2'])
    const { address } = await signal.waitForEvent((e) => e.type === 'listening')
    const session = http2Connect(`http://${address}`)
    closers.push(() => session.destroy())
    session.on('error', () => {})
    await withTimeout(once(session, 'remoteSettings'), 5000, 'the server SETTINGS')
    expect(session.remoteSettings.maxConcurrentStreams).toBe(3)
    session.close()
    const client = rawClient(address, { 'grpc.use_local_subchannel_pool': 1 })
    closers.push(() => client.close())
    const sub = subscribe(client, randomKey())
    await sub.synced
    expectStatus(await refused(subscribe(client, randomKey())), status.RESOURCE_EXHAUSTED, /limit of 1 per connection reached \(signal --max-subscriptions-per-connection\)/)
    await publish(client, envelopeTo(randomKey()))
    await publish(client, envelopeTo(randomKey()))
    expectStatus(await publishError(client, envelopeTo(randomKey())), status.RESOURCE_EXHAUSTED, /publish rate limit of 1\/s per connection exceeded \(burst 2; signal --publish-rate, --publish-burst\)/)
    sub.call.cancel()
    signal.child.kill('SIGTERM')
    expect(await signal.exit()).toBe(143)
    expect(signal.events.find((e) => e.type === 'stopped')).toMatchObject({ published: 2, refusedPublishes: 1, refusedSubscribes: 1 })
  })

  it('refuse HTTP/2 streams that do not exceed the subscriptions per connection (exit 2)', async () => {
    const result = await runCli(['signal', '--listen', '127.0.0.1:0', '--max-subscriptions-per-connection', '10', '--max-connection-streams', '10'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/maxConnectionStreams \(10\) must exceed maxSubscriptionsPerConnection \(10\)/)
  })
})
