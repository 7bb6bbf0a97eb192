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
//            `rate` (optional): publishes per second from this process instead of as fast as answers come.
//   hold     `streams` idle subscribe streams spread over `channels` connections (bare node:http2), for the memory rows.
import { randomBytes } from 'node:crypto'
import { connect } from 'node:http2'
import { Client, credentials, status } from '@grpc/grpc-js'
import { Envelope, SubscribeParams } from '../dist/gen/signaling/signaling.js'
import { sealMessage } from '../dist/core/envelope.js'
import { PrivateKey } from '../dist/core/keys.js'
import { messageOfSize } from './payload.js'
import { nextMessage, onShutdown, send, serveTask, sleep } from './child.js'

const STATUS_NAMES = Object.fromEntries(Object.entries(status).map(([name, code]) => [code, name]))

const PATHS = {
  signal: { publish: '/cunicu.signaling.Signaling/Publish', subscribe: '/cunicu.signaling.Signaling/Subscribe' },
  echo: { publish: '/bench.Echo/Echo', subscribe: '/bench.Echo/Hold' },
}
const identity = (b) => b
const CHANNEL_OPTIONS = {
  // Each client object gets its own subchannel, i.e. its own TCP connection, like separate peers.
  'grpc.use_local_subchannel_pool': 1,
}

function newClient(address) {
  const client = new Client(address, credentials.createInsecure(), CHANNEL_OPTIONS)
  onShutdown(() => client.close())
  return client
}

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
  /** Failed calls by gRPC status name (a figure counts only with its failures beside it). */
  const failures = {}
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
  /** One Publish from pair i's publisher; `then` runs when it answered, either way. */
  const publishOnce = (i, then) =>
    pubs[i].makeUnaryRequest(paths.publish, identity, identity, envelopes[i], (err) => {
      if (err) {
        failed++
        const name = STATUS_NAMES[err.code] ?? String(err.code)
        failures[name] = (failures[name] ?? 0) + 1
        if (failed > 100) running = false
      } else if (counting) {
        published++
        if (target === 'echo') delivered++
      }
      then()
    })
  let pacer
  if (task.rate) {
    // Paced: `rate` publishes per second from this process, round-robin over the pairs, issued every 5 ms,
    // at most `window` in flight per pair (bench/cluster-split.js: a machine below saturation).
    let next = 0
    let owed = 0
    const inFlight = new Array(pairs).fill(0)
    pacer = setInterval(() => {
      if (!running) return
      owed = Math.min(owed + task.rate / 200, pairs * window)
      for (let skipped = 0; owed >= 1 && skipped < pairs; ) {
        const i = next
        next = (next + 1) % pairs
        if (inFlight[i] >= window) {
          skipped++
          continue
        }
        inFlight[i]++
        publishOnce(i, () => inFlight[i]--)
        owed--
        skipped = 0
      }
    }, 5)
  } else {
    // Closed loop: each pair keeps `window` publishes in flight, as fast as the server answers.
    const loop = (i) => running && publishOnce(i, () => loop(i))
    for (let i = 0; i < pairs; i++) for (let w = 0; w < window; w++) loop(i)
  }
  await sleep(warmupMs)
  counting = true
  const t0 = performance.now()
  await sleep(measureMs)
  counting = false
  const elapsedMs = performance.now() - t0
  running = false
  clearInterval(pacer)
  send({ type: 'result', delivered, published, failed, failures, elapsedMs, envelopeBytes: envelopes[0].length })
}

/**
 * Idle streams on bare node:http2 sessions: a grpc-js client costs ~0.5 ms of client CPU per stream, which
 * made opening 100,000 of them take longer than the rest of the bench; the server sees the same gRPC calls.
 */
async function hold(task) {
  const { address, target, streams, channels } = task
  const headers = { ':method': 'POST', ':path': PATHS[target].subscribe, 'content-type': 'application/grpc', te: 'trailers' }
  const sessions = Array.from({ length: channels }, () => {
    const session = connect(`http://${address}`)
    onShutdown(() => session.destroy())
    return session
  })
  await Promise.all(sessions.map((s) => new Promise((resolve, reject) => (s.once('remoteSettings', resolve), s.once('error', reject)))))
  send({ type: 'connected' })
  await nextMessage('open')
  await Promise.all(
    Array.from({ length: streams }, (_, i) => {
      const params = SubscribeParams.encode({ key: randomBytes(32) }).finish()
      const body = Buffer.alloc(5 + params.length)
      body.writeUInt32BE(params.length, 1)
      body.set(params, 5)
      return new Promise((resolve, reject) => {
        const req = sessions[i % channels].request(headers)
        // The first DATA is the sync frame (signal's empty envelope, echo's empty Hold frame): the call is live.
        req.once('data', () => resolve())
        req.on('error', () => {})
        req.once('close', () => reject(new Error(`hold stream ${i} closed before its first frame (HTTP/2 code ${req.rstCode})`)))
        req.end(body)
      })
    }),
  )
  send({ type: 'held', streams })
}

serveTask({ relay, hold }, 'mode')
