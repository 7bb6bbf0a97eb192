// A UDP app for the forwarding tests, run with plain node inside a namespace (ip netns exec):
//   node udp-tool.mjs recv IP:PORT COUNT      prints {"type":"listening"}, then {"type":"received",...} once COUNT
//                                             datagrams arrived, 3 s after the last one, or after 90 s
//   node udp-tool.mjs send IP:PORT COUNT SIZE RATE   COUNT datagrams of SIZE bytes at RATE per second (paced in
//                                             1 ms steps); prints {"type":"sent",...}
// Each datagram starts with its sequence number (uint32), so the receiver counts distinct ones and order.
import { createSocket } from 'node:dgram'

const [mode, target, countText, sizeText, rateText] = process.argv.slice(2)
const [host, portText] = target.split(/:(?=\d+$)/)
const port = Number(portText)
const count = Number(countText)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')

if (mode === 'recv') {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 8 << 20 })
  const seen = new Uint8Array(count)
  let distinct = 0
  let datagrams = 0
  let bytes = 0
  let reordered = 0
  let last = -1
  let firstAt = 0
  let lastAt = 0
  let idle
  const finish = () => {
    clearTimeout(idle)
    clearTimeout(overall)
    const seconds = Math.max((lastAt - firstAt) / 1000, 0.001)
    out({ type: 'received', datagrams, distinct, bytes, reordered, seconds, bitsPerSecond: Math.round((bytes * 8) / seconds), perSecond: Math.round(datagrams / seconds) })
    socket.close()
  }
  const overall = setTimeout(finish, 90_000)
  socket.on('message', (msg) => {
    const now = performance.now()
    if (datagrams === 0) firstAt = now
    lastAt = now
    datagrams++
    bytes += msg.length
    const seq = msg.length >= 4 ? msg.readUInt32BE(0) : -1
    if (seq >= 0 && seq < count && !seen[seq]) {
      seen[seq] = 1
      distinct++
    }
    if (seq < last) reordered++
    last = seq
    clearTimeout(idle)
    if (distinct >= count) return finish()
    idle = setTimeout(finish, 3000)
  })
  socket.bind(port, host, () => out({ type: 'listening', port: socket.address().port }))
} else if (mode === 'send') {
  const size = Number(sizeText)
  const rate = Number(rateText)
  const socket = createSocket({ type: 'udp4', sendBufferSize: 8 << 20 })
  const payload = Buffer.alloc(size, 0x5a)
  let sent = 0
  const started = performance.now()
  const step = () => {
    // As many as the rate allows by now: paced, not one burst of `count`.
    const due = Math.min(count, Math.floor(((performance.now() - started) / 1000) * rate) + 1)
    while (sent < due) {
      const datagram = Buffer.from(payload)
      datagram.writeUInt32BE(sent, 0)
      socket.send(datagram, port, host)
      sent++
    }
    if (sent < count) setTimeout(step, 1)
    else setTimeout(() => {
      out({ type: 'sent', datagrams: sent, bytes: sent * size, seconds: (performance.now() - started) / 1000 })
      socket.close()
    }, 100)
  }
  step()
} else {
  process.stderr.write('usage: udp-tool.mjs recv IP:PORT COUNT | send IP:PORT COUNT SIZE RATE\n')
  process.exit(2)
}
