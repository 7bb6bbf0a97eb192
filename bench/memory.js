// The memory rows (section `memory`): server RSS per idle subscription at 10,000 and 100,000 subscribe
// streams, multiplexed over connections (`streamsPerConnection` each), against the grpc-js echo server's `Hold`
// stream (what grpc-js itself costs per held server stream) in the same run.
//
// signal's defaults would refuse most of these (64 subscriptions per connection, 10,000 on the server,
// 256 connections per IP, 20 subscribes/s per connection), so the limits are raised explicitly
// (MEMORY_SIGNAL_FLAGS) and the rows say so; `--log-level warn` keeps 100,000 "subscribed" log lines out.
import { TICKS_PER_SECOND, cpuTicks, delay, median, rssKiB, runClient, startEcho, startSignal, stopClient, stopProcess } from './lib.js'

function signalFlags(streams, perConnection) {
  return [
    ['--max-streams', streams],
    ['--max-subscriptions-per-connection', perConnection],
    ['--max-connection-streams', perConnection + 16], // must exceed the subscriptions per connection
    ['--max-connections-per-ip', Math.ceil(streams / perConnection) + 16],
    ['--max-connections', Math.ceil(streams / perConnection) + 16],
    ['--subscribe-rate', 1_000_000],
    ['--subscribe-burst', 1_000_000],
    ['--log-level', 'warn'],
  ].flatMap(([flag, value]) => [flag, String(value)])
}

/**
 * A fresh server; client processes connect every connection and wait; RSS is read; then every stream is
 * opened, and after each got its first frame and `settleMs` passed, RSS is read three times (median).
 * The server's CPU over the idle settle period is recorded too (what idle subscriptions cost in CPU).
 */
async function holdStreams(start, target, streams, c, quick) {
  const server = await start()
  const clients = []
  try {
    const perProcess = Math.ceil(streams / c.processes)
    for (let p = 0; p < c.processes; p++) {
      const mine = Math.min(perProcess, streams - p * perProcess)
      clients.push(runClient({ mode: 'hold', target, address: server.address, streams: mine, channels: Math.ceil(mine / c.streamsPerConnection) }, c.timeoutMs))
    }
    await Promise.all(clients.map((h) => h.next('connected')))
    await delay(c.settleMs)
    const before = rssKiB(server.pid)
    const t0 = performance.now()
    const held = clients.map((h) => h.next('held'))
    for (const h of clients) h.send({ type: 'open' })
    const opened = (await Promise.all(held)).reduce((s, m) => s + m.streams, 0)
    const openSeconds = (performance.now() - t0) / 1000
    const idleTicks0 = cpuTicks(server.pid)
    const idle0 = performance.now()
    await delay(c.settleMs)
    // Three readings a little apart; the median damps a GC landing on one of them.
    const after = []
    for (let i = 0; i < 3; i++) {
      after.push(rssKiB(server.pid))
      await delay(quick ? 20 : 300)
    }
    const idleSeconds = (performance.now() - idle0) / 1000
    const idleCores = (cpuTicks(server.pid) - idleTicks0) / TICKS_PER_SECOND / idleSeconds
    const afterKiB = median(after)
    return {
      perStreamKiB: (afterKiB - before) / opened,
      beforeKiB: before,
      afterKiB,
      streams: opened,
      connections: Math.ceil(opened / c.streamsPerConnection),
      openSeconds: Number(openSeconds.toFixed(1)),
      idleCpuCores: Number(idleCores.toFixed(4)),
      idleSeconds: Number(idleSeconds.toFixed(2)), // one clock tick (10 ms) in this window is the resolution
    }
  } finally {
    await Promise.all(clients.map(stopClient))
    await stopProcess(server)
  }
}

/** `cfg`: { counts: [{ id, streams }], processes, streamsPerConnection, settleMs, timeoutMs }. */
export async function memory({ cfg, row, log, quick }) {
  for (const { id, streams } of cfg.counts) {
    log(`memory per idle subscription, ${streams} streams`)
    const flags = signalFlags(streams, cfg.streamsPerConnection)
    const ours = await holdStreams(() => startSignal(flags), 'signal', streams, cfg, quick)
    const ref = await holdStreams(startEcho, 'echo', streams, cfg, quick)
    row({
      id,
      name: `RSS per idle subscription, ${ours.streams.toLocaleString('en-US')} streams over ${ours.connections} connections (signal limits raised: ${flags.slice(0, -2).join(' ')})`,
      value: ours.perStreamKiB,
      unit: 'KiB',
      reference: ref.perStreamKiB,
      referenceName: 'grpc-js server holding idle streams, same connections',
      target: '≤ 8 KiB',
      check: (v) => v <= 8,
      detail: { ...ours, signalFlags: flags.join(' '), echo: ref },
    })
  }
}
