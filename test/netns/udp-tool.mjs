// A UDP app for the forwarding tests, run with plain node inside a namespace (ip netns exec):
//   node udp-tool.mjs recv IP:PORT COUNT      prints {"type":"listening"}, then {"type":"received",...} once COUNT
//                                             datagrams arrived, 3 s after the last one, or after 90 s
//   node udp-tool.mjs send IP:PORT COUNT SIZE RATE   COUNT datagrams of SIZE bytes at RATE per second (paced in
//                                             1 ms steps); prints {"type":"sent",...}
//   node udp-tool.mjs send-random IP:PORT COUNT RATE SEED     COUNT datagrams of sizes 1-1,400 bytes and random
//                                             content from SEED; the first one starts with the path probe's magic
//   node udp-tool.mjs recv-verify IP:PORT COUNT SEED           expects exactly those datagrams (any order):
//                                             prints {"type":"received",...} with how many arrived byte-exact,
//                                             how many were not among them (corrupt), and whether the first arrived
// Each datagram of send/recv starts with its sequence number (uint32), so the receiver counts distinct ones and order.
import { createHash } from 'node:crypto'
import { createSocket } from 'node:dgram'

const [mode, target, countText, sizeText, rateText] = process.argv.slice(2)
const [host, portText] = target.split(/:(?=\d+$)/)
const port = Number(portText)
const count = Number(countText)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')

if (mode === 'recv') {
  const seen = new Uint8Array(count)
  let distinct = 0
  let datagrams = 0
  let reordered = 0
  let last = -1
  receive(90_000, (msg) => {
    datagrams++
    const seq = msg.length >= 4 ? msg.readUInt32BE(0) : -1
    if (seq >= 0 && seq < count && !seen[seq]) {
      seen[seq] = 1
      distinct++
    }
    if (seq < last) reordered++
    last = seq
    return distinct >= count
  }, (seconds) => ({ datagrams, distinct, reordered, perSecond: Math.round(datagrams / seconds) }))
} else if (mode === 'send') {
  const size = Number(sizeText)
  const payload = Buffer.alloc(size, 0x5a)
  sendPaced(Number(rateText), (i) => {
    const datagram = Buffer.from(payload)
    datagram.writeUInt32BE(i, 0)
    return datagram
  })
} else if (mode === 'send-random') {
  const seed = Number(rateText)
  sendPaced(Number(sizeText), (i) => randomDatagram(seed, i))
} else if (mode === 'recv-verify') {
  const seed = Number(sizeText)
  // The multiset of what must arrive, by digest (tiny datagrams repeat, so counts, not a set).
  const expected = new Map()
  const digest = (b) => createHash('sha1').update(b).digest('base64')
  for (let i = 0; i < count; i++) {
    const d = digest(randomDatagram(seed, i))
    expected.set(d, (expected.get(d) ?? 0) + 1)
  }
  const first = digest(randomDatagram(seed, 0))
  let exact = 0
  let corrupt = 0
  let firstArrived = false
  receive(120_000, (msg) => {
    const d = digest(msg)
    const left = expected.get(d) ?? 0
    if (left === 0) corrupt++
    else {
      exact++
      if (d === first) firstArrived = true
      if (left === 1) expected.delete(d)
      else expected.set(d, left - 1)
    }
    return exact >= count
  }, (seconds) => ({ exact, corrupt, firstArrived, perSecond: Math.round(exact / seconds) }))
} else {
  process.stderr.write('usage: udp-tool.mjs recv IP:PORT COUNT | send IP:PORT COUNT SIZE RATE | send-random IP:PORT COUNT RATE SEED | recv-verify IP:PORT COUNT SEED\n')
  process.exit(2)
}

/**
 * Listens on the target (prints {"type":"listening"}), hands every datagram to `take`, which says when all
 * arrived; then, 3 s after the last datagram, or after `overallMs`, prints {"type":"received",...} with
 * `summary(seconds)` (seconds from the first datagram to the last), the bytes and the bit rate.
 */
function receive(overallMs, take, summary) {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 8 << 20 })
  let bytes = 0
  let firstAt
  let lastAt = 0
  let idle
  const finish = () => {
    clearTimeout(idle)
    clearTimeout(overall)
    const seconds = Math.max((lastAt - (firstAt ?? lastAt)) / 1000, 0.001)
    out({ type: 'received', ...summary(seconds), bytes, seconds, bitsPerSecond: Math.round((bytes * 8) / seconds) })
    socket.close()
  }
  const overall = setTimeout(finish, overallMs)
  socket.on('message', (msg) => {
    const now = performance.now()
    firstAt ??= now
    lastAt = now
    bytes += msg.length
    clearTimeout(idle)
    if (take(msg)) return finish()
    idle = setTimeout(finish, 3000)
  })
  socket.bind(port, host, () => out({ type: 'listening', port: socket.address().port }))
}

/** Sends `count` datagrams made by `make(i)` to the target at `rate` per second, paced in 1 ms steps (not one
 *  burst), then prints {"type":"sent",...}. */
function sendPaced(rate, make) {
  const socket = createSocket({ type: 'udp4', sendBufferSize: 8 << 20 })
  let sent = 0
  let bytes = 0
  const started = performance.now()
  const step = () => {
    // As many as the rate allows by now.
    const due = Math.min(count, Math.floor(((performance.now() - started) / 1000) * rate) + 1)
    while (sent < due) {
      const datagram = make(sent)
      socket.send(datagram, port, host)
      bytes += datagram.length
      sent++
    }
    if (sent < count) setTimeout(step, 1)
    else
      setTimeout(() => {
        out({ type: 'sent', datagrams: sent, bytes, seconds: (performance.now() - started) / 1000 })
        socket.close()
      }, 100)
  }
  step()
}

/** Datagram `index` of the stream SEED: 1-1,400 random bytes; index 0 starts with "cunicuPB" (the path probe's magic). */
function randomDatagram(seed, index) {
  let state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0
  const next = () => {
    // xorshift32: fast, deterministic, plenty for test data
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return state
  }
  next()
  const size = index === 0 ? 74 : 1 + (next() % 1400)
  const datagram = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) datagram[i] = next() & 0xff
  if (index === 0) datagram.write('cunicuPB', 0, 'latin1')
  return datagram
}
