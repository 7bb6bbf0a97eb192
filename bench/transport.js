// The transport rows (issue 12): what a relayed envelope costs the server, and what an idle peer costs it,
// for `signal` on its JS HTTP/2 transport (`js`, the default), on node:http2 (`--transport h2`),
// `signal --transport grpc-js`, and a minimal
// grpc-js relay (bench/grpc-js-relay.js, pass-through serializers, no limits or counters) measured in the
// same run.
//
// CPU per envelope: 50 publishers + 50 subscribers, each its own connection (bench/client.js relay mode),
// ~316-byte envelopes; server CPU from /proc (utime+stime) over the run divided by envelopes delivered per
// second. The three servers take turns in a rotating order, several rounds; the figure is each one's median.
// The publish rate limit is raised for `signal` (--publish-rate/--publish-burst): this row is about the
// relay path, and a refused publish would be cheaper than a relayed one. Failed calls are reported.
//
// Idle peers: N peers, each its own TCP connection holding one Subscribe stream (bench/idle-peers.mjs, raw
// node:http2), from client processes on 127.0.0.x source addresses; server RSS after they are held minus
// before, per peer. `signal` gets --max-connections/--max-streams/--max-connections-per-ip to match N.
import { join } from 'node:path'
import { BENCH_DIR, cpuTicks, delay, median, ndjsonProcess, rssKiB, runClient, startListeningProcess, startSignal, stopClient, stopProcess, TICKS_PER_SECOND } from './lib.js'

const MESSAGE_BYTES = 200
const FULL = {
  cpu: { processes: 2, pairsPerProcess: 25, window: 4, warmupMs: 1000, measureMs: 2000, rounds: 5 },
  idle: { peers: 19_000, processes: 4, settleMs: 3000 },
}
const QUICK = {
  cpu: { processes: 1, pairsPerProcess: 2, window: 1, warmupMs: 100, measureMs: 300, rounds: 1 },
  idle: { peers: 200, processes: 1, settleMs: 300 },
}
const NO_RATE_LIMIT = ['--publish-rate', '1000000', '--publish-burst', '1000000']

const SERVERS = {
  js: { name: 'signal (js transport)', start: () => startSignal([...NO_RATE_LIMIT, '--transport', 'js']) },
  h2: { name: 'signal --transport h2 (node:http2)', start: () => startSignal([...NO_RATE_LIMIT, '--transport', 'h2']) },
  'grpc-js': { name: 'signal --transport grpc-js', start: () => startSignal([...NO_RATE_LIMIT, '--transport', 'grpc-js']) },
  minimal: { name: 'minimal grpc-js relay', start: () => startListeningProcess([join(BENCH_DIR, 'grpc-js-relay.js')], 'grpc-js relay') },
}

/** One round against a running server: µs of server CPU per delivered envelope, and calls that failed. */
async function cpuRound(server, c) {
  const clients = []
  try {
    for (let p = 0; p < c.processes; p++) {
      clients.push(runClient({ mode: 'relay', target: 'signal', address: server.address, pairs: c.pairsPerProcess, window: c.window, warmupMs: c.warmupMs, measureMs: c.measureMs, messageBytes: MESSAGE_BYTES }, 30_000))
    }
    const ready = await Promise.all(clients.map((h) => h.next('ready')))
    const ticks0 = cpuTicks(server.pid)
    const t0 = performance.now()
    const results = clients.map((h) => h.next('result'))
    for (const h of clients) h.send({ type: 'go' })
    const done = await Promise.all(results)
    const cores = (cpuTicks(server.pid) - ticks0) / TICKS_PER_SECOND / ((performance.now() - t0) / 1000)
    const perSecond = done.reduce((s, r) => s + (r.delivered * 1000) / r.elapsedMs, 0)
    return { usPerEnvelope: (cores / perSecond) * 1e6, perSecond, cores, failed: done.reduce((s, r) => s + r.failed, 0), envelopeBytes: ready[0].envelopeBytes }
  } finally {
    await Promise.all(clients.map(stopClient))
  }
}

