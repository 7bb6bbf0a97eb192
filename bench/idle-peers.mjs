// Idle peers for the memory row of bench/transport.js, in their own process: COUNT peers, each its own
// HTTP/2 connection (raw node:http2, the cheapest client) from SOURCE_IP holding one Subscribe stream, as a
// cunīcu daemon does. Prints {"type":"held","peers":N,"ms":…} once every stream got its first frame, then
// holds them until killed (the orchestrator kills it by PID).
//   node idle-peers.mjs HOST:PORT COUNT SOURCE_IP
import { randomBytes } from 'node:crypto'
import { connect } from 'node:http2'

const [address, countText, sourceIp] = process.argv.slice(2)
const COUNT = Number(countText)
/** Connections being opened at once: enough to be quick, few enough not to trip handshake timeouts. */
const IN_FLIGHT = 100
const LIMIT_MS = 180_000
const started = performance.now()
const sessions = []

/** SubscribeParams { bytes key = 1 } with a random 32-byte key, as one gRPC message. */
function subscribeFrame() {
  const message = Buffer.concat([Buffer.from([0x0a, 32]), randomBytes(32)])
  const header = Buffer.alloc(5)
  header.writeUInt32BE(message.length, 1)
  return Buffer.concat([header, message])
}

function peer() {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${address}`, { localAddress: sourceIp })
    sessions.push(session)
    session.on('error', reject)
    const stream = session.request({ ':method': 'POST', ':path': '/cunicu.signaling.Signaling/Subscribe', 'content-type': 'application/grpc', te: 'trailers' })
    stream.on('error', reject)
    stream.once('data', () => resolve())
    stream.on('data', () => {})
    stream.on('close', () => reject(new Error(`stream closed before its first frame (RST ${stream.rstCode})`)))
    stream.end(subscribeFrame())
  })
}

const timer = setTimeout(() => {
  process.stderr.write(`idle peers: not all ${COUNT} held within ${LIMIT_MS} ms\n`)
  process.exit(1)
}, LIMIT_MS)
let next = 0
await Promise.all(
  Array.from({ length: Math.min(IN_FLIGHT, COUNT) }, async () => {
    while (next < COUNT) {
      next++
      await peer()
    }
  }),
).catch((err) => {
  process.stderr.write(`idle peers: ${err.message}\n`)
  process.exit(1)
})
clearTimeout(timer)
process.stdout.write(JSON.stringify({ type: 'held', peers: sessions.length, ms: Math.round(performance.now() - started) }) + '\n')
// Held until killed; nothing else to do.
setInterval(() => {}, 1 << 30)
