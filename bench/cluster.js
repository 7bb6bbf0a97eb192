// The cluster rows: what `signal --cluster` costs per envelope, through one Redis (classic Pub/Sub) and
// through a Redis Cluster (sharded Pub/Sub), against a plain single `signal` measured in the same run.
//
// Method: the relay row's clients (bench/client.js relay mode, passed in as `relayThroughput`) against
//   plain    one `signal` without --cluster holding every client (the reference),
//   redis    two `signal --cluster redis://` instances, publishers on the first, their subscribers on the
//            second, so every envelope crosses Redis,
//   sharded  the same with `--cluster redis-cluster://` on a 3-master Redis Cluster (no replicas: they
//            matter for failover, not for this cost; redis-sharded.test.ts covers failover),
//   one      one `signal --cluster redis://` instance holding every client (a side figure: the cost of
//            publishing to Redis when every subscriber is local).
// The cases alternate in rounds (the order rotates), so the machine's load drifts onto all alike. The
// primary figure is signal CPU (utime+stime of all instances of a case, from /proc) per delivered envelope;
// redis-server's CPU is reported beside it.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findExecutable } from '../scripts/find-executable.js'
import { LATENCY_LIMIT_FLAGS } from './latency.js'
import { PROD_ENV, ROOT, RUN_JS, delay, freePort, startRedis, startSignal, stopProcess } from './lib.js'

/** The target: cluster mode costs at most this much signal CPU per envelope as a single instance. */
const CPU_RATIO_TARGET = 1.15

/**
 * `masters` redis-server nodes in cluster mode (no replicas) in a temp dir, joined with `redis-cli --cluster
 * create`; resolves once every node reports cluster_state:ok. The nodes are tracked children (lib.js),
 * killed by PID by the caller (stopProcess) or by the run's cleanup.
 */