async function cpuPerEnvelope({ c, row, log, notes }) {
  const names = Object.keys(SERVERS)
  const runs = Object.fromEntries(names.map((n) => [n, []]))
  for (let round = 0; round < c.rounds; round++) {
    // Rotating order: drift in the machine's load falls on every server alike.
    const order = names.map((_, i) => names[(i + round) % names.length])
    for (const name of order) {
      const server = await SERVERS[name].start()
      try {
        runs[name].push(await cpuRound(server, c))
      } finally {
        await stopProcess(server)
      }
    }
    log(`  transport round ${round + 1}/${c.rounds}: ${names.map((n) => `${n} ${runs[n].at(-1).usPerEnvelope.toFixed(1)} µs`).join(', ')}`)
  }
  const us = (name) => median(runs[name].map((r) => r.usPerEnvelope))
  for (const name of names) {
    const failed = runs[name].reduce((s, r) => s + r.failed, 0)
    if (failed > 0) notes.push(`transport CPU row, ${SERVERS[name].name}: ${failed} calls failed`)
  }
  const detail = {
    envelopeBytes: runs.js[0].envelopeBytes,
    rounds: c.rounds,
    publishersAndSubscribers: c.processes * c.pairsPerProcess,
    h2TransportUs: round1(us('h2')),
    grpcJsTransportUs: round1(us('grpc-js')),
    perRoundUs: Object.fromEntries(names.map((n) => [n, runs[n].map((r) => round1(r.usPerEnvelope))])),
    perRoundEnvelopesPerSecond: Object.fromEntries(names.map((n) => [n, runs[n].map((r) => Math.round(r.perSecond))])),
    serverCores: Object.fromEntries(names.map((n) => [n, round1(median(runs[n].map((r) => r.cores)))])),
  }
  row({ id: 'transport-cpu', name: 'relay server CPU per envelope, signal (js transport)', value: us('js'), unit: 'µs', reference: us('minimal'), referenceName: 'minimal grpc-js relay, same run', target: '≤ 40 µs', check: (v) => v <= 40, detail })
  row({ id: 'transport-cpu-h2', name: 'relay server CPU per envelope, signal --transport h2 (node:http2)', value: us('h2'), unit: 'µs', reference: us('minimal'), referenceName: 'minimal grpc-js relay, same run', target: null, detail: { rounds: c.rounds } })
  row({ id: 'transport-cpu-grpc-js', name: 'relay server CPU per envelope, signal --transport grpc-js', value: us('grpc-js'), unit: 'µs', reference: us('minimal'), referenceName: 'minimal grpc-js relay, same run', target: null, detail: { rounds: c.rounds } })
}

/** Server RSS per idle peer: `peers` connections with one Subscribe stream each. */
async function rssPerPeer(start, c) {
  const server = await start()
  const clients = []
  try {
    await delay(c.settleMs)
    const before = rssKiB(server.pid)
    const perProcess = Math.ceil(c.peers / c.processes)
    for (let p = 0; p < c.processes; p++) {
      const count = Math.min(perProcess, c.peers - p * perProcess)
      clients.push(ndjsonProcess(process.execPath, [join(BENCH_DIR, 'idle-peers.mjs'), server.address, String(count), `127.0.0.${10 + p}`]))
    }
    const held = await Promise.all(clients.map((h) => h.next((e) => e.type === 'held', 200_000, 'idle peers')))
    const peers = held.reduce((s, h) => s + h.event.peers, 0)
    await delay(c.settleMs)
    const after = rssKiB(server.pid)
    return { kibPerPeer: (after - before) / peers, peers, beforeMiB: round1(before / 1024), afterMiB: round1(after / 1024), openMs: Math.max(...held.map((h) => h.event.ms)) }
  } finally {
    for (const h of clients) await stopProcess(h)
    await stopProcess(server)
  }
}

async function idlePeers({ c, row, log }) {
  const limits = ['--max-connections', String(c.peers + 1000), '--max-streams', String(c.peers + 1000), '--max-connections-per-ip', String(c.peers), '--log-level', 'warn']
  log(`  idle peers: ${c.peers} connections with one Subscribe each`)
  const js = await rssPerPeer(() => startSignal([...limits, '--transport', 'js']), c)
  const h2 = await rssPerPeer(() => startSignal([...limits, '--transport', 'h2']), c)
  const ref = await rssPerPeer(SERVERS.minimal.start, c)
  const common = { unit: 'KiB', reference: ref.kibPerPeer, referenceName: 'minimal grpc-js relay, same clients' }
  row({
    id: 'transport-idle-peer',
    name: `server RSS per idle peer at ${c.peers} peers, signal (js transport)`,
    value: js.kibPerPeer,
    ...common,
    target: '≤ 20 KiB',
    check: (v) => v <= 20,
    detail: { signal: js, minimalGrpcJs: ref },
  })
  row({ id: 'transport-idle-peer-h2', name: `server RSS per idle peer at ${c.peers} peers, signal --transport h2 (node:http2)`, value: h2.kibPerPeer, ...common, target: null, detail: { signal: h2 } })
}

export async function transport({ quick, row, log, notes }) {
  const cfg = quick ? QUICK : FULL
  log('transport: relay CPU per envelope and RSS per idle peer, signal (js, h2, grpc-js) vs a minimal grpc-js relay')
  await cpuPerEnvelope({ c: cfg.cpu, row, log, notes })
  await idlePeers({ c: cfg.idle, row, log })
}

function round1(x) {
  return Math.round(x * 10) / 10
}
