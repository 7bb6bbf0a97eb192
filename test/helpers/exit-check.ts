// Run as a child process by grpc-backend.test.ts: uses a server and a backend, including a reconnect in
// progress, closes both, and must then exit on its own. A leaked socket or timer would keep it alive.
import { openBackend } from '../../src/core/backends/index.js'
import { PrivateKey } from '../../src/core/keys.js'
import { SignalingServer } from '../../src/core/server/signaling-server.js'
import { Message } from '../../src/gen/signaling/signaling.js'

const server = await SignalingServer.start({ listen: '127.0.0.1:0' })
const url = `grpc://${server.address}?insecure=true`
const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
const a = await openBackend(url)
const b = await openBackend(url)
let received!: () => void
const got = new Promise<void>((resolve) => (received = resolve))
await a.subscribe({ ours: alice, theirs: bob.publicKey }, { onMessage: () => received() })
await b.publish(bob, alice.publicKey, Message.create({ candidate: { port: 1 } }))
await got
const reconnecting = new Promise<void>((resolve) => a.onStatus((s) => s.state === 'reconnecting' && resolve()))
await server.close(200)
await reconnecting
await Promise.all([a.close(), b.close()])
process.stdout.write('closed\n')