export async function startRedisCluster(masters) {
  const cli = findExecutable('redis-cli')
  if (!cli) throw new Error('redis-cli not found: the cluster row needs the Debian package redis-server')
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-bench-redis-cluster-'))
  const nodes = []
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedis(async (port) => [
          '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-port', String(await freePort()),
          '--cluster-node-timeout', '1000', '--cluster-require-full-coverage', 'no', '--dir', dir,
        ]),
      )
    }
    const create = spawnSync(cli, ['--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 })
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${(create.stderr || create.stdout).trim().split('\n').pop()}`)
    const deadline = Date.now() + 30_000
    const ok = (n) => /cluster_state:ok/.test(spawnSync(cli, ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8', timeout: 5000 }).stdout ?? '')
    while (!nodes.every(ok)) {
      if (Date.now() > deadline) throw new Error('Redis Cluster not ok after 30 s')
      await delay(100)
    }
    return { nodes, url: `redis-cluster://${nodes.map((n) => n.address).join(',')}`, close: async () => {
      await Promise.all(nodes.map(stopProcess))
      rmSync(dir, { recursive: true, force: true })
    } }
  } catch (err) {
    await Promise.all(nodes.map(stopProcess))
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** The cluster section: `relayThroughput(target, address, serverPids, { subAddress, watch })` from run.js. */
export async function cluster({ cfg, row, log, notes, relayThroughput }) {
  const help = spawnSync(process.execPath, [RUN_JS, 'signal', '--help'], { cwd: ROOT, env: PROD_ENV, encoding: 'utf8', timeout: 20_000 })
  if (!/redis-cluster:\/\//.test(help.stdout ?? '')) {
    const note = 'cluster: skipped, `signal --cluster redis-cluster://` does not exist in this build'
    notes.push(note)
    log(note)
    return
  }
  log('cluster: plain signal vs 2 instances through Redis vs 2 instances through a Redis Cluster')
  let redis, redisCluster
  const signals = []
  try {
    ;[redis, redisCluster] = await Promise.all([startRedis(), startRedisCluster(3)])
    // The per-connection publish limit raised, as for the relay and latency rows: ~300 publishes/s per
    // connection exceed the default 200/s, and only the 400-publish burst hid it in a short window.
    const start = async (args = []) => {
      const s = await startSignal([...LATENCY_LIMIT_FLAGS, ...args])
      signals.push(s)
      return s
    }
    const plain = await start()
    const [first, second, one] = await Promise.all([0, 1, 2].map(() => start(['--cluster', redis.url])))
    const [shardedFirst, shardedSecond] = await Promise.all([0, 1].map(() => start(['--cluster', redisCluster.url])))
    const shardWatch = Object.fromEntries(redisCluster.nodes.map((n, i) => [`redis${i}`, n.pid]))
    const cases = {
      plain: () => relayThroughput('signal', plain.address, [plain.pid]),
      // `receiver`: the subscribers' instance alone, to split the summed figure (publishing vs receiving side).
      redis: () => relayThroughput('signal', first.address, [first.pid, second.pid], { subAddress: second.address, watch: { redis0: redis.pid, receiver: second.pid } }),
      sharded: () => relayThroughput('signal', shardedFirst.address, [shardedFirst.pid, shardedSecond.pid], { subAddress: shardedSecond.address, watch: { ...shardWatch, receiver: shardedSecond.pid } }),
      one: () => relayThroughput('signal', one.address, [one.pid], { watch: { redis0: redis.pid } }),
    }
    const order = Object.keys(cases)
    const runs = Object.fromEntries(order.map((name) => [name, []]))
    for (let r = 0; r < cfg.rounds; r++) {
      for (let i = 0; i < order.length; i++) {
        const name = order[(i + r) % order.length]
        runs[name].push(await cases[name]())
      }
    }
    const s = Object.fromEntries(order.map((name) => [name, summarize(runs[name])]))
    for (const [name, x] of Object.entries(s)) {
      // Each envelope is delivered once: far from 1 means lost or duplicated envelopes (window edges aside).
      const perPublished = x.delivered / x.published
      if (!(perPublished > 0.9 && perPublished < 1.1)) notes.push(`cluster ${name}: ${x.delivered} delivered for ${x.published} published`)
    }
    const n = cfg.processes * cfg.pairsPerProcess
    const detail = { ...s, rounds: cfg.rounds, clientProcesses: cfg.processes, inFlightPerPublisher: cfg.window, envelopeBytes: runs.plain[0].envelopeBytes }
    row({
      id: 'cluster',
      name: `cluster: 2 instances through Redis (pub on 1, sub on 2), ${n} pub + ${n} sub`,
      value: s.redis.perSecond,
      unit: 'envelopes/s',
      reference: s.one.perSecond,
      referenceName: '1 `signal --cluster` instance with all clients, same run',
      target: null,
      detail,
    })
    for (const [id, name, x] of [
      ['cluster-cpu-redis', 'redis://, one Redis', s.redis],
      ['cluster-cpu-redis-cluster', 'redis-cluster://, 3-master Redis Cluster', s.sharded],
    ]) {
      row({
        id,
        name: `cluster CPU per envelope: 2 instances via ${name} (both signals' CPU)`,
        value: x.signalCpuUsPerEnvelope,
        unit: 'µs',
        reference: s.plain.signalCpuUsPerEnvelope,
        referenceName: 'a single plain `signal`, same run',
        target: `≤ ${CPU_RATIO_TARGET}×`,
        check: (_value, ratio) => ratio <= CPU_RATIO_TARGET,
        detail: { redisCpuUsPerEnvelope: x.redisCpuUsPerEnvelope, perSecond: x.perSecond, vsPlainThroughput: round(x.perSecond / s.plain.perSecond, 3) },
      })
    }
    const cpuNote =
      `cluster: signal CPU per envelope: plain ${s.plain.signalCpuUsPerEnvelope} µs; redis:// 2 instances ${s.redis.signalCpuUsPerEnvelope} µs (receiving instance ${s.redis.receiverCpuUsPerEnvelope}) + ${s.redis.redisCpuUsPerEnvelope} µs redis-server; ` +
      `redis-cluster:// 2 instances ${s.sharded.signalCpuUsPerEnvelope} µs (receiving instance ${s.sharded.receiverCpuUsPerEnvelope}) + ${s.sharded.redisCpuUsPerEnvelope} µs over 3 redis-servers; ` +
      `1 --cluster redis:// instance with all clients ${s.one.signalCpuUsPerEnvelope} µs ` +
      // The "1.38 ×" was measured against this case (then about as cheap as a plain signal).
      `(2 instances via redis:// ÷ it: ${round(s.redis.signalCpuUsPerEnvelope / s.one.signalCpuUsPerEnvelope, 2)} ×)`
    notes.push(cpuNote)
    log(`    ${cpuNote}`)
  } finally {
    await Promise.all(signals.map(stopProcess))
    await stopProcess(redis)
    await redisCluster?.close()
  }
}

function summarize(list) {
  const mean = (f) => list.reduce((a, x) => a + f(x), 0) / list.length
  const total = (f) => list.reduce((a, x) => a + f(x), 0)
  /** CPU per delivered envelope, µs (relayThroughput gives cores busy and envelopes/s). */
  const cpuUs = (f) => round((total(f) / total((x) => x.perSecond)) * 1e6, 1)
  const redisCores = (x) => Object.entries(x.watchCpu).reduce((a, [name, cores]) => (name.startsWith('redis') ? a + cores : a), 0)
  const withRedis = Object.keys(list[0].watchCpu).some((name) => name.startsWith('redis'))
  const withReceiver = 'receiver' in list[0].watchCpu
  return {
    perSecond: mean((x) => x.perSecond),
    published: total((x) => x.published),
    delivered: total((x) => x.delivered),
    failed: total((x) => x.failed),
    // Through Redis nothing holds a publisher back until the far instance delivered, so a backlog shows
    // here as < 1 (envelopes published in the window, delivered after it).
    deliveredPerPublished: round(total((x) => x.delivered) / total((x) => x.published), 3),
    signalCpuCores: round(mean((x) => x.serverCpu), 2),
    signalCpuUsPerEnvelope: cpuUs((x) => x.serverCpu),
    ...(withRedis ? { redisCpuCores: round(mean(redisCores), 2), redisCpuUsPerEnvelope: cpuUs(redisCores) } : {}),
    ...(withReceiver ? { receiverCpuUsPerEnvelope: cpuUs((x) => x.watchCpu.receiver) } : {}),
    perRound: list.map((x) => round(x.perSecond, 0)),
  }
}

function round(x, digits) {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x
}
