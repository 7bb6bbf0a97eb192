// The reference relay for the transport rows: plain grpc-js with pass-through (de)serializers and nothing
// else, speaking the Signaling service's Publish and Subscribe (so the same bench clients drive it and
// `signal`): the recipient read from the envelope bytes, the bytes written to its subscribers as they came,
// no limits, no queue, no counters. In its own process like `signal`.
// First stdout line: {"type":"listening","address":"127.0.0.1:PORT"}, as `cunicu-ts signal --json` prints.
import { Server, ServerCredentials, status } from '@grpc/grpc-js'

const identity = (b) => b
const method = (path, responseStream) => ({ path, requestStream: false, responseStream, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity })
const service = {
  publish: method('/cunicu.signaling.Signaling/Publish', false),
  subscribe: method('/cunicu.signaling.Signaling/Subscribe', true),
}
const EMPTY = Buffer.alloc(0)
/** recipient key (latin1 of its bytes) → open Subscribe calls */
const topics = new Map()

/** The bytes of field 2 (recipient) of an Envelope: every field of one is length-delimited. */
function recipientOf(bytes) {
  let at = 0
  while (at < bytes.length) {
    const tag = bytes[at++]
    let length = 0
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++]
      length |= (b & 0x7f) << shift
      if (!(b & 0x80)) break
    }
    if (tag === 18) return bytes.toString('latin1', at, at + length)
    at += length
  }
  return undefined
}

const server = new Server()
server.addService(service, {
  publish: (call, callback) => {
    const key = recipientOf(call.request)
    if (key === undefined) return callback({ code: status.INVALID_ARGUMENT, details: 'no recipient' })
    const calls = topics.get(key)
    if (calls) for (const c of calls) c.write(call.request)
    callback(null, EMPTY)
  },
  subscribe: (call) => {
    // SubscribeParams { bytes key = 1 } with a 32-byte key: tag, length, key.
    const key = call.request.toString('latin1', 2, 34)
    let calls = topics.get(key)
    if (!calls) topics.set(key, (calls = new Set()))
    calls.add(call)
    call.write(EMPTY)
    const leave = () => {
      calls.delete(call)
      if (calls.size === 0 && topics.get(key) === calls) topics.delete(key)
    }
    call.on('cancelled', leave)
    call.on('error', leave)
    call.on('close', leave)
  },
})
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`grpc-js relay: ${err.message}\n`)
    process.exit(1)
  }
  process.stdout.write(JSON.stringify({ type: 'listening', address: `127.0.0.1:${port}` }) + '\n')
})
