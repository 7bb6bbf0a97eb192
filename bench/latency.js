// The latency rows (section `latency`): publish → deliver through `signal`, measured by two processes that
// do nothing else (bench/latency-peer.js: one publisher on one connection, open loop at a fixed rate; one
// subscriber with one Subscribe stream), the send time carried inside each envelope. Reference in the same
// run: the same publisher process, same pacing, calling the grpc-js echo server (bench/echo-server.js),
// latency = answer − send.
//
// Honesty rules (issue 12): the server's per-connection publish limit is raised explicitly and the row says
// so; every row says how many publishes were refused, lost or late; a refused, failed, lost or duplicated
// publish fails the section (and so the run) with a message naming the rows; a reference whose own
// percentile is worse than ours gives "reference noisy", never a ratio.
import { runClient, startEcho, startSignal, stopClient, stopProcess } from './lib.js'

/** The limits that would otherwise refuse a single publisher at 5,000/s (default 200/s, burst 400). */
export const LATENCY_LIMIT_FLAGS = ['--publish-rate', '1000000', '--publish-burst', '1000000']
/** Quiet logs; metrics only to read the drop counters, which say where a lost envelope went. */
const SIGNAL_FLAGS = ['--log-level', 'warn', '--metrics', '127.0.0.1:0']
const PEER = 'latency-peer.js'
/**
 * The measuring processes' own garbage collection must stay out of the figures. With V8's default young
 * generation (up to 16 MiB), the publisher (an HTTP/2 stream per publish) paused 3 ms per scavenge on
 * average, 7.7 ms at most, and every envelope it had stamped but not yet written waited that long; with 1 MiB,
 * 0.66 ms, 1.1 ms at most (--trace-gc, BENCHMARKS.md "What each row measures"). Only these two processes get
 * it: `signal` and the echo server run with Node's defaults.
 */
const PEER_NODE_FLAGS = ['--max-semi-space-size=1']
const PERCENTILES = [
  { key: 'p50', label: 'p50', target: () => null },
  { key: 'p99', label: 'p99', target: (rate) => (rate === 1000 ? 2 : null) },
  { key: 'p999', label: 'p99.9', target: (rate) => (rate === 1000 ? 10 : null) },
]

/** One paced run against `target` ('signal' or 'echo'): what arrived, and what the publisher saw. */
async function measureOnce(target, address, { rate, warmupMs, measureMs }, { lateMs, messageBytes }) {
  const warmupCount = Math.round((warmupMs * rate) / 1000)
  const total = warmupCount + Math.round((measureMs * rate) / 1000)
  const timeoutMs = warmupMs + measureMs + lateMs + 20_000
  const common = { target, address, total, warmupCount, lateMs }
  const publisher = runClient({ mode: `latency publisher (${target})`, role: 'publisher', rate, messageBytes, ...common }, timeoutMs, PEER, PEER_NODE_FLAGS)
  let subscriber
  try {
    const ready = await publisher.next('ready')
    let clock
    if (target === 'signal') {
      subscriber = runClient(
        { mode: 'latency subscriber', role: 'subscriber', recipient: ready.recipient, stampOffset: ready.stampOffset, envelopeBytes: ready.envelopeBytes, ...common },
        timeoutMs,
        PEER,
        PEER_NODE_FLAGS,
      )
      await subscriber.next('ready')
      clock = await clockDifference(publisher, subscriber)
    }
    const published = publisher.next('result')
    publisher.send({ type: 'go' })
    const pub = await published
    let seen = pub.answer
    if (subscriber) {
      const report = subscriber.next('result')
      subscriber.send({ type: 'report', waitMs: lateMs + 1000 })
      seen = await report
    }
    return {
      ...seen,
      // What the server refused was never meant to arrive: it is counted as refused/failed, not lost too.
      lost: seen.lost - pub.notAcceptedMeasured,
      sent: pub.sent,
      refused: pub.refused,
      failed: pub.failed,
      unanswered: pub.unanswered,
      firstError: pub.firstError,
      behindScheduleMs: pub.behindScheduleMs,
      ...(subscriber ? { publishAnswer: pub.answer, clock } : {}),
    }
  } finally {
    await Promise.all([stopClient(publisher), stopClient(subscriber)])
  }
}

