// The reference for the forward row: a bare node:dgram relay, recv → send, nothing else. Same socket buffer
// sizes as the session's sockets (forwarder.ts, ice-agent.ts), so only the work per datagram differs.
//   node bench/udp-relay.mjs TARGET_HOST:TARGET_PORT     prints {"type":"listening","port":N} on 127.0.0.1
import { createSocket } from 'node:dgram'

const [host, portText] = process.argv[2].split(/:(?=\d+$)/)
const port = Number(portText)
const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 })
socket.on('message', (datagram) => socket.send(datagram, port, host))
socket.bind(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ type: 'listening', port: socket.address().port }) + '\n'))
process.on('SIGTERM', () => socket.close(() => process.exit(0)))
