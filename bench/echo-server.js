// The reference server: plain grpc-js with no application logic, in its own process like `signal`.
//   /bench.Echo/Echo  unary; answers with the request bytes (no protobuf decode/encode on either side)
//   /bench.Echo/Hold  server stream; writes one empty frame (like signal's sync envelope), then stays open
// First stdout line: {"type":"listening","address":"127.0.0.1:PORT"}, as `cunicu-ts signal --json` prints.
import { Server, ServerCredentials } from '@grpc/grpc-js'

const identity = (b) => b
const EMPTY = Buffer.alloc(0)

const service = {
  echo: {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestDeserialize: identity,
    requestSerialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  hold: {
    path: '/bench.Echo/Hold',
    requestStream: false,
    responseStream: true,
    requestDeserialize: identity,
    requestSerialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
}

const held = new Set()
const server = new Server()
server.addService(service, {
  echo: (call, callback) => callback(null, call.request),
  hold: (call) => {
    held.add(call)
    call.write(EMPTY)
    const leave = () => held.delete(call)
    call.on('cancelled', leave)
    call.on('error', leave)
    call.on('close', leave)
  },
})
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`echo server: ${err.message}\n`)
    process.exit(1)
  }
  process.stdout.write(JSON.stringify({ type: 'listening', address: `127.0.0.1:${port}` }) + '\n')
})
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.forceShutdown())
