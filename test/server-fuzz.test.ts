// Hostile input against the signaling server (property-based, fast-check): random and malformed
// envelopes and subscribe keys through a gRPC client that sends raw bytes, and malformed gRPC framing
// through raw HTTP/2. Every call must end with a status (each has a deadline, so a hang fails the test),
// the server must stay up and serve a valid round trip afterwards, watchers must receive exactly the
// valid envelopes published for their keys, the stats must add up, and nothing may leak. Each test has a
// server of its own and checks all of that at its end, so the tests hold in any order and one at a time.
import { spawn } from 'node:child_process'
import { connect as netConnect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { gunzipSync, gzipSync, inflateSync } from 'node:zlib'
import { Metadata, status } from '@grpc/grpc-js'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SignalingServer, type ServerStats } from '../src/core/server/signaling-server.js'
import { Envelope, SubscribeParams } from '../src/gen/signaling/signaling.js'
import {
  BUILD_INFO_PATH,
  grpcFrame,
  h2session,
  publishBytes,
  PUBLISH_PATH,
  rawBytesClient,
  rawCall,
  SUBSCRIBE_PATH,
  type RawOutcome,
  type RawRequest,
  type RawSignaling,
} from './helpers/raw-grpc.js'
import { envelopeTo, publish, randomKey, rawClient, subscribe, wire } from './helpers/signaling.js'
import { waitUntil, withTimeout } from './helpers/wait.js'

const MAX_ENVELOPE_BYTES = 65_536
/** Fixed, so a failure is reproducible; fast-check prints the counterexample and its path. */
const SEED = 20_241_126

const watched = Array.from({ length: 4 }, () => Buffer.from(randomKey()))

/**
 * One server with a watcher on each watched key, and the bookkeeping of what it must have done. Each test
 * starts its own (beforeEach), so a test run alone checks exactly what it checks in the full file.
 */
class Rig {
  /** Per watched key (hex): the bytes each watcher received, and the valid envelopes published for it. */
  readonly received = new Map<string, string[]>()
  readonly expected = new Map<string, string[]>()
  /** What the server's counters must show, tallied from the answers the calls got. */
  readonly tally = { published: 0, refusedPublishes: 0, refusedSubscribes: 0 }
  readonly #watchers: { cancel(): void }[] = []

  private constructor(
    readonly server: SignalingServer,
    readonly client: RawSignaling,
  ) {}

  static async start(): Promise<Rig> {
    // The publish and subscribe rate limits have their own tests (server-limits); here they would refuse most of the fuzz.
    const server = await SignalingServer.start({ listen: '127.0.0.1:0', limits: { publishRatePerSecond: 1e6, publishBurst: 1e6, subscribeRatePerSecond: 1e6, subscribeBurst: 1e6 } })
    const rig = new Rig(server, rawBytesClient(server.address))
    for (const key of watched) await rig.#watch(key)
    return rig
  }