/**
 * The offset handshake: where a child's process.hrtime stands against ours, from the IPC round trip with the
 * least delay of 5 (offset = its reading − the middle of the round trip, ± half the round trip).
 */
async function clockOffset(child) {
  let best
  for (let i = 0; i < 5; i++) {
    const reply = child.next('clock')
    const t0 = process.hrtime.bigint()
    child.send({ type: 'clock' })
    const { ns } = await reply
    const t1 = process.hrtime.bigint()
    if (!best || t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: BigInt(ns) - (t0 + t1) / 2n }
  }
  return { offsetUs: Number(best.offset) / 1e3, uncertaintyUs: Number(best.rtt) / 2e3 }
}

/**
 * Subscriber clock − publisher clock. Both read CLOCK_MONOTONIC, one clock for the machine, so this must be 0
 * within the handshake's uncertainty; the run fails otherwise (latencies would be off by the difference).
 */
async function clockDifference(publisher, subscriber) {
  const [pub, sub] = [await clockOffset(publisher), await clockOffset(subscriber)]
  const differenceUs = sub.offsetUs - pub.offsetUs
  const uncertaintyUs = sub.uncertaintyUs + pub.uncertaintyUs
  return { differenceUs: round(differenceUs, 1), uncertaintyUs: round(uncertaintyUs, 1), shared: Math.abs(differenceUs) <= uncertaintyUs + 50 }
}

/** What must not happen in a latency run; empty when the run is clean. */
function problems(r) {
  const found = []
  if (r.refused) found.push(`${r.refused} refused`)
  if (r.failed) found.push(`${r.failed} failed`)
  if (r.unanswered) found.push(`${r.unanswered} unanswered`)
  if (r.lost) found.push(`${r.lost} of ${r.measured} lost${droppedText(r)}`)
  if (r.duplicates) found.push(`${r.duplicates} delivered twice`)
  if (r.foreign) found.push(`${r.foreign} unexpected frames`)
  if (r.negative) found.push(`${r.negative} negative latencies (clock)`)
  if (r.clock && !r.clock.shared) found.push(`the processes' clocks differ by ${r.clock.differenceUs} µs (± ${r.clock.uncertaintyUs})`)
  if (found.length && r.firstError) found.push(`first error ${r.firstError}`)
  return found
}

/** ' (the server dropped 803: queue_full 803)' when the server counted drops during the run. */
function droppedText(r) {
  const entries = Object.entries(r.serverDropped ?? {})
  return entries.length ? ` (the server dropped ${entries.map(([reason, n]) => `${n} ${reason}`).join(', ')})` : ''
}

const round = (x, digits) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x)
const count = (n) => n.toLocaleString('en-US')

/**
 * `cfg`: { runs: [{ rate, warmupMs, measureMs }], lateMs, messageBytes, limitFlags? } (limitFlags replaces
 * LATENCY_LIMIT_FLAGS; the test of the failure path passes low limits). Adds p50/p99/p99.9 rows per rate;
 * throws (after adding them) when any run refused, failed or lost publishes.
 */
