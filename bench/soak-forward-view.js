#!/usr/bin/env node
// Soak of the live view (not part of the tests or `npm run bench`): a `session --forward` with its terminal
// view in tmux carries a steady UDP stream for MINUTES (default 10) while its RSS is sampled every few
// seconds. The view gets a forward event every second and must not grow: after the warm-up (the first
// fifth of the run, at least 30 s) the RSS may not rise by 5 % or more (median of the last fifth against
// the median of the fifth after warm-up). Everything runs on loopback; every process is killed by PID.
//
//   npm run build && node bench/soak-forward-view.js [--minutes 10] [--rate 200]
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { createInterface } from 'node:readline'
import { argOption, PROD_ENV, ROOT, RUN_JS, delay, installCleanup, killAll, median, rssKiB, startSignal, stopProcess, track, withTimeout } from './lib.js'

const argv = process.argv.slice(2)
const option = (name, fallback) => Number(argOption(argv, name, fallback))
const MINUTES = option('--minutes', 10)
const RATE = option('--rate', 200) // datagrams per second from the local app into the forward
const SAMPLE_MS = 5000
const LIMIT = 0.05

const keyPair = () => {
  const run = (args, input) => spawnSync(process.execPath, [RUN_JS, ...args], { input, encoding: 'utf8', env: PROD_ENV }).stdout.trim()
  const privateKey = run(['keygen'])
  return { privateKey, publicKey: run(['pubkey'], privateKey) }
}

const udp = () =>
  new Promise((resolve) => {
    const socket = createSocket('udp4')
    socket.bind(0, '127.0.0.1', () => resolve(socket))
  })

async function main() {
  installCleanup()
  const tmux = `cunicu-ts-soak-${process.pid}`
  const signal = await startSignal()
  const backend = `grpc://${signal.address}?insecure=true`
  const a = keyPair()
  const b = keyPair()
  const sink = await udp() // B's app: receives what A's app sends
  let received = 0
  sink.on('message', () => received++)
  const app = await udp() // A's app
  const forwardA = `127.0.0.1:${await freeUdpPort()}`
  let peerB
  let sender
  try {
    // A: the live view on a real terminal (the process whose memory is watched).
    const command = `exec env NODE_ENV=production CUNICU_PRIVATE_KEY=${a.privateKey} ${process.execPath} ${RUN_JS} session ${b.publicKey} -b '${backend}' --loopback --forward ${forwardA}`
    execFileSync('tmux', ['new-session', '-d', '-s', tmux, '-x', '140', '-y', '45', '-c', ROOT, command])
    const pid = Number(execFileSync('tmux', ['display-message', '-p', '-t', tmux, '#{pane_pid}']).toString().trim())
    // B: NDJSON in a pipe, delivering to the sink.
    peerB = track(
      spawn(process.execPath, [RUN_JS, 'session', a.publicKey, '-b', backend, '--loopback', '--json', '--forward', '127.0.0.1:0', '--forward-to', `127.0.0.1:${sink.address().port}`], {
        cwd: ROOT,
        env: { ...PROD_ENV, CUNICU_PRIVATE_KEY: b.privateKey },
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    )
    const lines = createInterface({ input: peerB.stdout })
    await withTimeout(new Promise((resolve) => lines.on('line', (l) => JSON.parse(l).type === 'verified' && resolve())), 30_000, 'peer B verified')
    await delay(1000) // A verifies too
    const [host, port] = [forwardA.split(':')[0], Number(forwardA.split(':')[1])]
    const payload = Buffer.alloc(200, 7)
    let sent = 0
    sender = setInterval(() => {
      for (let i = 0; i < RATE / 10; i++) (app.send(payload, port, host), sent++)
    }, 100)

    const samples = []
    const started = Date.now()
    const endAt = started + MINUTES * 60_000
    while (Date.now() < endAt) {
      await delay(SAMPLE_MS)
      samples.push({ s: Math.round((Date.now() - started) / 1000), rssKiB: rssKiB(pid) })
      const last = samples.at(-1)
      process.stderr.write(`t=${last.s}s rss=${(last.rssKiB / 1024).toFixed(1)} MiB sent=${sent} received=${received}\n`)
    }
    clearInterval(sender)
    const screen = execFileSync('tmux', ['capture-pane', '-p', '-t', tmux]).toString()

    const fifth = Math.max(1, Math.floor(samples.length / 5))
    const warmupEnd = samples.findIndex((x) => x.s >= Math.max(30, (MINUTES * 60) / 5))
    const base = median(samples.slice(warmupEnd, warmupEnd + fifth).map((x) => x.rssKiB))
    const end = median(samples.slice(-fifth).map((x) => x.rssKiB))
    const growth = (end - base) / base
    const ok = growth < LIMIT && received > 0 && /forward 127\.0\.0\.1:\d+ .*active/.test(screen)
    const result = { minutes: MINUTES, rate: RATE, samples: samples.length, warmupS: samples[warmupEnd]?.s, baseMiB: +(base / 1024).toFixed(2), endMiB: +(end / 1024).toFixed(2), growthPercent: +(growth * 100).toFixed(2), sent, received, ok }
    process.stdout.write(JSON.stringify(result) + '\n')
    if (!ok) process.stderr.write(`soak failed; last screen:\n${screen}\n`)
    return ok ? 0 : 1
  } finally {
    if (sender) clearInterval(sender)
    try {
      execFileSync('tmux', ['kill-session', '-t', tmux], { stdio: 'ignore' })
    } catch {
      // already gone
    }
    await stopProcess(peerB && { child: peerB, pid: peerB.pid })
    await stopProcess(signal)
    sink.close()
    app.close()
  }
}

async function freeUdpPort() {
  const socket = await udp()
  const { port } = socket.address()
  await new Promise((resolve) => socket.close(resolve))
  return port
}

main()
  .then((code) => (killAll(), process.exit(code)))
  .catch((err) => {
    process.stderr.write(`${err.stack ?? err}\n`)
    killAll()
    process.exit(1)
  })
