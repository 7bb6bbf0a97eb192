// The forward row: raw forwarding (WIRE.md §8) through two `session --forward` processes on loopback,
// beside a bare node:dgram relay (bench/udp-relay.mjs, recv → send) measured in the same run.
//
// Method: 1,400-byte datagrams from a paced sender (test/netns/udp-tool.mjs) to a receiver that counts
// distinct sequence numbers. For each offered rate of a rising ladder, the reference and the sessions take
// turns (same machine state); the figure of each is the highest offered rate it carried with < 1 % loss.
// The sender, the receiver and the carrier processes are the same for both, only the carrier differs.
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ndjsonProcess, ROOT, RUN_JS, startSignal, stopProcess } from './lib.js'

const UDP_TOOL = join(ROOT, 'test', 'netns', 'udp-tool.mjs')
const UDP_RELAY = join(ROOT, 'bench', 'udp-relay.mjs')
const SIZE = 1400
const MAX_LOSS = 0.01

function freeUdpPort() {
  return new Promise((resolve) => {
    const s = createSocket('udp4')
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** One step: `count` datagrams at `rate`/s into `target`, received on `recvPort`. */
async function step(target, recvPort, rate, count) {
  const receiver = ndjsonProcess(process.execPath, [UDP_TOOL, 'recv', `127.0.0.1:${recvPort}`, String(count)])
  try {
    await receiver.next((e) => e.type === 'listening', 10_000, 'udp receiver')
    const sender = ndjsonProcess(process.execPath, [UDP_TOOL, 'send', target, String(count), String(SIZE), String(rate)])
    const { event: sent } = await sender.next((e) => e.type === 'sent', 60_000, 'udp sender')
    const { event: received } = await receiver.next((e) => e.type === 'received', 60_000, 'udp receiver')
    return { rate, sent: sent.datagrams, received: received.distinct, loss: 1 - received.distinct / sent.datagrams, sendSeconds: sent.seconds }
  } finally {
    await stopProcess(receiver)
  }
}

export async function forward({ cfg, row, log, notes }) {
  log('forward: raw forwarding through two sessions vs a bare node:dgram relay')
  const { PrivateKey } = await import('../dist/core/keys.js')
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-bench-forward-'))
  const recvPort = await freeUdpPort()
  let signal
  const carriers = []
  try {
    signal = await startSignal()
    const backend = `grpc://${signal.address}?insecure=true`
    const [ka, kb] = [PrivateKey.generate(), PrivateKey.generate()]
    writeFileSync(join(dir, 'a.key'), ka.toBase64() + '\n', { mode: 0o600 })
    writeFileSync(join(dir, 'b.key'), kb.toBase64() + '\n', { mode: 0o600 })
    const common = ['-b', backend, '--loopback', '--json', '--forward', '127.0.0.1:0']
    const a = ndjsonProcess(process.execPath, [RUN_JS, 'session', kb.publicKey.toString(), '-k', join(dir, 'a.key'), ...common])
    const b = ndjsonProcess(process.execPath, [RUN_JS, 'session', ka.publicKey.toString(), '-k', join(dir, 'b.key'), ...common, '--forward-to', `127.0.0.1:${recvPort}`])
    carriers.push(a, b)
    const active = (e) => e.type === 'forward' && e.active === true
    const [{ event: startA }] = await Promise.all([a.next(active, 30_000, 'session A'), b.next(active, 30_000, 'session B')])
    const relay = ndjsonProcess(process.execPath, [UDP_RELAY, `127.0.0.1:${recvPort}`])
    carriers.push(relay)
    const { event: { port: relayPort } } = await relay.next((e) => e.type === 'listening', 10_000, 'udp relay')

    // The highest rate each carried with < 1 % loss; a carrier that lost more at one rate is not tried higher.
    const best = { sessions: 0, relay: 0 }
    const failed = { sessions: false, relay: false }
    const steps = []
    for (const rate of cfg.rates) {
      const count = Math.round(rate * cfg.stepSeconds)
      const order = steps.length % 2 === 0 ? ['relay', 'sessions'] : ['sessions', 'relay']
      const result = {}
      for (const which of order) {
        if (failed[which]) continue
        const target = which === 'relay' ? `127.0.0.1:${relayPort}` : startA.local
        result[which] = await step(target, recvPort, rate, count)
        if (result[which].loss < MAX_LOSS) best[which] = rate
        else failed[which] = true
      }
      steps.push({ rate, ...Object.fromEntries(Object.entries(result).map(([k, r]) => [k, { received: r.received, sent: r.sent, lossPercent: Math.round(r.loss * 10_000) / 100 }])) })
      log(`  ${rate}/s: ${Object.entries(result).map(([k, r]) => `${k} loss ${(r.loss * 100).toFixed(2)} %`).join(', ')}`)
      if (failed.sessions && failed.relay) break
      const slowest = Math.max(...Object.values(result).map((r) => r.sendSeconds))
      if (slowest > cfg.stepSeconds * 1.5) {
        notes.push(`forward: the sender could not keep ${rate}/s (${slowest.toFixed(2)} s for ${cfg.stepSeconds} s of datagrams): the ladder stops there`)
        break
      }
    }
    const topTried = steps.at(-1)?.rate
    for (const which of ['sessions', 'relay']) {
      if (!failed[which] && best[which] === topTried) notes.push(`forward: ${which} carried the highest rate tried (${topTried}/s) without loss: its figure is a lower bound`)
    }
    const [ours, reference] = [best.sessions, best.relay]
    const mbit = (rate) => Math.round((rate * SIZE * 8) / 1e5) / 10
    row({
      id: 'forward',
      name: `forward: ${SIZE}-byte datagrams through two raw sessions, highest offered rate with < 1 % loss`,
      value: ours,
      unit: 'datagrams/s',
      reference,
      referenceName: 'bare node:dgram relay (recv → send), same sender/receiver, turns at each rate',
      target: '≥ 0.8',
      check: (_v, ratio) => ratio >= 0.8,
      detail: { megabitsPerSecond: mbit(ours), referenceMegabitsPerSecond: mbit(reference), stepSeconds: cfg.stepSeconds, steps },
    })
  } finally {
    for (const c of carriers) await stopProcess(c)
    await stopProcess(signal)
    rmSync(dir, { recursive: true, force: true })
  }
}
