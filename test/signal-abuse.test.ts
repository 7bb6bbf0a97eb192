// Issue 11 acceptance, against a real `signal` process: 2,000 TCP connections that never send a byte, and
// 5,000 bad `--require-auth` proofs sent as fast as a client can, while a normal client keeps working.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Socket } from 'node:net'
import { Metadata } from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import { AUTH_METADATA_KEY, sealSubscribeProof } from '../src/core/auth-proof.js'
import { PrivateKey, PublicKey } from '../src/core/keys.js'
import { CliProcess, killAll, startCli } from './helpers/cli.js'
import { scrape } from './helpers/metrics.js'
import { silentSocket } from './helpers/net.js'
import { envelopeTo, publish, randomKey, rawClient, subscribe } from './helpers/signaling.js'
import { waitUntil } from './helpers/wait.js'

const FLOOD = fileURLToPath(new URL('./helpers/auth-flood.mjs', import.meta.url))
const sockets: Socket[] = []

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await killAll()
})

const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

describe('signal under abuse', () => {
  it('2,000 silent TCP connections: a normal client still works, all are closed within --handshake-timeout + 2 s, RSS returns near its start', async () => {
    const SILENT = 2000
    const HANDSHAKE_S = 3
    const server = startCli([
      'signal', '--listen', '127.0.0.1:0', '--json', '--metrics', '127.0.0.1:0', '--log-level', 'warn',
      '--handshake-timeout', String(HANDSHAKE_S), '--max-connections', '5000', '--max-connections-per-ip', '5000',
    ])
    const { address, metrics } = await server.waitForEvent((e) => e.type === 'listening', 20_000)
    const pid = server.child.pid!
    const normal = rawClient(address, { 'grpc.use_local_subchannel_pool': 1 })
    try {
      // Warm up the normal path first, so the RSS baseline includes what a working server holds anyway.
      const key = randomKey()
      const warm = subscribe(normal, key)
      await warm.synced
      await publish(normal, envelopeTo(key))
      await warm.waitFor(1)
      const rssStart = rssKiB(pid)

      const openedAt = new Map<Socket, number>()
      const closedAfter: number[] = []
      for (let batch = 0; batch < SILENT / 100; batch++) {
        const opened = await Promise.all(Array.from({ length: 100 }, () => silentSocket(address)))
        for (const s of opened) {
          openedAt.set(s, performance.now())
          sockets.push(s)
          s.once('close', () => closedAfter.push(performance.now() - openedAt.get(s)!))
        }
      }
      const rssPeak = rssKiB(pid)
      // While all 2,000 are open, the normal client subscribes and publishes.
      const live = await scrape(metrics)
      expect(live.value('cunicu_signal_connections')).toBeGreaterThan(SILENT / 2)
      const other = randomKey()
      const sub = subscribe(normal, other)
      await sub.synced
      await publish(normal, envelopeTo(other))
      await sub.waitFor(1)

      await waitUntil(() => closedAfter.length === SILENT, (HANDSHAKE_S + 20) * 1000, `all ${SILENT} silent connections to be closed (closed ${closedAfter.length})`)
      const slowest = Math.max(...closedAfter)
      expect(slowest).toBeLessThanOrEqual((HANDSHAKE_S + 2) * 1000)
      const m = await scrape(metrics)
      expect(m.value('cunicu_signal_connections_closed_total', { reason: 'handshake_timeout' })).toBe(SILENT)
      // The normal client's connection completed its handshake: it was never closed.
      expect(m.value('cunicu_signal_connections')).toBe(1)
      await publish(normal, envelopeTo(other))
      await sub.waitFor(2)

      // RSS: V8 gives memory back only once its heap reducer runs on an idle process (~10-15 s after the
      // burst, measured), so poll for a while before comparing with the start.
      let rssEnd = rssKiB(pid)
      const deadline = Date.now() + 40_000
      while (rssEnd > rssStart + 24 * 1024 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250))
        rssEnd = rssKiB(pid)
      }
      console.log(
        `silent connections: ${SILENT} closed, slowest after ${Math.round(slowest)} ms (limit ${(HANDSHAKE_S + 2) * 1000}); ` +
          `RSS start ${(rssStart / 1024).toFixed(1)} MiB, with ${SILENT} open ${(rssPeak / 1024).toFixed(1)} MiB, after ${(rssEnd / 1024).toFixed(1)} MiB`,
      )
      expect(rssEnd - rssStart).toBeLessThan(24 * 1024)
      warm.call.cancel()
      sub.call.cancel()
    } finally {
      normal.close()
    }
  }, 120_000)

  it('5,000 bad auth proofs as fast as a client can send them: a legitimate peer keeps publish → deliver p99 under 50 ms', { timeout: 180_000, retry: 2 }, async () => {
    const PROOFS = 5000
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json', '--require-auth', '--metrics', '127.0.0.1:0', '--log-level', 'warn'])
    const { address, metrics, authKey } = await server.waitForEvent((e) => e.type === 'listening', 20_000)
    const owner = PrivateKey.generate()
    const subscriber = rawClient(address, { 'grpc.use_local_subchannel_pool': 1 })
    const publisher = rawClient(address, { 'grpc.use_local_subchannel_pool': 1 })
    try {
      const md = new Metadata()
      md.set(AUTH_METADATA_KEY, sealSubscribeProof(owner, PublicKey.parse(authKey)))
      const sub = subscribe(subscriber, owner.publicKey.bytes, md)
      await sub.synced
      const sentAt = new Map<string, number>()
      const latencies: number[] = []
      let measuring = false
      sub.call.on('data', (env: { contents?: { nonce: Uint8Array } }) => {
        const id = env.contents ? Buffer.from(env.contents.nonce).toString('hex') : ''
        const at = sentAt.get(id)
        if (at !== undefined && measuring) latencies.push(performance.now() - at)
      })

      const flood = new CliProcess(spawn(process.execPath, [FLOOD, address, String(PROOFS)], { stdio: 'pipe' }))
      flood.child.stdin.end()
      measuring = true
      // The legitimate peer publishes to itself every 5 ms for as long as the flood lasts.
      let sent = 0
      while (flood.child.exitCode === null && sent < 20_000) {
        const envelope = envelopeTo(owner.publicKey.bytes)
        sentAt.set(Buffer.from(envelope.contents!.nonce).toString('hex'), performance.now())
        sent++
        await publish(publisher, envelope)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      const result = await flood.waitForEvent((e) => e.type === 'flooded', 5_000)
      expect(await flood.exit()).toBe(0)
      await sub.waitFor(sent, 10_000)
      measuring = false
      const sorted = [...latencies].sort((a, b) => a - b)
      const p50 = percentile(sorted, 50)
      const p99 = percentile(sorted, 99)
      const m = await scrape(metrics)
      const verified = m.value('cunicu_signal_subscribe_refused_total', { reason: 'auth' })
      const shed = m.value('cunicu_signal_connections_closed_total', { reason: 'auth_failures' })
      console.log(
        `auth flood: ${result.sent} bad proofs in ${result.ms} ms over ${result.connections} connections (answers ${JSON.stringify(result.codes)}); ` +
          `server refused ${verified} for auth, shed ${shed} connections; legitimate publish→deliver over ${sorted.length} envelopes: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
      )
      expect(result.sent).toBe(PROOFS)
      expect(sorted.length).toBeGreaterThan(20)
      expect(shed).toBeGreaterThan(0)
      expect(p99).toBeLessThan(50)
      sub.call.cancel()
    } finally {
      subscriber.close()
      publisher.close()
    }
    // A latency bound beside a parallel suite on two shared cores: a run that another test file starved is
    // repeated (at most twice, each printing its figures); a server that blocks on proofs fails all three.
  })
})

