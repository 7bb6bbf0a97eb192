// A benchmark client process, forked by run.js. It receives one task over IPC, reports {type:'ready'} once
// its streams are live, runs on {type:'go'}, reports {type:'result'}, and exits on {type:'stop'} or when the
// orchestrator goes away. Clients speak raw grpc-js with pass-through (de)serializers and pre-sealed
// envelopes, so the client side costs as little as possible and the same code drives `signal` and the
// echo reference.
//
// Modes:
//   relay    `pairs` publishers and `pairs` subscribers (one channel = one TCP connection each); publisher i
//            publishes to subscriber i's key with `window` calls in flight; counts deliveries in the window.
//            target 'echo': the same publishers call the echo server instead (no subscribers).
//            `subAddress` (optional): the subscribers connect there instead (another cluster instance).
//   latency  open-loop: envelopes sent at `rate`/s on a 1 ms timer regardless of answers; each carries its
//            send time (performance.now(), same process) in its nonce; latency = arrival - send.
//   hold     `streams` idle subscribe streams spread over `channels` connections, for the memory row.
import { randomBytes } from 'node:crypto'
import { Client, credentials } from '@grpc/grpc-js'
import { Envelope, SubscribeParams } from '../dist/gen/signaling/signaling.js'
import { sealMessage } from '../dist/core/envelope.js'
import { PrivateKey } from '../dist/core/keys.js'
import { messageOfSize } from './payload.js'

const PATHS = {
  signal: { publish: '/cunicu.signaling.Signaling/Publish', subscribe: '/cunicu.signaling.Signaling/Subscribe' },
  echo: { publish: '/bench.Echo/Echo', subscribe: '/bench.Echo/Hold' },
}
const identity = (b) => b
const CHANNEL_OPTIONS = {
  // Each client object gets its own subchannel, i.e. its own TCP connection, like separate peers.
  'grpc.use_local_subchannel_pool': 1,
}

const clients = []
let stopping = false

function send(m) {
  if (process.connected) process.send(m)
}

function newClient(address) {
  const client = new Client(address, credentials.createInsecure(), CHANNEL_OPTIONS)
  clients.push(client)
  return client
}

function shutdown(code = 0) {
  stopping = true
  for (const c of clients) c.close()
  // Streams being cancelled may still emit; exit regardless.
  setTimeout(() => process.exit(code), 50).unref()
  process.exitCode = code
}

process.on('disconnect', () => shutdown(0))

const NONCE_MARK = Buffer.alloc(24, 0xab)

/** A real sealed envelope to `to`, encoded; `nonceOffset` is where its nonce sits in the bytes. */
function sealedEnvelope(from, to, messageBytes) {
  const envelope = sealMessage(messageOfSize(messageBytes), from, to, { nonce: NONCE_MARK })
  const bytes = Buffer.from(Envelope.encode(envelope).finish())
  return { bytes, nonceOffset: bytes.indexOf(NONCE_MARK) }
}

/** Opens subscribe streams; resolves once each has its first (sync) frame. */
function subscribeAll(address, paths, keys, clientFor, onFrame) {
  return Promise.all(
    keys.map(
      (key, i) =>
        new Promise((resolve, reject) => {
          const request = Buffer.from(SubscribeParams.encode({ key }).finish())
          const call = clientFor(i).makeServerStreamRequest(paths.subscribe, identity, identity, request)
          let synced = false
          call.on('data', (frame) => {
            if (!synced) {
              synced = true
              return resolve(call)
            }
            onFrame(i, frame)
          })
          call.on('error', (err) => {
            if (!synced) reject(new Error(`subscribe ${i}: ${err.message}`))
          })
        }),
    ),
  )
}

function nextMessage(type) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m.type !== type) return
      process.off('message', on)
      resolve(m)
    }
    process.on('message', on)
  })
}

