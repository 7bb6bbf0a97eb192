// Where the cluster rows' extra CPU goes (BENCHMARKS.md finding 8a): the same relay load (bench/client.js relay
// mode, 2 client processes × 25 pairs) against
//   plain      a plain `signal` holding every client,
//   publish    the same publishers on a plain `signal` whose recipients subscribed on another plain `signal`:
//              the publish handling alone, nothing delivered (per published envelope),
//   crossing   two `signal --cluster redis://` instances, publishers on the first, their subscribers on the second.
// Prints, per process, CPU per envelope split into user and system time (/proc/PID/stat), so that the
// publishing and the receiving instance can be set beside the plain relay they replace: plain − publish is
// what a delivery costs inside the plain relay.
//   node bench/cluster-split.js [--rounds N] [--rate ENVELOPES_PER_S] [--seconds S] [--node-flags 'FLAGS']
// --rate: paced publishing instead of as fast as the clients go (a machine below saturation).
// --node-flags: Node/V8 flags for every signal process (e.g. '--max-semi-space-size=8'), to try GC settings.
// Starts its own redis-server and signals on free loopback ports; bench/lib.js tracks and kills them by PID.
import { readFileSync } from 'node:fs'
import { LATENCY_LIMIT_FLAGS } from './latency.js'
import { argOption, delay, installCleanup, RUN_JS, runClient, startListeningProcess, startRedis, stopClient, stopProcess } from './lib.js'

const argv = process.argv.slice(2)
const option = (name, fallback) => argOption(argv, name, fallback)
const rounds = Number(option('--rounds', '3'))
const rate = option('--rate') ? Number(option('--rate')) : undefined
const seconds = Number(option('--seconds', '3'))
const nodeFlags = option('--node-flags', '').split(' ').filter(Boolean)
const CLIENT_PROCESSES = 2
const TICKS_PER_SECOND = 100

installCleanup()

/** utime and stime of a process, in clock ticks. */
function times(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return { user: Number(fields[11]), system: Number(fields[12]) }
}

/** One measurement: µs per delivered envelope of each process in `pids`, user and system. */
async function measure(address, subAddress, pids) {
  const clients = Array.from({ length: CLIENT_PROCESSES }, () =>
    runClient({ mode: 'relay', target: 'signal', address, subAddress, pairs: 25, window: 4, warmupMs: 1000, measureMs: seconds * 1000 + 1500, messageBytes: 316, ...(rate ? { rate: rate / CLIENT_PROCESSES } : {}) }, 60_000),
  )
  try {
    await Promise.all(clients.map((h) => h.next('ready')))
    const results = clients.map((h) => h.next('result'))
    for (const h of clients) h.send({ type: 'go' })
    // Past the clients' warm-up, inside their counting window.
    await delay(1500)
    const before = pids.map(times)
    const t0 = performance.now()
    await delay(seconds * 1000)
    const after = pids.map(times)
    const elapsed = (performance.now() - t0) / 1000
    const done = await Promise.all(results)
    // Per delivered envelope; per published one where nothing is delivered (the publish-only case).
    const perSecond = done.reduce((s, r) => s + ((r.delivered || r.published) * 1000) / r.elapsedMs, 0)
    const failed = done.reduce((s, r) => s + r.failed, 0)
    const us = (ticks) => (ticks / TICKS_PER_SECOND / elapsed / perSecond) * 1e6
    return {
      perSecond,
      failed,
      processes: pids.map((_, i) => ({ user: us(after[i].user - before[i].user), system: us(after[i].system - before[i].system) })),
    }
  } finally {
    await Promise.all(clients.map(stopClient))
  }
}

const redis = await startRedis()
const started = []
try {
  // The per-connection publish limit raised, as in the relay rows (this load exceeds the default 200/s).
  for (const args of [[], [], ['--cluster', redis.url], ['--cluster', redis.url]]) {
    started.push(await startListeningProcess([...nodeFlags, RUN_JS, 'signal', '--listen', '127.0.0.1:0', '--json', ...LATENCY_LIMIT_FLAGS, ...args], 'cunicu-ts signal'))
  }
  const [plain, elsewhere, first, second] = started
  const fmt = (p) => `${(p.user + p.system).toFixed(1)} µs (user ${p.user.toFixed(1)}, system ${p.system.toFixed(1)})`
  console.log(`relay load ${rate ? `paced at ${rate}/s` : 'as fast as 2 client processes go'}, ${seconds} s per measurement, ${rounds} rounds${nodeFlags.length ? `, signals run with ${nodeFlags.join(' ')}` : ''}`)
  for (let r = 0; r < rounds; r++) {
    const p = await measure(plain.address, plain.address, [plain.pid])
    console.log(`plain      ${p.perSecond.toFixed(0)}/s, ${p.failed} failed: ${fmt(p.processes[0])}`)
    const o = await measure(plain.address, elsewhere.address, [plain.pid])
    console.log(`publish    ${o.perSecond.toFixed(0)}/s published, ${o.failed} failed: ${fmt(o.processes[0])}`)
    const c = await measure(first.address, second.address, [first.pid, second.pid])
    const sum = { user: c.processes[0].user + c.processes[1].user, system: c.processes[0].system + c.processes[1].system }
    console.log(`crossing   ${c.perSecond.toFixed(0)}/s, ${c.failed} failed: publishing ${fmt(c.processes[0])} + receiving ${fmt(c.processes[1])} = ${fmt(sum)}`)
  }
} finally {
  await Promise.all(started.map(stopProcess))
  await stopProcess(redis)
}
