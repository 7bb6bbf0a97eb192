// Issue 11 acceptance: `signal --metrics` after a scripted run (publishes, deliveries, one stuck reader,
// one envelope to an unsubscribed key, rate-limited, oversized and malformed publishes). Every counter
// must equal what the test did, read through a Prometheus text-format parser, and equal the `stopped:`
// summary line the process prints after its drain.
import { status, type ServiceError } from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import { killAll, startCli } from './helpers/cli.js'
import { scrape } from './helpers/metrics.js'
import { envelopeTo, publish, randomKey, rawClient, subscribe } from './helpers/signaling.js'
import { waitUntil } from './helpers/wait.js'

afterEach(killAll)

const N = 400
const BURST = 500
const OVER_RATE_ATTEMPTS = BURST + 20

/** The numbers of the text summary, "stopped: 3 published, ...; dropped by reason: no_subscriber 1, ..." */
function parseStopped(line: string) {
  const section = (name: string) => {
    const m = new RegExp(`${name}: ([^;]*)`).exec(line)
    if (!m) throw new Error(`no "${name}" in: ${line}`)
    return Object.fromEntries([...m[1]!.matchAll(/([a-z_]+) (\d+)/g)].map((x) => [x[1]!, Number(x[2])]))
  }
  const head = /^stopped: (\d+) published, (\d+) delivered, (\d+) dropped;/.exec(line)
  if (!head) throw new Error(`not a stopped line: ${line}`)
  const connections = /connections: (\d+) accepted, refused ([^,]*(?:, [a-z_]+ \d+)*), closed (.*?)(;|$)/.exec(line)
  return {
    published: Number(head[1]),
    delivered: Number(head[2]),
    dropped: Number(head[3]),
    droppedByReason: section('dropped by reason'),
    refusedPublishes: section('refused publishes'),
    refusedSubscribes: section('refused subscribes'),
    connectionsAccepted: Number(connections?.[1]),
  }
}

