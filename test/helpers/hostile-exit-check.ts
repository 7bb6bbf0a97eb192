// Run as a child process by server-fuzz.test.ts: sends a server hostile input of every kind (garbage
// messages, broken gRPC framing, a request left open, a live stream, a non-HTTP/2 connection), closes
// it, and must then exit on its own. A leaked socket, stream or timer would keep it alive.
import { connect as netConnect } from 'node:net'
import { Metadata } from '@grpc/grpc-js'
import { SignalingServer } from '../../src/core/server/signaling-server.js'
import { grpcFrame, h2session, publishBytes, PUBLISH_PATH, rawBytesClient, rawCall, SUBSCRIBE_PATH } from './raw-grpc.js'

const server = await SignalingServer.start({ listen: '127.0.0.1:0' })
const client = rawBytesClient(server.address)
await publishBytes(client, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))
const live = client.subscribe(Buffer.from([0x0a, 0x20, ...new Uint8Array(32).fill(9)]), new Metadata(), {})
await new Promise<void>((resolve) => live.once('data', () => resolve()))
live.on('error', () => {})
const session = h2session(server.address)
await rawCall(session, { path: PUBLISH_PATH, body: grpcFrame(Buffer.from('garbage'), 1, 500) })
await rawCall(session, { path: SUBSCRIBE_PATH, body: Buffer.from([0, 0]) })
// Left open on purpose: the server's close must end it.
void rawCall(session, { path: PUBLISH_PATH, body: grpcFrame(Buffer.alloc(10)), end: false }, 10_000).catch(() => {})
const [host, port] = server.address.split(':') as [string, string]
const garbage = netConnect(Number(port), host)
garbage.on('error', () => {})
garbage.resume()
garbage.write('GET / HTTP/1.1\r\nHost: not-http2\r\n\r\n')
await new Promise((resolve) => garbage.on('close', resolve))
await server.close(200)
session.close()
client.close()
process.stdout.write('closed\n')
