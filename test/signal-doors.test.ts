// Issue 11 "no open doors": each door has a limit with a safe default, a named status or a closed socket,
// a counter by reason, and one log line per connection and interval, not per refused call.
import type { Socket } from 'node:net'
import { Metadata, status, type ServiceError } from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import { sealSubscribeProof, AUTH_METADATA_KEY, PROOF_LENGTH } from '../src/core/auth-proof.js'
import { PrivateKey } from '../src/core/keys.js'
import { SignalingServer, type ServerLimits } from '../src/core/server/signaling-server.js'
import type { ServerLog } from '../src/core/server/server-log.js'
import { envelopeTo, publish, randomKey, rawClient, subscribe } from './helpers/signaling.js'
import { silentSocket } from './helpers/net.js'
import { selfSignedCert } from './helpers/tls.js'
import { waitUntil, withTimeout } from './helpers/wait.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error'
  fields: Record<string, unknown>
  message: string
}

function collectingLog(): { log: ServerLog; lines: LogLine[] } {
  const lines: LogLine[] = []
  const at = (level: LogLine['level']) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, fields, message })
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}

async function start(limits: Partial<ServerLimits>, extra: { auth?: { serverKey: PrivateKey } } = {}) {
  const { log, lines } = collectingLog()
  const server = await SignalingServer.start({ listen: '127.0.0.1:0', limits, log, ...extra })
  closers.push(() => server.close(200))
  const connection = () => {
    const client = rawClient(server.address, { 'grpc.use_local_subchannel_pool': 1 })
    closers.push(() => client.close())
    return client
  }
  return { server, lines, connection }
}

const closed = (socket: Socket): Promise<void> => new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())))

const refusal = (p: Promise<unknown>): Promise<ServiceError | undefined> => p.then(() => undefined, (e: ServiceError) => e)

describe('connection doors', () => {
  it('a connection that never completes the HTTP/2 handshake is closed after --handshake-timeout', async () => {
    const { server, lines } = await start({ handshakeTimeoutMs: 300 })
    const socket = await silentSocket(server.address)
    closers.push(() => socket.destroy())
    await withTimeout(closed(socket), 5000, 'the server to close the silent connection')
    await waitUntil(() => server.stats().connectionsClosedByReason.handshake_timeout === 1, 5000, 'the handshake_timeout counter')
    expect(lines.filter((l) => l.fields.event === 'connection_closed').map((l) => l.fields.reason)).toEqual(['handshake_timeout'])
  })

  it('with TLS too: a connection that never starts the TLS handshake is closed after --handshake-timeout', async () => {
    const tls = selfSignedCert()
    closers.push(() => tls.cleanup())
    const { log, lines } = collectingLog()
    const server = await SignalingServer.start({ listen: '127.0.0.1:0', tls: { cert: tls.cert, key: tls.key }, limits: { handshakeTimeoutMs: 300 }, log })
    closers.push(() => server.close(200))
    const socket = await silentSocket(server.address)
    closers.push(() => socket.destroy())
    await withTimeout(closed(socket), 5000, 'the server to close the silent TLS connection')
    await waitUntil(() => server.stats().connectionsClosedByReason.handshake_timeout === 1, 5000, 'the handshake_timeout counter')
    expect(lines.filter((l) => l.fields.event === 'connection_closed').map((l) => l.fields.reason)).toEqual(['handshake_timeout'])
  })

  it('--max-connections-per-ip and --max-connections close connections over the limit at once, counted by reason', async () => {
    const { server, lines } = await start({ maxConnectionsPerIp: 2, maxConnections: 3, handshakeTimeoutMs: 30_000 })
    const kept = [await silentSocket(server.address), await silentSocket(server.address)]
    closers.push(() => kept.forEach((s) => s.destroy()))
    const overIp = await Promise.all([silentSocket(server.address), silentSocket(server.address), silentSocket(server.address)])
    await withTimeout(Promise.all(overIp.map(closed)), 5000, 'connections over the per-IP limit to be closed')
    expect(server.stats().connectionsRefusedByReason).toEqual({ max_connections: 0, max_connections_per_ip: 3 })
    // Three refusals from one address, one log line for the interval.
    expect(lines.filter((l) => l.fields.event === 'limit' && l.fields.limit === 'max_connections_per_ip')).toHaveLength(1)
    // Another loopback address has its own per-IP budget, but the server-wide limit (3) still holds.
    const other = (local: string) => silentSocket(server.address, local)
    const third = await other('127.0.0.2')
    closers.push(() => third.destroy())
    const fourth = await other('127.0.0.3')
    await withTimeout(closed(fourth), 5000, 'a connection over --max-connections to be closed')
    expect(server.stats().connectionsRefusedByReason).toEqual({ max_connections: 1, max_connections_per_ip: 3 })
    expect(server.stats().connections).toBe(3)
    expect(third.destroyed).toBe(false)
  })

  it('a connection without any open stream is closed after --idle-timeout; one with a subscription stays', async () => {
    // Long enough that a loaded machine still opens the subscription before its connection idles out.
    const { server, connection } = await start({ idleTimeoutMs: 2000 })
    const subscriber = connection()
    const sub = subscribe(subscriber, randomKey())
    await sub.synced
    const publisher = connection()
    await publish(publisher, envelopeTo(randomKey()))
    await waitUntil(() => server.stats().connectionsClosedByReason.idle === 1, 15_000, 'the idle publisher connection to be closed')
    expect(server.stats().connections).toBe(1)
    expect(server.stats().subscribers).toBe(1)
    // The client reconnects on its next call: idling out is invisible to it.
    await publish(publisher, envelopeTo(randomKey()))
    sub.call.cancel()
  })
})

