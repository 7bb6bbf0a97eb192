// Issue 11 acceptance: the JSON log lines (stderr) of a scripted `signal` run — cluster, connections,
// a subscription, a rate limit hit several times, the drain — hold each event exactly once, stdout keeps
// only the NDJSON events, and no line anywhere carries private key material or a whole public key.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Metadata, status, type ServiceError } from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { AUTH_METADATA_KEY, sealSubscribeProof } from '../src/core/auth-proof.js'
import { PrivateKey, PublicKey } from '../src/core/keys.js'
import { killAll, RUN, startCli } from './helpers/cli.js'
import { Terminal } from './helpers/terminal.js'
import { scrape } from './helpers/metrics.js'
import { redisForFile } from './helpers/redis.js'
import { envelopeTo, publish, randomKey, rawClient, subscribe } from './helpers/signaling.js'
import { waitUntil } from './helpers/wait.js'

const redis = redisForFile()
afterEach(killAll)

interface LogLine {
  level: number
  time: number
  pid: number
  msg: string
  event?: string
  [field: string]: unknown
}

describe('signal logs', () => {
  it('one JSON line per connection, subscription, limit interval and cluster event; no key material', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-logs-'))
    const serverKey = PrivateKey.generate()
    const serverKeyFile = join(dir, 'server.key')
    writeFileSync(serverKeyFile, serverKey.toBase64() + '\n', { mode: 0o600 })
    const server = startCli([
      'signal', '--listen', '127.0.0.1:0', '--json', '--cluster', redis.url, '--require-auth', '--server-key', serverKeyFile,
      '--publish-rate', '1', '--publish-burst', '2', '--drain-timeout', '2', '--metrics', '127.0.0.1:0',
    ])
    const { address, metrics } = await server.waitForEvent((e) => e.type === 'listening', 20_000)
    const owner = PrivateKey.generate()
    const subscriberClient = rawClient(address, { 'grpc.use_local_subchannel_pool': 1 })
    const publisherClient = rawClient(address, { 'grpc.use_local_subchannel_pool': 1 })
    const md = new Metadata()
    md.set(AUTH_METADATA_KEY, sealSubscribeProof(owner, PublicKey.parse(serverKey.publicKey.toString())))
    const sub = subscribe(subscriberClient, owner.publicKey.bytes, md)
    await sub.synced
    await publish(publisherClient, envelopeTo(owner.publicKey.bytes))
    await publish(publisherClient, envelopeTo(owner.publicKey.bytes))
    await sub.waitFor(2)
    // Five refusals in a row: one log line for the interval, not five.
    const refusals = await Promise.all(Array.from({ length: 5 }, () => publish(publisherClient, envelopeTo(randomKey())).then(() => undefined, (e: ServiceError) => e)))
    expect(refusals.filter((e) => e?.code === status.RESOURCE_EXHAUSTED).length).toBeGreaterThanOrEqual(4)
    sub.call.cancel()
    const lines = (): LogLine[] => server.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine)
    await waitUntil(() => lines().some((l) => l.event === 'subscription_closed'), 10_000, 'the subscription_closed line')
    subscriberClient.close()
    publisherClient.close()
    await waitUntil(() => lines().filter((l) => l.event === 'connection_closed').length === 2, 10_000, 'both connection_closed lines')
    // The cluster metrics of this run: two envelopes out to Redis, none in, no outage, no channel left.
    const m = await scrape(metrics)
    expect(m.value('cunicu_signal_cluster_connected')).toBe(1)
    expect(m.value('cunicu_signal_cluster_messages_out_total')).toBe(2)
    expect(m.value('cunicu_signal_cluster_messages_in_total')).toBe(0)
    expect(m.value('cunicu_signal_cluster_publish_failed_total')).toBe(0)
    expect(m.value('cunicu_signal_cluster_reconnects_total')).toBe(0)
    expect(m.value('cunicu_signal_cluster_channels')).toBe(0)
    process.kill(server.child.pid!, 'SIGTERM')
    expect(await server.exit(20_000)).toBe(143)

    // Every stderr line is a pino JSON line; stdout has only the command's NDJSON events.
    const log = lines()
    for (const line of log) expect(line).toMatchObject({ level: expect.any(Number), time: expect.any(Number), pid: server.child.pid, msg: expect.any(String) })
    expect(server.events.map((e) => e.type)).toEqual(['cluster', 'listening', 'cluster', 'stopped'])
    const events = (name: string, match: Record<string, unknown> = {}) => log.filter((l) => l.event === name && Object.entries(match).every(([k, v]) => l[k] === v))
    expect(events('listening')).toHaveLength(1)
    expect(events('cluster', { state: 'connected' })).toHaveLength(1)
    expect(events('cluster', { state: 'closed' })).toHaveLength(1)
    expect(events('drain', { phase: 'started' })).toHaveLength(1)
    expect(events('drain', { phase: 'done' })).toHaveLength(1)
    const short = owner.publicKey.toString().slice(0, 8) + '…'
    expect(events('subscription_opened')).toEqual([expect.objectContaining({ key: short })])
    expect(events('subscription_closed')).toEqual([expect.objectContaining({ key: short, peer: events('subscription_opened')[0]!.peer })])
    const opened = events('connection_opened').map((l) => l.peer)
    expect(opened).toHaveLength(2)
    expect(events('connection_closed').map((l) => l.peer).sort()).toEqual([...opened].sort())
    expect(events('connection_closed').map((l) => l.reason)).toEqual(['client', 'client'])
    const limits = events('limit')
    expect(limits).toHaveLength(1)
    expect(limits[0]).toMatchObject({ limit: 'publish_rate', refused: 1, level: 40 })
    expect(opened).toContain(limits[0]!.peer)

    // No key material: private keys in any form, nor a whole public key (logs shorten them).
    const all = [server.lines.join('\n'), server.stderr].join('\n')
    for (const key of [serverKey, owner]) {
      const raw = Buffer.from(key.toBase64(), 'base64')
      for (const form of [key.toBase64(), key.toBase64().slice(0, 20), raw.toString('hex'), raw.toString('base64url')]) {
        expect(all.includes(form), `private key material (${form.slice(0, 6)}…) in the output`).toBe(false)
      }
    }
    expect(server.stderr.includes(owner.publicKey.toString())).toBe(false)
    expect(server.stderr).toContain(short)
  }, 60_000)

  it('are human-readable on a terminal (pino-pretty), not JSON', async () => {
    const command = `NODE_ENV=production ${process.execPath} ${RUN} signal --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0; sleep 30`
    const terminal = Terminal.open(command, { cols: 160, rows: 40 })
    try {
      const screen = await terminal.waitFor((s) => /signaling server listening/.test(s), 15_000)
      expect(screen, screen).toMatch(/INFO.*\(signal\/\d+\).*: signaling server listening/)
      expect(screen).toMatch(/event: "listening"/)
      expect(screen).not.toContain('{"level"')
    } finally {
      // SIGHUP to everything in the pane; the signal process ends with it.
      terminal.close()
    }
  }, 30_000)
})
