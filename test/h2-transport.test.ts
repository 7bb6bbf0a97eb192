// Both HTTP/2 transports (our own on net.Socket, src/core/server/h2js/, the default; node:http2's,
// src/core/server/h2/) on what the shared suites do not reach: TLS with ALPN h2, deadlines that run out (a
// publish whose request never completes, a live subscription), keepalive pings, and the same service behind
// every `--transport` value (the flag keeps the other transports working).
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { credentials, status, type ServiceError } from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Envelope, SignalingClient, SubscribeParams } from '../src/gen/signaling/signaling.js'
import { H2Transport } from '../src/core/server/h2/h2-transport.js'
import { JsH2Transport } from '../src/core/server/h2js/js-transport.js'
import type { TransportOptions } from '../src/core/server/transport.js'
import { SignalingServer, type TransportName } from '../src/core/server/signaling-server.js'
import { grpcFrame, h2session, PUBLISH_PATH, rawCall, SUBSCRIBE_PATH } from './helpers/raw-grpc.js'
import { envelopeTo, publish, randomKey, rawClient, subscribe, wire, type Subscription } from './helpers/signaling.js'
import { listServices } from './helpers/reflection.js'
import { hasOpenssl, selfSignedCert, type SelfSigned } from './helpers/tls.js'
import { waitUntil } from './helpers/wait.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function start(options: Partial<Parameters<typeof SignalingServer.start>[0]> = {}): Promise<SignalingServer> {
  const server = await SignalingServer.start({ listen: '127.0.0.1:0', ...options })
  closers.push(() => server.close(300))
  return server
}

/** Subscribes to a fresh key, publishes one envelope to it and checks it arrives byte for byte. */
async function relaysOneEnvelope(client: SignalingClient): Promise<Subscription> {
  const key = randomKey()
  const sub = subscribe(client, key)
  await sub.synced
  const sent = envelopeTo(key)
  await publish(client, sent)
  expect((await sub.waitFor(1)).map(wire)).toEqual([wire(sent)])
  return sub
}

const HTTP2_TRANSPORTS: TransportName[] = ['js', 'h2']

describe.each(HTTP2_TRANSPORTS)('%s transport with TLS', (transport) => {
  let tls: SelfSigned
  beforeAll(() => {
    if (!hasOpenssl()) throw new Error('the TLS tests make a self-signed certificate with openssl: apt-get install -y openssl')
    tls = selfSignedCert()
  })
  afterAll(() => tls?.cleanup())

  it('negotiates h2 by ALPN and relays an envelope to a grpc-js client over TLS', async () => {
    const server = await start({ transport, tls: { cert: tls.cert, key: tls.key } })
    const alpn = await new Promise<string | false | null>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: Number(server.address.split(':')[1]), ca: tls.cert, servername: 'localhost', ALPNProtocols: ['http/1.1', 'h2'] }, () => {
        resolve(socket.alpnProtocol)
        socket.destroy()
      })
      socket.on('error', reject)
    })
    expect(alpn).toBe('h2')
    const client = new SignalingClient(server.address, credentials.createSsl(tls.cert), { 'grpc.ssl_target_name_override': 'localhost' })
    closers.push(() => client.close())
    ;(await relaysOneEnvelope(client)).call.cancel()
  })

  it('refuses a TLS client that offers only HTTP/1.1', async () => {
    const server = await start({ transport, tls: { cert: tls.cert, key: tls.key } })
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: Number(server.address.split(':')[1]), ca: tls.cert, servername: 'localhost', ALPNProtocols: ['http/1.1'] })
      socket.on('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'))
      socket.on('data', (d) => resolve(`answered: ${d.toString().split('\r\n')[0]}`))
      socket.on('error', (err) => resolve(`error: ${err.message}`))
      socket.on('close', () => resolve('closed'))
    })
    expect(outcome).not.toMatch(/^answered: HTTP\/1\.1 [23]/)
  })
})