async function relay(task) {
  const { address, target, pairs, window, warmupMs, measureMs, messageBytes } = task
  // The cluster row puts the subscribers on another instance than the publishers.
  const subAddress = task.subAddress ?? address
  const paths = PATHS[target]
  const from = PrivateKey.generate()
  const keys = Array.from({ length: pairs }, () => PrivateKey.generate())
  const envelopes = keys.map((k) => sealedEnvelope(from, k.publicKey, messageBytes).bytes)
  let counting = false
  let delivered = 0
  let published = 0
  let failed = 0
  if (target === 'signal') {
    const subs = keys.map(() => newClient(subAddress))
    await subscribeAll(subAddress, paths, keys.map((k) => k.publicKey.bytes), (i) => subs[i], () => {
      if (counting) delivered++
    })
  }
  const pubs = keys.map(() => newClient(address))
  send({ type: 'ready', envelopeBytes: envelopes[0].length })
  await nextMessage('go')
  let running = true
  const loop = (i) => {
    if (!running) return
    pubs[i].makeUnaryRequest(paths.publish, identity, identity, envelopes[i], (err) => {
      if (err) {
        failed++
        if (failed > 100) running = false
      } else if (counting) {
        published++
        if (target === 'echo') delivered++
      }
      loop(i)
    })
  }
  for (let i = 0; i < pairs; i++) for (let w = 0; w < window; w++) loop(i)
  await sleep(warmupMs)
  counting = true
  const t0 = performance.now()
  await sleep(measureMs)
  counting = false
  const elapsedMs = performance.now() - t0
  running = false
  send({ type: 'result', delivered, published, failed, elapsedMs, envelopeBytes: envelopes[0].length })
}

async function latency(task) {
  const { address, target, pairs, rate, warmupMs, measureMs, messageBytes } = task
  const paths = PATHS[target]
  const from = PrivateKey.generate()
  const keys = Array.from({ length: pairs }, () => PrivateKey.generate())
  const templates = keys.map((k) => sealedEnvelope(from, k.publicKey, messageBytes))
  const samples = []
  let windowStart = Infinity
  let windowEnd = Infinity
  let received = 0
  const arrived = (frame, offset) => {
    const now = performance.now()
    const sentAt = frame.readDoubleLE(offset)
    if (sentAt >= windowStart && sentAt < windowEnd) {
      samples.push(now - sentAt)
      received++
    }
  }
  if (target === 'signal') {
    const subs = keys.map(() => newClient(address))
    await subscribeAll(address, paths, keys.map((k) => k.publicKey.bytes), (i) => subs[i], (i, frame) =>
      arrived(frame, templates[i].nonceOffset),
    )
  }
  const pubs = keys.map(() => newClient(address))
  // One call per publisher first, so connection setup is not in the figures.
  await Promise.all(pubs.map((c, i) => new Promise((r) => c.makeUnaryRequest(paths.publish, identity, identity, templates[i].bytes, r))))
  send({ type: 'ready', envelopeBytes: templates[0].bytes.length })
  await nextMessage('go')
  const t0 = performance.now()
  windowStart = t0 + warmupMs
  windowEnd = windowStart + measureMs
  const total = Math.round(((warmupMs + measureMs) * rate) / 1000)
  let sent = 0
  let sentInWindow = 0
  let errors = 0
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000))
      while (sent < due) {
        const i = sent % pairs
        const bytes = Buffer.from(templates[i].bytes)
        const sentAt = performance.now()
        bytes.writeDoubleLE(sentAt, templates[i].nonceOffset)
        if (sentAt >= windowStart && sentAt < windowEnd) sentInWindow++
        pubs[i].makeUnaryRequest(paths.publish, identity, identity, bytes, (err, answer) => {
          if (err) errors++
          else if (target === 'echo') arrived(answer, templates[i].nonceOffset)
        })
        sent++
      }
      if (sent >= total || stopping) resolve()
      else setTimeout(tick, 1)
    }
    tick()
  })
  // Stragglers: give in-flight envelopes a bounded time to arrive; what does not is reported as lost.
  for (let waited = 0; received < sentInWindow && waited < 1000; waited += 20) await sleep(20)
  const sorted = Float64Array.from(samples).sort()
  const at = (p) => (sorted.length ? sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1] : NaN)
  send({
    type: 'result',
    samples: sorted.length,
    sentInWindow,
    lost: sentInWindow - received,
    errors,
    achievedRate: (sentInWindow * 1000) / measureMs,
    p50: at(50),
    p99: at(99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  })
}

async function hold(task) {
  const { address, target, streams, channels } = task
  const paths = PATHS[target]
  const conns = Array.from({ length: channels }, () => newClient(address))
  await Promise.all(conns.map((c) => new Promise((resolve, reject) => c.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())))))
  send({ type: 'connected' })
  await nextMessage('open')
  const keys = Array.from({ length: streams }, () => randomBytes(32))
  await subscribeAll(address, paths, keys, (i) => conns[i % channels], () => {})
  send({ type: 'held', streams })
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

const MODES = { relay, latency, hold }

process.once('message', async (task) => {
  process.on('message', (m) => m.type === 'stop' && shutdown(0))
  try {
    const mode = MODES[task.mode]
    if (!mode) throw new Error(`unknown mode ${task.mode}`)
    await mode(task)
  } catch (err) {
    send({ type: 'error', message: err.stack ?? String(err) })
    shutdown(1)
  }
})