  async #watch(key: Buffer): Promise<void> {
    const id = key.toString('hex')
    this.received.set(id, [])
    this.expected.set(id, [])
    const call = this.client.subscribe(Buffer.from(SubscribeParams.encode({ key }).finish()), new Metadata(), {})
    call.on('error', () => {})
    this.#watchers.push(call)
    let synced = false
    await withTimeout(
      new Promise<void>((resolve) =>
        call.on('data', (bytes: Buffer) => {
          if (synced) this.received.get(id)!.push(bytes.toString('hex'))
          else resolve((synced = true) && undefined)
        }),
      ),
      5000,
      'a watcher to sync',
    )
  }

  /** Bookkeeping for an envelope the server accepted: a watcher of its recipient must get exactly these bytes. */
  accepted(bytes: Buffer): void {
    this.tally.published++
    const recipient = Buffer.from(Envelope.decode(bytes).recipient).toString('hex')
    this.expected.get(recipient)?.push(bytes.toString('hex'))
  }

  /** Counts what reached the Publish/Subscribe handlers: OK publishes, and refusals worded by the server itself. */
  account(request: RawRequest, outcome: RawOutcome): void {
    if (request.path === PUBLISH_PATH) {
      if (outcome.grpcStatus === status.OK) {
        // An accepted message is the first frame's payload; find it by decoding what we framed.
        const payload = firstPayload(request)
        if (payload) this.accepted(payload)
      } else if (/^envelope |^publish request is not/.test(outcome.grpcMessage ?? '')) this.tally.refusedPublishes++
    } else if (request.path === SUBSCRIBE_PATH && /^subscribe (key|request)/.test(outcome.grpcMessage ?? '')) {
      this.tally.refusedSubscribes++
    }
  }

  /** Waits until only the watchers are subscribed (cancelled calls have left). */
  async watchersOnly(what: string): Promise<void> {
    await waitUntil(() => this.server.stats().subscribers === watched.length, 5000, what)
  }

  /**
   * What must hold after any hostile input: the server is up and serves a valid round trip, every watcher
   * got exactly the valid envelopes published for its key, and the stats add up. Returns how many envelopes
   * the watchers got, so a test can check that its input reached them at all.
   */
  async checkAfterwards(): Promise<number> {
    const typed = rawClient(this.server.address, { 'grpc.use_local_subchannel_pool': 1 })
    try {
      const key = randomKey()
      const sub = subscribe(typed, key)
      await sub.synced
      const sent = envelopeTo(key)
      await publish(typed, sent)
      expect((await sub.waitFor(1)).map(wire)).toEqual([wire(sent)])
      this.tally.published++
      sub.call.cancel()
      await this.watchersOnly('the round-trip subscription to leave')
    } finally {
      typed.close()
    }
    for (const key of watched) {
      const id = key.toString('hex')
      const want = this.expected.get(id)!
      await waitUntil(() => this.received.get(id)!.length >= want.length, 5000, `${want.length} envelopes for a watcher`)
      expect(this.received.get(id)!.slice().sort()).toEqual(want.slice().sort())
    }
    const total = [...this.expected.values()].reduce((n, list) => n + list.length, 0)
    const stats: ServerStats = this.server.stats()
    expect(stats).toMatchObject({ ...this.tally, subscribers: watched.length, topics: watched.length, delivered: total + 1, dropped: 0 })
    return total
  }

  async close(): Promise<void> {
    for (const w of this.#watchers) w.cancel()
    this.client.close()
    await this.server.close(500)
  }
}

let rig: Rig

beforeEach(async () => {
  rig = await Rig.start()
})

afterEach(async () => {
  await rig?.close()
})

/** The status a Publish of `bytes` deserves: size first, then protobuf, then the key lengths (WIRE.md §5). */
function publishVerdict(bytes: Buffer): number {
  if (bytes.length > MAX_ENVELOPE_BYTES) return status.RESOURCE_EXHAUSTED
  let envelope: Envelope
  try {
    envelope = Envelope.decode(bytes)
  } catch {
    return status.INVALID_ARGUMENT
  }
  return envelope.sender.length === 32 && envelope.recipient.length === 32 ? status.OK : status.INVALID_ARGUMENT
}

function subscribeVerdict(bytes: Buffer): number {
  try {
    return SubscribeParams.decode(bytes).key.length === 32 ? status.OK : status.INVALID_ARGUMENT
  } catch {
    return status.INVALID_ARGUMENT
  }
}

const keyBytes = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...watched).map((k) => new Uint8Array(k)) },
  { weight: 3, arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 80 }) },
)
const envelopeBytes = fc
  .record({
    sender: keyBytes,
    recipient: keyBytes,
    contents: fc.option(fc.record({ nonce: fc.uint8Array({ maxLength: 40 }), body: fc.uint8Array({ maxLength: 300 }) })),
  })
  .map(({ sender, recipient, contents }) => Buffer.from(Envelope.encode(Envelope.create({ sender, recipient, contents: contents ?? undefined })).finish()))
