// A latency measuring process, forked by bench/latency.js, that does nothing but its one job, so that no
// other work of the harness lands in the tail it measures:
//
//   publisher   one connection (bare node:http2); publishes one pre-sealed envelope to one key, open loop at `rate`/s (every
//               envelope that is due goes out on a 1 ms timer, whether or not earlier ones were answered).
//               Each envelope carries its send time and sequence number in its nonce bytes (the server
//               relays the bytes untouched). It counts refused (RESOURCE_EXHAUSTED) and failed publishes and
//               how far behind its schedule it sent. Against the echo reference (`target: 'echo'`) the
//               answer comes back to it, and answer − send is the latency.
//   subscriber  one connection (bare node:http2), one Subscribe stream to the publisher's key; arrival − send per sequence
//               number, lost (never arrived), late (> lateMs) and duplicated envelopes.
//
// Clock: process.hrtime.bigint() is CLOCK_MONOTONIC, one clock for every process on the machine, so a send
// time written by the publisher is comparable with an arrival time read by the subscriber. bench/latency.js
// checks that with an offset handshake before each run; a negative latency is counted and fails the run too.
//
// Protocol over IPC: task → {type:'ready', …}; publisher: {type:'go'} → {type:'result'};
// subscriber: {type:'report', waitMs} → {type:'result'} once every envelope arrived or waitMs passed.
import { connect } from 'node:http2'
import { status } from '@grpc/grpc-js'
import { Envelope, SubscribeParams } from '../dist/gen/signaling/signaling.js'
import { sealMessage } from '../dist/core/envelope.js'
import { PrivateKey } from '../dist/core/keys.js'
import { messageOfSize } from './payload.js'
import { nextMessage, onShutdown, send, serveTask, sleep } from './child.js'

const PATHS = {
  signal: { publish: '/cunicu.signaling.Signaling/Publish', subscribe: '/cunicu.signaling.Signaling/Subscribe' },
  echo: { publish: '/bench.Echo/Echo' },
}

/** The nonce of every envelope: [send time, ns, u64 LE][sequence number, u32 LE][MARK]. */
const STAMP_BYTES = 12
const MARK = Buffer.alloc(24 - STAMP_BYTES, 0xab)

const nowNs = () => process.hrtime.bigint()

/**
 * What one side saw of the measured window (sequence numbers warmupCount … total−1): latencies in ms by
 * sequence number, NaN where nothing arrived.
 */
function windowStats(latencies, warmupCount, lateMs) {
  const measured = latencies.subarray(warmupCount)
  const arrived = measured.filter((x) => !Number.isNaN(x)).sort()
  const at = (p) => (arrived.length ? arrived[Math.min(arrived.length, Math.max(1, Math.ceil((p / 100) * arrived.length))) - 1] : NaN)
  return {
    measured: measured.length,
    arrived: arrived.length,
    lost: measured.length - arrived.length,
    late: arrived.filter((x) => x > lateMs).length,
    negative: arrived.filter((x) => x < 0).length,
    p50: at(50),
    p99: at(99),
    p999: at(99.9),
    max: arrived.length ? arrived[arrived.length - 1] : NaN,
  }
}

/** A gRPC length-prefixed message: flag 0, 4-byte big-endian length, the bytes. */
function grpcFrame(bytes) {
  const frame = Buffer.alloc(5 + bytes.length)
  frame.writeUInt32BE(bytes.length, 1)
  frame.set(bytes, 5)
  return frame
}

/**
 * One HTTP/2 connection speaking bare gRPC (node:http2): at 5,000/s a grpc-js client spends most of a core on
 * per-call set-up (finding 6), which would put the measuring process's own backlog into the figures; a raw
 * request with the body framed once costs a fraction, and the subscriber reads its arrival time off the
 * DATA chunk, before any library work.
 */
function rawConnection(address) {
  const session = connect(`http://${address}`)
  // Why the connection ended, if it did: every call after that fails with this reason.
  let ended
  session.on('error', (err) => (ended ??= `connection failed: ${err.code ?? err.message}`))
  session.on('goaway', (code) => (ended ??= `server sent GOAWAY (HTTP/2 code ${code})`))
  session.on('close', () => (ended ??= 'connection closed'))
  const open = (path, body) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' })
    req.on('error', () => {}) // reported by 'close' with the status
    req.end(body)
    return req
  }
  /** `onClose(grpcStatus, message)`; status -1: the stream ended without a gRPC status. */
  const onStatus = (req, onClose) => {
    let code
    let message = ''
    const read = (headers) => {
      if (headers['grpc-status'] === undefined) return
      code = Number(headers['grpc-status'])
      message = decodeURIComponent(headers['grpc-message'] ?? '')
    }
    req.on('response', read)
    req.on('trailers', read)
    req.on('close', () => onClose(code ?? -1, code === undefined ? `stream closed (HTTP/2 code ${req.rstCode}${ended ? `; ${ended}` : ''})` : message))
  }
  return {
    /** A unary call: `done(grpcStatus, message)`. */
    unary(path, body, done) {
      if (session.destroyed || session.closed) return void queueMicrotask(() => done(-1, ended ?? 'connection closed'))
      const req = open(path, body)
      req.on('data', () => {})
      onStatus(req, done)
    },
    /** A server stream: `onMessage(bytes, arrivedNs)` per gRPC message, however DATA splits them. */
    serverStream(path, body, onMessage, onClose) {
      const req = open(path, body)
      let pending = Buffer.alloc(0)
      req.on('data', (chunk) => {
        const arrived = nowNs()
        const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk
        let at = 0
        while (buf.length - at >= 5 && buf.length - at - 5 >= buf.readUInt32BE(at + 1)) {
          const end = at + 5 + buf.readUInt32BE(at + 1)
          onMessage(buf.subarray(at + 5, end), arrived)
          at = end
        }
        pending = buf.subarray(at)
      })
      onStatus(req, onClose)
    },
    close: () => session.destroy(),
  }
}

