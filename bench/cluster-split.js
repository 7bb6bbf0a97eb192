// Where the cluster rows' extra CPU goes (BENCHMARKS.md finding 8a): the same relay load (bench/client.js relay
// mode, 2 client processes × 25 pairs) against
//   plain      a plain `signal` holding every client,
//   publish    the same publishers on a plain `signal` whose recipients subscribed on another plain `signal`:
//              the publish handling alone, nothing delivered (per published envelope),
//   crossing   two `signal --cluster redis://` instances, publishers on the first, their subscribers on the second.
// Prints, per process, CPU per envelope split into user and system time (/proc/PID/stat), so that the
// publishing and the receiving instance can be set beside the plain relay they replace: plain − publish is
// what a delivery costs inside the plain relay.
//   node bench/cluster-split.js [--rounds N] [--rate ENVELOPES_PER_S] [--seconds S] [--node-flags 'FLAGS'] [--perf DIR]
// --rate: paced publishing instead of as fast as the clients go (a machine below saturation).
// --node-flags: Node/V8 flags for every signal process (e.g. '--max-semi-space-size=8'), to try GC settings.
// --perf DIR: also samples each measured process with Linux perf (on-CPU, kernel and user, call graphs) into
//   DIR/CASE-ROUND-PROCESS.data, and runs the signals with --perf-basic-prof so that JS frames have names
//   (perf report reads them from /tmp/perf-PID.map: delete those when done).
//   /proc splits user from system time by ticks; perf tells which code the time went to (finding 8a).
//   Prints, per process, its CPU per envelope split by perf into kernel, garbage collector, cluster code and
//   other user code (self time). The files stay for a closer look, e.g.
//   perf report -i DIR/crossing0-0.data --no-children --sort dso,sym
// Starts its own redis-server and signals on free loopback ports; bench/lib.js tracks and kills them by PID.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { LATENCY_LIMIT_FLAGS } from './latency.js'
import { argOption, cpuTimes, delay, installCleanup, RUN_JS, runClient, startListeningProcess, startRedis, stopClient, stopProcess, TICKS_PER_SECOND } from './lib.js'

const argv = process.argv.slice(2)
const option = (name, fallback) => argOption(argv, name, fallback)
const rounds = Number(option('--rounds', '3'))
const rate = option('--rate') ? Number(option('--rate')) : undefined
const seconds = Number(option('--seconds', '3'))
const perfDir = option('--perf')
// --perf-basic-prof writes /tmp/perf-PID.map, which perf report reads for JS names (delete them afterwards),
// and a V8 log, kept in DIR instead of the checkout.
const perfFlags = perfDir ? ['--perf-basic-prof', `--logfile=${join(perfDir, 'v8-%p.log')}`, '--no-logfile-per-isolate'] : []
const nodeFlags = [...option('--node-flags', '').split(' ').filter(Boolean), ...perfFlags]
const PERF_HZ = 2999
const CLIENT_PROCESSES = 2

installCleanup()

/** `perf record` on `pid` for `seconds` into DIR/`name`.data; resolves when it has written its file. */
function perfRecord(pid, name) {
  const child = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(PERF_HZ), '-g', '-p', String(pid), '-o', join(perfDir, `${name}.data`), '--', 'sleep', String(seconds)], { stdio: 'ignore' })
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`--perf needs Linux perf (Debian: linux-perf): ${err.message}`)))
    child.once('exit', resolve)
  })
}

/**
 * Where a process's CPU per envelope went by perf's samples (self time): the kernel, V8's garbage collector,
 * code of the cluster transports (dist/core/server/cluster/; the socket writes it asks for count as kernel),
 * and everything else in user space. Shares of `cpuUs`, the process's CPU per envelope from /proc.
 */
function perfSplit(name, cpuUs) {
  const report = spawnSync('perf', ['report', '-i', join(perfDir, `${name}.data`), '--no-children', '--sort', 'dso,sym', '-n', '--stdio', '-g', 'none'], { encoding: 'utf8', maxBuffer: 64 << 20 })
  const split = { kernel: 0, gc: 0, cluster: 0, other: 0 }
  for (const line of (report.stdout ?? '').split('\n')) {
    const m = /^\s+[\d.]+%\s+(\d+)\s+(\S+(?: tid \d+)?)\s+\[(.)\]\s+(.*)$/.exec(line)
    if (!m) continue
    const [, samples, dso, , symbol] = m
    const kind = dso.includes('kernel')
      ? 'kernel'
      : /garbage collector|v8::internal::(Heap|Scaveng|Mark|Sweep|ConcurrentMarking|MemoryAllocator|ArrayBufferSweeper|GlobalBackingStore)/.test(symbol)
        ? 'gc'
        : symbol.includes('/core/server/cluster/')
          ? 'cluster'
          : 'other'
    split[kind] += Number(samples)
  }
  const total = Object.values(split).reduce((a, b) => a + b, 0) || 1
  return Object.entries(split)
    .map(([kind, n]) => `${kind} ${((n / total) * cpuUs).toFixed(1)}`)
    .join(', ')
}

/** One measurement: µs per delivered envelope of each process in `pids`, user and system; `name` names perf files. */
async function measure(address, subAddress, pids, name) {
  const clients = Array.from({ length: CLIENT_PROCESSES }, () =>
    runClient({ mode: 'relay', target: 'signal', address, subAddress, pairs: 25, window: 4, warmupMs: 1000, measureMs: seconds * 1000 + 1500, messageBytes: 316, ...(rate ? { rate: rate / CLIENT_PROCESSES } : {}) }, 60_000),
  )
  try {
    await Promise.all(clients.map((h) => h.next('ready')))
    const results = clients.map((h) => h.next('result'))
    for (const h of clients) h.send({ type: 'go' })
    // Past the clients' warm-up, inside their counting window.
    await delay(1500)
    const perfs = perfDir ? pids.map((pid, i) => perfRecord(pid, `${name}-${i}`)) : []
    const before = pids.map(cpuTimes)
    const t0 = performance.now()
    await delay(seconds * 1000)
    const after = pids.map(cpuTimes)
    const elapsed = (performance.now() - t0) / 1000
    await Promise.all(perfs)
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

if (perfDir) mkdirSync(perfDir, { recursive: true })
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
    const p = await measure(plain.address, plain.address, [plain.pid], `plain${r}`)
    console.log(`plain      ${p.perSecond.toFixed(0)}/s, ${p.failed} failed: ${fmt(p.processes[0])}`)
    const perfLine = (label, name, p) => perfDir && console.log(`  perf ${label}: ${perfSplit(name, p.user + p.system)} µs`)
    perfLine('plain', `plain${r}-0`, p.processes[0])
    const o = await measure(plain.address, elsewhere.address, [plain.pid], `publish${r}`)
    console.log(`publish    ${o.perSecond.toFixed(0)}/s published, ${o.failed} failed: ${fmt(o.processes[0])}`)
    perfLine('publish', `publish${r}-0`, o.processes[0])
    const c = await measure(first.address, second.address, [first.pid, second.pid], `crossing${r}`)
    const sum = { user: c.processes[0].user + c.processes[1].user, system: c.processes[0].system + c.processes[1].system }
    console.log(`crossing   ${c.perSecond.toFixed(0)}/s, ${c.failed} failed: publishing ${fmt(c.processes[0])} + receiving ${fmt(c.processes[1])} = ${fmt(sum)}`)
    perfLine('publishing', `crossing${r}-0`, c.processes[0])
    perfLine('receiving', `crossing${r}-1`, c.processes[1])
  }
} finally {
  await Promise.all(started.map(stopProcess))
  await stopProcess(redis)
}