describe.each(HTTP2_TRANSPORTS)('%s transport deadlines', (transport) => {
  it('answers a publish whose request does not complete before its grpc-timeout with DEADLINE_EXCEEDED, and relays nothing', async () => {
    const server = await start({ transport })
    const key = randomKey()
    const sub = subscribe(rawClient(server.address), key)
    await sub.synced
    const session = h2session(server.address)
    closers.push(() => session.close())
    const whole = grpcFrame(Envelope.encode(envelopeTo(key)).finish())
    const startedAt = performance.now()
    // Half the message, then nothing: the request can never complete.
    const outcome = await rawCall(session, { path: PUBLISH_PATH, headers: { 'grpc-timeout': '300m' }, body: whole.subarray(0, 20), end: false })
    const tookMs = performance.now() - startedAt
    expect(outcome.grpcStatus, JSON.stringify(outcome)).toBe(status.DEADLINE_EXCEEDED)
    expect(tookMs).toBeGreaterThanOrEqual(280)
    expect(tookMs).toBeLessThan(3000)
    expect(server.stats()).toMatchObject({ published: 0, delivered: 0 })
    // The server is not stuck on it: a whole publish goes through on the same connection.
    expect((await rawCall(session, { path: PUBLISH_PATH, body: whole })).grpcStatus).toBe(status.OK)
    await sub.waitFor(1)
    sub.call.cancel()
  })

  it('ends a live subscription at its deadline with DEADLINE_EXCEEDED and gives its stream back', async () => {
    const server = await start({ transport })
    const session = h2session(server.address)
    closers.push(() => session.close())
    const stream = session.request({ ':method': 'POST', ':path': SUBSCRIBE_PATH, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '400m' })
    let grpcStatus: string | undefined
    stream.on('trailers', (t) => (grpcStatus = String(t['grpc-status'])))
    stream.on('data', () => {})
    stream.on('error', () => {})
    stream.end(grpcFrame(SubscribeParams.encode({ key: randomKey() }).finish()))
    await waitUntil(() => server.stats().subscribers === 1, 5000, 'the subscription to be live')
    await waitUntil(() => grpcStatus !== undefined, 5000, 'the deadline status')
    expect(Number(grpcStatus)).toBe(status.DEADLINE_EXCEEDED)
    await waitUntil(() => server.stats().subscribers === 0, 5000, 'the subscription to be gone')
  })
})

describe.each<TransportName>(['js', 'h2', 'grpc-js'])('transport %s', (transport) => {
  it('relays, refuses garbage with INVALID_ARGUMENT and answers reflection', async () => {
    const server = await start({ transport })
    const client = rawClient(server.address)
    closers.push(() => client.close())
    const sub = await relaysOneEnvelope(client)
    const bad = await publish(client, envelopeTo(randomKey(7))).catch((e: ServiceError) => e)
    expect((bad as ServiceError).code).toBe(status.INVALID_ARGUMENT)
    expect(await listServices(server.address)).toContain('cunicu.signaling.Signaling')
    expect(server.stats()).toMatchObject({ published: 1, delivered: 1, refusedPublishes: 1 })
    sub.call.cancel()
    await waitUntil(() => server.stats().subscribers === 0, 5000, 'the cancelled subscription to leave')
  })
})

const TRANSPORT_CLASSES = { js: JsH2Transport, h2: H2Transport } satisfies Record<string, new (options: TransportOptions) => unknown>

describe.each(['js', 'h2'] as const)('%s transport keepalive', (name) => {
  it('pings every connection at its interval, and a connection that answers stays', async () => {
    const transport = new TRANSPORT_CLASSES[name]({ maxReceiveBytes: 1 << 20, maxConcurrentStreams: 16, keepaliveIntervalMs: 100 })
    const listener = createNetServer((socket) => transport.injectConnection(socket))
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    closers.push(() => new Promise((resolve) => listener.close(resolve)))
    closers.push(() => transport.forceShutdown())
    const session = h2session(`127.0.0.1:${(listener.address() as AddressInfo).port}`)
    closers.push(() => session.close())
    let pings = 0
    session.on('ping', () => pings++)
    await waitUntil(() => pings >= 2, 5000, 'two keepalive pings from the server')
    expect(session.destroyed).toBe(false)
  })
})
