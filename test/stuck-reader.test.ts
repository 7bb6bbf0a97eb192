// Issue acceptance: one subscriber that never reads plus 10,000 publishes through a `signal` process. The
// other subscribers get all 10,000, the server's memory stays under a stated bound, and the drop counter
// shows the stuck reader's losses.
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { killAll, startCli } from './helpers/cli.js'
import { envelopeTo, publish, randomKey, rawClient, subscribe, wire } from './helpers/signaling.js'
import { waitUntil } from './helpers/wait.js'

afterEach(killAll)

const TOTAL = 10_000
/** What the server may grow by (VmHWM over the idle VmRSS): the stuck queue is bounded at 1,024 envelopes. */
const MEMORY_BOUND_MIB = 64

const kib = (pid: number, field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])

describe('a subscriber that never reads', () => {
  it('costs the others nothing: they get all 10,000, memory stays bounded, drops are counted', async () => {
    // A high publish rate: this test is about the stuck reader, not the per-connection rate limit.
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json', '--publish-rate', '100000', '--publish-burst', '100000'])
    const { address } = await server.waitForEvent((e) => e.type === 'listening')
    const pid = server.child.pid!
    const clients = Array.from({ length: 4 }, () => rawClient(address, { 'grpc.use_local_subchannel_pool': 1 }))
    try {
      const key = randomKey()
      const [stuckClient, healthyA, healthyB, publisher] = clients as [typeof clients[0], typeof clients[0], typeof clients[0], typeof clients[0]]
      const stuck = subscribe(stuckClient, key)
      await stuck.synced
      stuck.call.pause()
      const a = subscribe(healthyA, key)
      const b = subscribe(healthyB, key)
      await Promise.all([a.synced, b.synced])
      const idleKiB = kib(pid, 'VmRSS')

      const sender = randomKey()
      let next = 0
      const worker = async () => {
        while (next < TOTAL) {
          next++
          await publish(publisher, envelopeTo(key, sender, 200))
        }
      }
      await Promise.all(Array.from({ length: 16 }, worker))
      await Promise.all([a.waitFor(TOTAL, 60_000), b.waitFor(TOTAL, 60_000)])
      expect(a.received).toHaveLength(TOTAL)
      expect(b.received).toHaveLength(TOTAL)
      const grewMiB = (kib(pid, 'VmHWM') - idleKiB) / 1024
      expect(grewMiB).toBeLessThan(MEMORY_BOUND_MIB)
      console.log(`stuck reader: server peak grew ${grewMiB.toFixed(1)} MiB over idle (bound ${MEMORY_BOUND_MIB} MiB); stuck got ${stuck.received.length}`)
      // Which ones it lost, not only how many: its queue kept the newest, so once it reads again the last
      // envelope published (the healthy readers' last) reaches it, and last.
      const newest = wire(a.received[TOTAL - 1]!)
      stuck.call.resume()
      await waitUntil(() => stuck.received.some((e) => wire(e) === newest), 20_000, 'the stuck reader to get the newest envelope')
      expect(wire(stuck.received.at(-1)!)).toBe(newest)

      process.kill(pid, 'SIGTERM')
      expect(await server.exit()).toBe(143)
      const stopped = server.events.find((e) => e.type === 'stopped')!
      expect(stopped.published).toBe(TOTAL)
      // Every copy for the three subscribers was either handed to a stream or dropped: none is unaccounted.
      expect(stopped.delivered + stopped.dropped).toBe(3 * TOTAL)
      // The stuck reader got at most what its stream buffers held; the rest of its share is in the counter.
      expect(stopped.dropped).toBeGreaterThan(TOTAL - 2_000)
      console.log(`stuck reader: dropped ${stopped.dropped} of its ${TOTAL}`)
    } finally {
      clients.forEach((c) => c.close())
    }
  }, 120_000)
})
