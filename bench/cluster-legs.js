// The Redis legs of `signal --cluster` alone, without gRPC (BENCHMARKS.md finding 8a): two cluster transports
// in this process, B publishes ENVELOPES 316-byte envelopes over KEYS keys (BATCH per tick, as a busy server
// hands them over), A has joined every key and receives them; the figure is this process's CPU (both legs)
// per envelope, the steadier companion of the `cluster` rows, whose two-instance ratios swing with throughput.
//   node bench/cluster-legs.js [--rounds N] [--dist DIR]
// --dist: the build to measure (default ./dist), e.g. another worktree's, to compare two versions on the same
// machine state. Starts its own redis-server and a 3-master Redis Cluster on free loopback ports (bench/lib.js
// tracks and kills them).
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { startRedisCluster } from './cluster.js'
import { argOption, ROOT, installCleanup, startRedis, stopProcess } from './lib.js'

const ENVELOPES = 30_000
const KEYS = 100
const BATCH = 50
const ENVELOPE_BYTES = 316
const ROUND_TIMEOUT_MS = 60_000

const argv = process.argv.slice(2)
const option = (name, fallback) => argOption(argv, name, fallback)
const rounds = Number(option('--rounds', '3'))
const dist = resolve(option('--dist', join(ROOT, 'dist')))

installCleanup()
const { openCluster } = await import(pathToFileURL(join(dist, 'core/server/cluster/open-cluster.js')).href)
const { parseClusterUrl } = await import(pathToFileURL(join(dist, 'core/server/cluster/cluster-url.js')).href)

/** One round: CPU µs per envelope (both transports, this process) and how many arrived. */
async function round(url) {
  const keys = Array.from({ length: KEYS }, () => randomBytes(32))
  const envelope = randomBytes(ENVELOPE_BYTES)
  let received = 0
  let done
  const all = new Promise((r) => (done = r))
  const a = await openCluster(parseClusterUrl(url), {
    deliver: () => {
      if (++received === ENVELOPES) done()
    },
  })
  const b = await openCluster(parseClusterUrl(url), { deliver: () => {} })
  try {
    await Promise.all(keys.map((k) => a.join(k)))
    const start = process.cpuUsage()
    const startedAt = performance.now()
    for (let sent = 0; sent < ENVELOPES; ) {
      for (let i = 0; i < BATCH && sent < ENVELOPES; i++, sent++) b.publish(keys[sent % KEYS], envelope)
      await new Promise((r) => setImmediate(r))
    }
    await b.flush()
    let timer
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, ROUND_TIMEOUT_MS)))])
    clearTimeout(timer)
    const cpu = process.cpuUsage(start)
    return { cpuUs: (cpu.user + cpu.system) / ENVELOPES, received, ms: performance.now() - startedAt }
  } finally {
    await a.close()
    await b.close()
  }
}

const redis = await startRedis()
const redisCluster = await startRedisCluster(3)
try {
  const cases = { 'redis://': redis.url, 'redis-cluster://': redisCluster.url }
  const results = Object.fromEntries(Object.keys(cases).map((name) => [name, []]))
  // A warm-up round each, not counted: the first round pays for JIT compilation.
  for (const url of Object.values(cases)) await round(url)
  for (let r = 0; r < rounds; r++) for (const [name, url] of Object.entries(cases)) results[name].push(await round(url))
  console.log(`${ENVELOPES} envelopes of ${ENVELOPE_BYTES} bytes over ${KEYS} keys, ${BATCH} per tick; build ${dist}`)
  for (const [name, list] of Object.entries(results)) {
    const cpu = list.map((x) => x.cpuUs).sort((x, y) => x - y)
    const lost = list.filter((x) => x.received !== ENVELOPES).map((x) => x.received)
    console.log(`${name.padEnd(17)} CPU per envelope (both legs): median ${cpu[cpu.length >> 1].toFixed(1)} µs, rounds ${cpu.map((c) => c.toFixed(1)).join(' ')}${lost.length ? `; INCOMPLETE rounds received ${lost.join(', ')}` : ''}`)
  }
} finally {
  await stopProcess(redis)
  await redisCluster.close()
}