async function publisher(task) {
  const { address, target, rate, total, warmupCount, lateMs, messageBytes } = task
  const to = PrivateKey.generate()
  const envelope = sealMessage(messageOfSize(messageBytes), PrivateKey.generate(), to.publicKey, { nonce: Buffer.alloc(24, 0xab) })
  const encoded = Buffer.from(Envelope.encode(envelope).finish())
  const template = grpcFrame(encoded) // built once; each publish copies it and writes the stamp
  const stampOffset = encoded.indexOf(Buffer.alloc(24, 0xab))
  const path = PATHS[target].publish
  const client = rawConnection(address)
  onShutdown(client.close)
  // One call first, so connection set-up is not in the figures (nobody listens to this key yet).
  const warm = await new Promise((resolve) => client.unary(path, template, (code, message) => resolve({ code, message })))
  if (warm.code !== status.OK) throw new Error(`first publish: ${status[warm.code] ?? warm.code} ${warm.message}`)
  send({ type: 'ready', recipient: Buffer.from(to.publicKey.bytes).toString('hex'), stampOffset, envelopeBytes: encoded.length })
  await nextMessage('go')

  const answered = new Float64Array(total).fill(NaN) // answer − send, ms
  const behind = new Float64Array(total) // send − schedule, ms
  let sent = 0
  let answers = 0
  let refused = 0
  let failed = 0
  let notAcceptedMeasured = 0 // refused or failed in the measured window: never delivered, so not "lost"
  let firstError
  const publish = (seq, sentAt) => {
    const body = Buffer.allocUnsafe(template.length)
    template.copy(body)
    body.writeBigUInt64LE(sentAt, 5 + stampOffset)
    body.writeUInt32LE(seq, 5 + stampOffset + 8)
    client.unary(path, body, (code, message) => {
      answers++
      if (code === status.OK) return void (answered[seq] = Number(nowNs() - sentAt) / 1e6)
      if (seq >= warmupCount) notAcceptedMeasured++
      if (code === status.RESOURCE_EXHAUSTED) refused++
      else failed++
      firstError ??= `${status[code] ?? code}: ${message}`
    })
  }
  const start = nowNs()
  const periodNs = 1e9 / rate
  await new Promise((resolve) => {
    const tick = () => {
      const now = nowNs()
      const due = Math.min(total, Math.floor(Number(now - start) / periodNs) + 1)
      while (sent < due) {
        const sentAt = nowNs()
        behind[sent] = (Number(sentAt - start) - sent * periodNs) / 1e6
        publish(sent, sentAt)
        sent++
      }
      if (sent >= total) resolve()
      else setTimeout(tick, 1)
    }
    tick()
  })
  // Answers still on their way: a bounded wait, then whatever is missing counts as unanswered.
  for (let waited = 0; answers < sent && waited < lateMs + 1000; waited += 10) await sleep(10)
  const lag = Float64Array.from(behind.subarray(warmupCount)).sort()
  send({
    type: 'result',
    sent,
    refused,
    failed,
    unanswered: sent - answers,
    notAcceptedMeasured,
    firstError,
    behindScheduleMs: { p99: lag[Math.max(0, Math.ceil(0.99 * lag.length) - 1)], max: lag[lag.length - 1] },
    // signal: the Publish call's own round trip (not the figure); echo: the figure.
    answer: windowStats(answered, warmupCount, lateMs),
  })
}

async function subscriber(task) {
  const { address, recipient, stampOffset, envelopeBytes, total, warmupCount, lateMs } = task
  const key = Buffer.from(recipient, 'hex')
  const latencies = new Float64Array(total).fill(NaN)
  let received = 0
  let duplicates = 0
  let foreign = 0
  const stampOf = (frame) => {
    // The relayed bytes are the published bytes; decode only if the server ever re-encoded them.
    if (frame.length === envelopeBytes && frame.subarray(stampOffset + STAMP_BYTES, stampOffset + 24).equals(MARK)) return frame.subarray(stampOffset, stampOffset + 24)
    const nonce = Envelope.decode(frame).contents?.nonce
    return nonce && Buffer.from(nonce).subarray(STAMP_BYTES).equals(MARK) ? Buffer.from(nonce) : undefined
  }
  const client = rawConnection(address)
  onShutdown(client.close)
  await new Promise((resolve, reject) => {
    let synced = false
    const onMessage = (frame, arrived) => {
      if (!synced) return (synced = true), resolve()
      const stamp = stampOf(frame)
      const seq = stamp?.readUInt32LE(8)
      if (stamp === undefined || seq >= total) return void foreign++
      if (!Number.isNaN(latencies[seq])) return void duplicates++
      latencies[seq] = Number(arrived - stamp.readBigUInt64LE(0)) / 1e6
      received++
    }
    const onClose = (code, message) => {
      const why = `subscribe stream ended: ${status[code] ?? code} ${message}`
      if (synced) send({ type: 'error', message: why })
      else reject(new Error(why))
    }
    client.serverStream(PATHS.signal.subscribe, grpcFrame(SubscribeParams.encode({ key }).finish()), onMessage, onClose)
  })
  send({ type: 'ready' })
  const { waitMs } = await nextMessage('report')
  for (let waited = 0; received < total && waited < waitMs; waited += 10) await sleep(10)
  send({ type: 'result', ...windowStats(latencies, warmupCount, lateMs), duplicates, foreign })
}

serveTask({ publisher, subscriber }, 'role')
