// An attacker for test/signal-abuse.test.ts, in its own process so that its CPU is not the measuring
// test's: sends COUNT Subscribe calls with bad `cunicu-auth` proofs (random bytes of the right length, so
// the server must do the X25519 to refuse them) as fast as it can, WINDOW in flight per connection, and
// opens a new connection whenever the server sheds one. Prints one JSON line with what it saw.
//   node auth-flood.mjs HOST:PORT COUNT [WINDOW]
import { randomBytes } from 'node:crypto'
import { Client, Metadata, credentials } from '@grpc/grpc-js'

const [address, countText, windowText] = process.argv.slice(2)
const COUNT = Number(countText)
const WINDOW = Number(windowText ?? 32)
const PROOF_LENGTH = 24 + 16 + 8 + 32
const passthrough = (b) => b
// SubscribeParams { bytes key = 1 }: tag 0x0a, length 32.
const subscribeParams = () => Buffer.concat([Buffer.from([0x0a, 32]), randomBytes(32)])

let sent = 0
const codes = {}
let connections = 0
const started = performance.now()

/** One connection: keeps WINDOW calls in flight until the server closes it or COUNT is reached. */
function connection() {
  connections++
  const client = new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.enable_retries': 0 })
  return new Promise((resolve) => {
    let inFlight = 0
    let closed = false
    const finish = () => {
      if (closed) return
      closed = true
      client.close()
      resolve()
    }
    const next = () => {
      if (closed) return
      if (sent >= COUNT) return inFlight === 0 ? finish() : undefined
      sent++
      inFlight++
      const metadata = new Metadata()
      metadata.set('cunicu-auth', randomBytes(PROOF_LENGTH).toString('base64'))
      const call = client.makeServerStreamRequest('/cunicu.signaling.Signaling/Subscribe', passthrough, passthrough, subscribeParams(), metadata, {})
      call.on('data', () => {})
      call.on('error', (err) => {
        codes[err.code] = (codes[err.code] ?? 0) + 1
        inFlight--
        // PERMISSION_DENIED: refused, go on. Anything else: the connection was shed; use a new one.
        if (err.code === 7) next()
        else if (inFlight === 0) finish()
      })
    }
    for (let i = 0; i < WINDOW; i++) next()
  })
}

while (sent < COUNT) await connection()
process.stdout.write(JSON.stringify({ type: 'flooded', sent, connections, codes, ms: Math.round(performance.now() - started) }) + '\n')