export async function latency({ cfg, row, log, notes }) {
  const limits = cfg.limitFlags ?? LATENCY_LIMIT_FLAGS
  let signal, echo
  const failures = []
  try {
    signal = await startSignal([...limits, ...SIGNAL_FLAGS])
    echo = await startEcho()
    for (const run of cfg.runs) {
      log(`latency at ${run.rate}/s: one publisher process, one subscriber process`)
      const droppedBefore = await serverDrops(signal)
      const ours = await measureOnce('signal', signal.address, run, cfg)
      ours.serverDropped = difference(await serverDrops(signal), droppedBefore)
      const ref = await measureOnce('echo', echo.address, run, cfg)
      const rate = count(run.rate)
      for (const [who, r] of [['signal', ours], ['echo reference', ref]]) {
        const found = problems(r)
        if (found.length) failures.push(`latency-*-${run.rate} (${who}): ${found.join(', ')}${who === 'signal' ? lastServerLines(signal) : ''}`)
        if (r.behindScheduleMs.max > 50) {
          notes.push(`latency ${run.rate}/s (${who}): the publisher sent up to ${round(r.behindScheduleMs.max, 1)} ms behind its schedule (p99 ${round(r.behindScheduleMs.p99, 2)} ms); latencies count from the actual send`)
        }
      }
      const accounting = `${count(ours.sent)} sent, ${count(ours.measured)} measured: ${ours.refused} refused, ${ours.lost} lost${droppedText(ours)}, ${ours.late} late > ${cfg.lateMs} ms${ours.failed ? `, ${ours.failed} failed` : ''}`
      const detail = {
        signalFlags: [...limits, ...SIGNAL_FLAGS].join(' '),
        measuringProcessFlags: PEER_NODE_FLAGS.join(' '),
        lateMs: cfg.lateMs,
        warmupMs: run.warmupMs,
        measureMs: run.measureMs,
        signal: summary(ours),
        echo: summary(ref),
      }
      for (const p of PERCENTILES) {
        const target = p.target(run.rate)
        row({
          id: `latency-${p.key}-${run.rate}`,
          name: `publish→deliver ${p.label} at ${rate}/s, dedicated publisher + subscriber processes (node ${PEER_NODE_FLAGS.join(' ')}), signal ${limits.join(' ')} (${accounting})`,
          value: ours[p.key],
          unit: 'ms',
          reference: ref[p.key],
          referenceName: `grpc-js echo round trip ${p.label}, dedicated publisher process, same pacing (${ref.refused + ref.failed} refused, ${ref.lost} lost, ${ref.late} late)`,
          // A reference worse than us at this percentile is noise on its side: a ratio would flatter us.
          ...(ref[p.key] > ours[p.key] ? { ratio: 'reference noisy' } : {}),
          target: target === null ? null : `≤ ${target} ms`,
          ...(target === null ? {} : { check: (v) => v <= target }),
          detail,
        })
      }
    }
  } finally {
    await stopProcess(signal)
    await stopProcess(echo)
  }
  if (failures.length) throw new Error(`publishes refused or lost, so these latency rows do not hold: ${failures.join('; ')}`)
}

/** signal's envelopes_dropped_total by reason (no_subscriber, queue_full, subscriber_gone), from --metrics. */
async function serverDrops(server) {
  const text = await (await fetch(`http://${server.metrics}/metrics`)).text()
  const drops = {}
  for (const [, reason, n] of text.matchAll(/^cunicu_signal_envelopes_dropped_total\{reason="([^"]+)"\} (\d+)/gm)) drops[reason] = Number(n)
  return drops
}

function difference(after, before) {
  return Object.fromEntries(Object.entries(after).map(([k, n]) => [k, n - (before[k] ?? 0)]).filter(([, n]) => n > 0))
}

/** The server's last log lines (it logs at warn): why it shed a connection or dropped envelopes. */
function lastServerLines(server) {
  const lines = server.stderrTail().trim().split('\n').filter(Boolean).slice(-3)
  return lines.length ? ` [signal's last log lines: ${lines.join(' | ')}]` : ''
}

function summary(r) {
  const ms = (x) => round(x, 3)
  return {
    sent: r.sent,
    measured: r.measured,
    arrived: r.arrived,
    refused: r.refused,
    failed: r.failed,
    lost: r.lost,
    late: r.late,
    duplicates: r.duplicates ?? 0,
    ...(r.serverDropped ? { serverDropped: r.serverDropped } : {}),
    p50: ms(r.p50),
    p99: ms(r.p99),
    p999: ms(r.p999),
    max: ms(r.max),
    behindScheduleMs: { p99: ms(r.behindScheduleMs.p99), max: ms(r.behindScheduleMs.max) },
    ...(r.clock ? { clock: r.clock } : {}),
    ...(r.publishAnswer ? { publishAnswerMs: { p50: ms(r.publishAnswer.p50), p99: ms(r.publishAnswer.p99), p999: ms(r.publishAnswer.p999) } } : {}),
  }
}