describe('call doors', () => {
  it('subscribes are rate-limited per connection (RESOURCE_EXHAUSTED naming the flags), one log line per interval', async () => {
    const { server, lines, connection } = await start({ subscribeRatePerSecond: 1, subscribeBurst: 2 })
    const client = connection()
    const subs = [subscribe(client, randomKey()), subscribe(client, randomKey())]
    await Promise.all(subs.map((s) => s.synced))
    const refused = await Promise.all([0, 1, 2].map(() => withTimeout(subscribe(client, randomKey()).failed, 5000, 'a refusal')))
    for (const err of refused) {
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED)
      expect(err.details).toMatch(/subscribe rate limit of 1\/s per connection exceeded \(burst 2; signal --subscribe-rate, --subscribe-burst\)/)
    }
    expect(server.stats().refusedSubscribesByReason.rate).toBe(3)
    // Another connection has its own budget.
    await subscribe(connection(), randomKey()).synced
    const limitLines = lines.filter((l) => l.fields.event === 'limit' && l.fields.limit === 'subscribe_rate')
    expect(limitLines).toHaveLength(1)
    expect(limitLines[0]!.level).toBe('warn')
    for (const s of subs) s.call.cancel()
  })

  it('a connection that keeps failing --require-auth proofs is shed (GOAWAY, closed); a new connection with a valid proof works', async () => {
    const serverKey = PrivateKey.generate()
    const { server, lines, connection } = await start({ maxAuthFailures: 3 }, { auth: { serverKey } })
    const attacker = connection()
    const bogus = () => {
      const md = new Metadata()
      md.set(AUTH_METADATA_KEY, Buffer.alloc(PROOF_LENGTH, 7).toString('base64'))
      return md
    }
    for (let i = 0; i < 3; i++) {
      const err = await withTimeout(subscribe(attacker, randomKey(), bogus()).failed, 5000, 'a refused proof')
      expect(err.code).toBe(status.PERMISSION_DENIED)
    }
    await waitUntil(() => server.stats().connectionsClosedByReason.auth_failures === 1, 5000, 'the shed connection to close')
    expect(server.stats().refusedSubscribesByReason.auth).toBe(3)
    expect(lines.filter((l) => l.fields.event === 'connection_shed')).toHaveLength(1)
    const owner = PrivateKey.generate()
    const md = new Metadata()
    md.set(AUTH_METADATA_KEY, sealSubscribeProof(owner, serverKey.publicKey))
    const legit = subscribe(connection(), owner.publicKey.bytes, md)
    await legit.synced
    legit.call.cancel()
  })

  it('publish refusals are logged once per connection and interval, with the count they stand for', async () => {
    const { lines, connection, server } = await start({ publishRatePerSecond: 1, publishBurst: 1 })
    const client = connection()
    await publish(client, envelopeTo(randomKey()))
    const answers = await Promise.all([0, 1, 2, 3, 4].map(() => refusal(publish(client, envelopeTo(randomKey())))))
    const refused = answers.filter((e) => e?.code === status.RESOURCE_EXHAUSTED).length
    expect(refused).toBeGreaterThanOrEqual(4)
    expect(server.stats().refusedPublishesByReason.rate).toBe(refused)
    const limitLines = lines.filter((l) => l.fields.event === 'limit')
    expect(limitLines).toHaveLength(1)
    expect(limitLines[0]!.fields).toMatchObject({ limit: 'publish_rate', refused: 1 })
  })
})