describe('signal --metrics', () => {
  it('counts exactly what a scripted run did, and agrees with the stopped: line', async () => {
    const server = startCli([
      'signal', '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0',
      '--queue-envelopes', '16', '--max-envelope-bytes', '4096',
      '--publish-rate', '1', '--publish-burst', String(BURST), '--drain-timeout', '3',
    ])
    await waitUntil(() => server.lines.some((l) => l.startsWith('metrics on http://')) || server.child.exitCode !== null, 20_000, 'the metrics line')
    const address = /listening on (\S+)/.exec(server.lines.join('\n'))![1]!
    const metricsAddress = /metrics on http:\/\/(\S+)\/metrics/.exec(server.lines.join('\n'))![1]!

    const health = await fetch(`http://${metricsAddress}/healthz`)
    expect(health.status).toBe(200)
    const fresh = await scrape(metricsAddress)
    expect(fresh.value('cunicu_signal_envelopes_published_total')).toBe(0)
    // prom-client's default process metrics are there too.
    expect(fresh.value('process_cpu_seconds_total')).toBeGreaterThan(0)
    expect(fresh.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0)

    // Each client its own HTTP/2 connection, so per-connection budgets and the connection counters are exact.
    const connection = () => rawClient(address, { 'grpc.use_local_subchannel_pool': 1 })
    const [stuckClient, readerA, readerB, publisher, flooder] = [connection(), connection(), connection(), connection(), connection()]
    const clients = [stuckClient, readerA, readerB, publisher, flooder]
    try {
      const key = randomKey()
      const stuck = subscribe(stuckClient, key)
      await stuck.synced
      stuck.call.pause()
      const a = subscribe(readerA, key)
      const b = subscribe(readerB, key)
      await Promise.all([a.synced, b.synced])

      // N accepted publishes (2 KiB bodies, so the stuck reader's HTTP/2 window fills and its queue overflows).
      const sender = randomKey()
      let next = 0
      const worker = async () => {
        while (next < N) {
          next++
          await publish(publisher, envelopeTo(key, sender, 2048))
        }
      }
      await Promise.all(Array.from({ length: 4 }, worker))
      await Promise.all([a.waitFor(N, 30_000), b.waitFor(N, 30_000)])
      // One to a key nobody subscribed to; one too large; one malformed (a 31-byte recipient).
      await publish(publisher, envelopeTo(randomKey()))
      const refusal = (p: Promise<void>) => p.then(() => undefined, (e: ServiceError) => e)
      expect((await refusal(publish(publisher, envelopeTo(key, sender, 5000))))?.code).toBe(status.RESOURCE_EXHAUSTED)
      expect((await refusal(publish(publisher, envelopeTo(randomKey(31)))))?.code).toBe(status.INVALID_ARGUMENT)
      // The flooder goes past its burst; the rate (1/s) refills a token or two meanwhile, so count the answers.
      let rateRefused = 0
      let floodAccepted = 0
      for (let i = 0; i < OVER_RATE_ATTEMPTS; i += 20) {
        const answers = await Promise.all(Array.from({ length: 20 }, () => refusal(publish(flooder, envelopeTo(randomKey())))))
        for (const err of answers) {
          if (!err) floodAccepted++
          else if (err.code === status.RESOURCE_EXHAUSTED && /publish rate limit/.test(err.details)) rateRefused++
          else throw err
        }
      }
      expect(rateRefused).toBeGreaterThanOrEqual(OVER_RATE_ATTEMPTS - BURST - 5)
      // One subscribe with a bad key.
      expect((await subscribe(readerA, randomKey(5)).failed).code).toBe(status.INVALID_ARGUMENT)

      const published = N + 1 + floodAccepted
      const m = await scrape(metricsAddress)
      expect(m.value('cunicu_signal_envelopes_published_total')).toBe(published)
      expect(m.byLabel('cunicu_signal_publish_refused_total', 'reason')).toEqual({ rate: rateRefused, size: 1, invalid: 1, auth: 0 })
      expect(m.byLabel('cunicu_signal_subscribe_refused_total', 'reason')).toMatchObject({ invalid: 1, auth: 0, rate: 0, connection_limit: 0, server_limit: 0 })
      const dropped = m.byLabel('cunicu_signal_envelopes_dropped_total', 'reason')
      // The unsubscribed key, and the flood (random keys): every accepted envelope nobody was subscribed for.
      expect(dropped.no_subscriber).toBe(1 + floodAccepted)
      expect(dropped.subscriber_gone).toBe(0)
      expect(dropped.queue_full).toBeGreaterThan(0)
      // The readers got exactly N each; the rest of the delivered copies went into the stuck reader's stream.
      const delivered = m.value('cunicu_signal_envelopes_delivered_total')
      const stuckWritten = delivered - 2 * N
      const stuckQueued = N - stuckWritten - dropped.queue_full!
      expect(stuckWritten).toBeGreaterThan(0)
      expect(stuckQueued).toBeGreaterThanOrEqual(0)
      expect(stuckQueued).toBeLessThanOrEqual(16)
      expect(m.histogramCount('cunicu_signal_delivery_seconds')).toBe(delivered)
      expect(m.value('cunicu_signal_subscriptions')).toBe(3)
      expect(m.value('cunicu_signal_topics')).toBe(1)
      expect(m.value('cunicu_signal_connections')).toBe(clients.length)
      expect(m.value('cunicu_signal_connections_accepted_total')).toBe(clients.length)
      expect(m.byLabel('cunicu_signal_connections_closed_total', 'reason')).toEqual({ handshake_timeout: 0, idle: 0, auth_failures: 0, drain: 0, client: 0 })
      console.log(`metrics run: published ${published}, delivered ${delivered} (stuck reader ${stuckWritten}), queue_full ${dropped.queue_full}, rate-refused ${rateRefused}`)

      // The drain: the stuck reader's queue cannot flush, so after --drain-timeout its leftovers are subscriber_gone.
      process.kill(server.child.pid!, 'SIGTERM')
      // While it drains (the stuck queue keeps it draining for --drain-timeout), /healthz says so.
      let draining = 0
      for (let i = 0; i < 100 && draining !== 503; i++) {
        draining = (await fetch(`http://${metricsAddress}/healthz`)).status
        if (draining !== 503) await new Promise((resolve) => setTimeout(resolve, 20))
      }
      expect(draining).toBe(503)
      expect(await server.exit(20_000)).toBe(143)
      const stopped = parseStopped(server.lines.find((l) => l.startsWith('stopped: '))!)
      expect(stopped).toMatchObject({
        published,
        delivered,
        droppedByReason: { no_subscriber: 1 + floodAccepted, queue_full: dropped.queue_full, subscriber_gone: stuckQueued },
        refusedPublishes: { rate: rateRefused, size: 1, invalid: 1, auth: 0 },
        refusedSubscribes: { invalid: 1, auth: 0, rate: 0, connection_limit: 0, server_limit: 0, shutting_down: 0 },
        connectionsAccepted: clients.length,
      })
      // `dropped` is the copies lost from subscriber queues: every copy for the three subscribers is accounted for.
      expect(stopped.delivered + stopped.dropped).toBe(3 * N)
    } finally {
      for (const c of clients) c.close()
    }
  }, 90_000)
})
