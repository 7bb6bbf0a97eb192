// A TCP stream across the WireGuard tunnel, run with plain node inside a peer namespace:
//   node tcp-tool.mjs recv IP:PORT BYTES   prints {"type":"listening"}, {"type":"first-byte","at":MS} when the
//                                          first byte arrives, then {"type":"received",bytes,sha256,seconds}
//                                          once BYTES arrived (or the sender closed); gives up after 120 s
//   node tcp-tool.mjs send IP:PORT BYTES   connects (retrying while the tunnel comes up, at most 120 s), writes
//                                          BYTES of pseudo-random data with back-pressure, prints {"type":"sent",bytes,sha256}
// Both sides hash the stream, so the test checks every byte, not only the count.
import { createHash, randomBytes } from 'node:crypto'
import { createConnection, createServer } from 'node:net'

const [mode, target, bytesText] = process.argv.slice(2)
const [host, portText] = target.split(/:(?=\d+$)/)
const port = Number(portText)
const total = Number(bytesText)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const giveUp = setTimeout(() => {
  out({ type: 'error', message: `${mode} did not finish within 120 s` })
  process.exit(1)
}, 120_000)

if (mode === 'recv') {
  const server = createServer((socket) => {
    const hash = createHash('sha256')
    let bytes = 0
    let firstAt = 0
    socket.on('data', (chunk) => {
      if (bytes === 0) {
        firstAt = Date.now()
        out({ type: 'first-byte', at: firstAt })
      }
      bytes += chunk.length
      hash.update(chunk)
      if (bytes >= total) finish()
    })
    socket.on('end', finish)
    socket.on('error', (err) => out({ type: 'error', message: err.message }))
    let done = false
    function finish() {
      if (done) return
      done = true
      out({ type: 'received', bytes, sha256: hash.digest('hex'), seconds: (Date.now() - firstAt) / 1000 })
      clearTimeout(giveUp)
      socket.end()
      server.close()
    }
  })
  server.listen(port, host, () => out({ type: 'listening' }))
} else if (mode === 'send') {
  const started = Date.now()
  const attempt = () => {
    const socket = createConnection({ host, port })
    socket.once('connect', () => {
      const hash = createHash('sha256')
      let sent = 0
      const write = () => {
        while (sent < total) {
          const chunk = randomBytes(Math.min(64 * 1024, total - sent))
          hash.update(chunk)
          sent += chunk.length
          if (!socket.write(chunk)) return socket.once('drain', write)
        }
        socket.end(() => {
          out({ type: 'sent', bytes: sent, sha256: hash.digest('hex'), connectMs: Date.now() - started })
          clearTimeout(giveUp)
        })
      }
      write()
    })
    socket.once('error', (err) => {
      // The tunnel may not carry yet (no handshake): connect times out or is refused; try again.
      socket.destroy()
      if (Date.now() - started > 110_000) {
        out({ type: 'error', message: err.message })
        process.exit(1)
      }
      setTimeout(attempt, 500)
    })
  }
  attempt()
} else {
  out({ type: 'error', message: `unknown mode ${mode}` })
  process.exit(2)
}
