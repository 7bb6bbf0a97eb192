#!/usr/bin/env node
// Allocation and GC per relayed envelope (issue 12 item 2), for choosing V8 flags with figures: runs
// `signal` under `node --trace-gc [FLAGS]` with the transport rows' relay load (bench/client.js), and reads
// the trace: bytes allocated per envelope (heap before each GC minus after the previous one), scavenges
// and mark-compacts per 100k envelopes, the longest pause, and server CPU per envelope.
//   node bench/gc-trace.js [--transport js|h2|grpc-js] [--seconds 3] [-- V8 FLAGS...]
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { argOption, cpuTicks, delay, installCleanup, PROD_ENV, ROOT, RUN_JS, runClient, stopClient, TICKS_PER_SECOND, track } from './lib.js'

const argv = process.argv.slice(2)
const dashes = argv.indexOf('--')
const v8Flags = dashes >= 0 ? argv.slice(dashes + 1) : []
const own = dashes >= 0 ? argv.slice(0, dashes) : argv
const option = (name, fallback) => argOption(own, name, fallback)
const transport = option('--transport', 'js')
const seconds = Number(option('--seconds', '3'))

installCleanup()
const server = track(spawn(process.execPath, ['--trace-gc', ...v8Flags, RUN_JS, 'signal', '--listen', '127.0.0.1:0', '--json', '--log-level', 'warn', '--transport', transport, '--publish-rate', '1000000', '--publish-burst', '1000000'], { cwd: ROOT, env: PROD_ENV, stdio: ['ignore', 'pipe', 'inherit'] }))
const gcs = []
let counting = false
const address = await new Promise((resolve, reject) => {
  server.once('exit', (code) => reject(new Error(`signal exited with ${code}`)))
  createInterface({ input: server.stdout }).on('line', (line) => {
    if (line.startsWith('{')) {
      const event = JSON.parse(line)
      if (event.type === 'listening') resolve(event.address)
      return
    }
    // [pid:0x…]     1234 ms: Scavenge 12.3 (15.0) -> 4.5 (16.0) MB, 1.2 / 0.0 ms ...
    const m = /: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Sweep)[^\d]*([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(line)
    if (m && counting) gcs.push({ kind: m[1], before: Number(m[2]), after: Number(m[4]), pauseMs: Number(m[6]) })
    else if (m) gcs.length = 0, gcs.push({ kind: 'baseline', before: Number(m[2]), after: Number(m[4]), pauseMs: 0 })
  })
})
const client = runClient({ mode: 'relay', target: 'signal', address, pairs: 25, window: 4, warmupMs: 1000, measureMs: seconds * 1000, messageBytes: 200 }, 60_000)
try {
  await client.next('ready')
  const result = client.next('result')
  client.send({ type: 'go' })
  await delay(1000)
  counting = true
  const ticks0 = cpuTicks(server.pid)
  const t0 = performance.now()
  const done = await result
  const cpuS = (cpuTicks(server.pid) - ticks0) / TICKS_PER_SECOND
  const wallS = (performance.now() - t0) / 1000
  counting = false
  const envelopes = (done.delivered * wallS * 1000) / done.elapsedMs
  let allocatedMB = 0
  for (let i = 1; i < gcs.length; i++) allocatedMB += Math.max(0, gcs[i].before - gcs[i - 1].after)
  const count = (kind) => gcs.filter((g) => g.kind === kind).length
  const per100k = (n) => Math.round((n / envelopes) * 100_000 * 10) / 10
  process.stdout.write(JSON.stringify({
    transport,
    v8Flags: v8Flags.join(' '),
    envelopes: Math.round(envelopes),
    perSecond: Math.round(done.delivered / (done.elapsedMs / 1000)),
    bytesPerEnvelope: Math.round((allocatedMB * 1024 * 1024) / envelopes),
    cpuUsPerEnvelope: Math.round(((cpuS / envelopes) * 1e6) * 10) / 10,
    scavengesPer100k: per100k(count('Scavenge')),
    markCompactsPer100k: per100k(count('Mark-Compact') + count('Mark-sweep')),
    maxPauseMs: Math.max(0, ...gcs.map((g) => g.pauseMs)),
    failed: done.failed,
  }) + '\n')
} finally {
  await stopClient(client)
  process.kill(server.pid, 'SIGKILL')
}