const publishInput = fc.oneof(
  { weight: 5, arbitrary: envelopeBytes },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  // Truncated anywhere, and with one byte changed anywhere: the wire format's edge cases.
  { weight: 2, arbitrary: envelopeBytes.chain((b) => fc.nat(b.length).map((n) => b.subarray(0, n))) },
  {
    weight: 2,
    arbitrary: envelopeBytes.chain((b) =>
      fc.tuple(fc.nat(Math.max(0, b.length - 1)), fc.integer({ min: 0, max: 255 })).map(([at, value]) => {
        const copy = Buffer.from(b)
        if (copy.length > 0) copy[at] = value
        return copy
      }),
    ),
  },
  // Around and far over the envelope limit.
  { weight: 1, arbitrary: fc.integer({ min: MAX_ENVELOPE_BYTES - 200, max: 4 * MAX_ENVELOPE_BYTES }).map((n) => Buffer.from(Envelope.encode(envelopeTo(watched[0]!, randomKey(), n)).finish())) },
)

describe('server under hostile input', () => {
  it('Publish: random and malformed envelopes end with the status they deserve, and valid ones are delivered', async () => {
    await fc.assert(
      fc.asyncProperty(publishInput, async (bytes) => {
        const { code, details } = await publishBytes(rig.client, bytes)
        expect(code, details).toBe(publishVerdict(bytes))
        if (code === status.OK) rig.accepted(bytes)
        else rig.tally.refusedPublishes++
      }),
      { numRuns: 400, seed: SEED },
    )
    expect(await rig.checkAfterwards(), 'the fuzz should have published valid envelopes to watched keys').toBeGreaterThan(50)
  })

  it('Subscribe: empty, short, long, huge and garbage keys get INVALID_ARGUMENT; 32-byte keys go live', async () => {
    const subscribeInput = fc.oneof(
      { weight: 3, arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((key) => Buffer.from(SubscribeParams.encode({ key }).finish())) },
      { weight: 3, arbitrary: fc.uint8Array({ maxLength: 80 }).map((key) => Buffer.from(SubscribeParams.encode({ key }).finish())) },
      { weight: 1, arbitrary: fc.constantFrom(0, 31, 33, 64, 100_000).map((n) => Buffer.from(SubscribeParams.encode({ key: randomKey(n) }).finish())) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)) },
    )
    let live = 0
    await fc.assert(
      fc.asyncProperty(subscribeInput, async (bytes) => {
        const call = rig.client.subscribe(bytes, new Metadata(), { deadline: Date.now() + 5000 })
        const outcome = await new Promise<number>((resolve) => {
          call.on('data', () => resolve(status.OK))
          call.on('error', (err: { code: number }) => resolve(err.code))
        })
        call.cancel()
        expect(outcome).toBe(subscribeVerdict(bytes))
        if (outcome === status.OK) live++
        else rig.tally.refusedSubscribes++
        // Each live one must be gone again before the next, or they would pile up against the connection's limit.
        await rig.watchersOnly('a cancelled subscription to leave')
      }),
      { numRuns: 200, seed: SEED },
    )
    expect(live, 'some subscriptions should have gone live').toBeGreaterThan(30)
    await rig.checkAfterwards()
  })

  it('raw HTTP/2: malformed gRPC framing, flags, encodings and content types end with a status', async () => {
    const validEnvelope = (): Buffer => Buffer.from(Envelope.encode(envelopeTo(randomKey())).finish())
    const fixed: [string, RawRequest, (o: RawOutcome) => void][] = [
      ['a valid publish', { path: PUBLISH_PATH, body: grpcFrame(validEnvelope()) }, (o) => expect(o.grpcStatus).toBe(status.OK)],
      ['a length prefix longer than the data', { path: PUBLISH_PATH, body: grpcFrame(validEnvelope(), 0, 500) }, (o) => expect(o.grpcStatus).toBe(status.UNIMPLEMENTED)],
      ['a length prefix shorter than the data', { path: PUBLISH_PATH, body: grpcFrame(validEnvelope(), 0, 10) }, (o) => expect(o.grpcStatus).not.toBe(status.OK)],
      ['a 0xFFFFFFFF length prefix', { path: PUBLISH_PATH, body: grpcFrame(validEnvelope(), 0, 0xffffffff) }, (o) => expect(o.grpcStatus).toBe(status.RESOURCE_EXHAUSTED)],
      ['a truncated 3-byte frame header', { path: PUBLISH_PATH, body: Buffer.from([0, 0, 0]) }, (o) => expect(o.grpcStatus).toBe(status.UNIMPLEMENTED)],
      ['no message at all', { path: PUBLISH_PATH }, (o) => expect(o.grpcStatus).toBe(status.UNIMPLEMENTED)],
      ['two messages for a unary call', { path: PUBLISH_PATH, body: Buffer.concat([grpcFrame(validEnvelope()), grpcFrame(validEnvelope())]) }, (o) => expect(o.grpcStatus).toBe(status.UNIMPLEMENTED)],
      ['gzip flag with garbage', { path: PUBLISH_PATH, headers: { 'grpc-encoding': 'gzip' }, body: grpcFrame(randomKey(50), 1) }, (o) => expect(o.grpcStatus).toBe(status.INTERNAL)],
      ['an unsupported encoding', { path: PUBLISH_PATH, headers: { 'grpc-encoding': 'bogus' }, body: grpcFrame(validEnvelope(), 1) }, (o) => expect(o.grpcStatus).toBe(status.UNIMPLEMENTED)],
      ['a gzip bomb (64 MiB of zeros)', { path: PUBLISH_PATH, headers: { 'grpc-encoding': 'gzip' }, body: grpcFrame(gzipSync(Buffer.alloc(64 << 20)), 1) }, (o) => expect(o.grpcStatus).toBe(status.RESOURCE_EXHAUSTED)],
      ['a garbage content-type', { path: PUBLISH_PATH, headers: { 'content-type': 'text/html' }, body: grpcFrame(validEnvelope()) }, (o) => expect(o.httpStatus).toBe(415)],
      ['an unknown method', { path: '/cunicu.signaling.Signaling/Nope', body: grpcFrame(validEnvelope()) }, (o) => expect(o.grpcStatus).toBe(status.UNIMPLEMENTED)],
      ['an invalid grpc-timeout', { path: PUBLISH_PATH, headers: { 'grpc-timeout': 'soon' }, body: grpcFrame(validEnvelope()) }, (o) => expect(o.grpcStatus).toBe(status.INTERNAL)],
      ['a request that never ends (grpc-timeout 300m)', { path: PUBLISH_PATH, headers: { 'grpc-timeout': '300m' }, body: grpcFrame(validEnvelope()), end: false }, (o) => expect(o.grpcStatus).toBe(status.DEADLINE_EXCEEDED)],
      // grpc-js still ran the handler for these once the client reset the stream after the deadline: a
      // subscriber that never left (the server now ignores calls past their deadline).
      ['a Subscribe that never ends (grpc-timeout 100m)', { path: SUBSCRIBE_PATH, headers: { 'grpc-timeout': '100m' }, body: grpcFrame(SubscribeParams.encode({ key: randomKey() }).finish()), end: false }, (o) => expect(o.grpcStatus).toBe(status.DEADLINE_EXCEEDED)],
      ['a garbage Subscribe', { path: SUBSCRIBE_PATH, body: grpcFrame(Buffer.from([0xff, 0xff, 0xff])) }, (o) => expect(o.grpcStatus).toBe(status.INVALID_ARGUMENT)],
    ]
    const session = h2session(rig.server.address)
    try {
      for (const [what, request, check] of fixed) {
        const outcome = await rawCall(session, request)
        expect(outcome.reset, what).toBeUndefined()
        check(outcome)
        rig.account(request, outcome)
      }
      // One more call on the same connection, so the resets above have been processed.
      expect((await rawCall(session, { path: BUILD_INFO_PATH, body: grpcFrame(Buffer.alloc(0)) })).grpcStatus).toBe(status.OK)
      expect(rig.server.stats()).toMatchObject({ subscribers: watched.length, ...rig.tally })
    } finally {
      session.close()
    }

    const frame = fc.record({
      flag: fc.constantFrom(0, 0, 0, 1, 0x80, 0xff),
      payload: fc.oneof(publishInput, fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(SubscribeParams.encode({ key: b }).finish()))),
      lengthDelta: fc.constantFrom(0, 0, 0, -1, 1, -7, 1000, 0x7fffffff),
      cut: fc.option(fc.nat(80)),
    })
    const request = fc.record({
      path: fc.constantFrom(PUBLISH_PATH, PUBLISH_PATH, SUBSCRIBE_PATH, BUILD_INFO_PATH, '/cunicu.signaling.Signaling/Nope', '/garbage'),
      contentType: fc.constantFrom('application/grpc', 'application/grpc', 'application/grpc+proto', 'text/plain', 'application/json'),
      encoding: fc.constantFrom(undefined, undefined, 'identity', 'gzip', 'deflate', 'br'),
      frames: fc.array(frame, { maxLength: 3 }),
      tail: fc.uint8Array({ maxLength: 6 }),
      // Mostly ended; one in eight left open, which the server must end at the grpc-timeout.
      end: fc.constantFrom(true, true, true, true, true, true, true, false),
    })
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const body = Buffer.concat([
          ...r.frames.map(({ flag, payload, lengthDelta, cut }) => {
            const framed = grpcFrame(payload, flag, Math.max(0, payload.length + lengthDelta))
            return cut === null ? framed : framed.subarray(0, cut)
          }),
          Buffer.from(r.tail),
        ])
        const raw: RawRequest = {
          path: r.path,
          // Always a deadline: a request left open must still be ended by the server.
          headers: { 'content-type': r.contentType, 'grpc-timeout': '100m', ...(r.encoding ? { 'grpc-encoding': r.encoding } : {}) },
          body,
          end: r.end,
        }
        const session = h2session(rig.server.address)
        try {
          const outcome = await rawCall(session, raw)
          expect(outcome.reset, JSON.stringify(outcome)).toBeUndefined()
          expect(outcome.cancelledLive || outcome.grpcStatus !== undefined || (outcome.httpStatus ?? 200) !== 200, JSON.stringify(outcome)).toBe(true)
          rig.account(raw, outcome)
        } finally {
          session.close()
        }
        await rig.watchersOnly('a cancelled subscription to leave')
      }),
      { numRuns: 150, seed: SEED },
    )
    await rig.checkAfterwards()
  })

  it('a connection that is not HTTP/2 at all is closed, and only that one', async () => {
    const [host, port] = rig.server.address.split(':') as [string, string]
    for (const bytes of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from(randomKey(300)), Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x99garbage')]) {
      const socket = netConnect(Number(port), host)
      socket.on('error', () => {})
      socket.on('data', () => {})
      socket.write(bytes)
      await withTimeout(new Promise((resolve) => socket.on('close', resolve)), 5000, 'the server to close a garbage connection')
    }
    await rig.checkAfterwards()
  })

  it('nothing leaks: a process that sent hostile input and closed the server exits by itself', async () => {
    const script = fileURLToPath(new URL('./helpers/hostile-exit-check.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    clearTimeout(timer)
    expect(output).toContain('closed')
    expect(code, output).toBe(0)
  }, 20_000)
})

/** The payload of the first frame, decompressed when gzip-flagged; what the server accepted on OK. */
function firstPayload(request: RawRequest): Buffer | undefined {
  const body = request.body
  if (!body || body.length < 5) return undefined
  const length = body.readUInt32BE(1)
  const payload = body.subarray(5, 5 + length)
  const compressed = body[0] === 1 && ['gzip', 'deflate'].includes(request.headers?.['grpc-encoding'] ?? '')
  if (!compressed) return payload
  return request.headers?.['grpc-encoding'] === 'gzip' ? gunzipSync(payload) : inflateSync(payload)
}
