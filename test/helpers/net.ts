// Loopback stand-ins for broken servers: a port nobody listens on, and a server that accepts TCP but
// never speaks HTTP/2 (the "hangs forever" case every client deadline must cover); and a client that never speaks.
import { connect, createServer, type Server, type Socket } from 'node:net'

export async function unusedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface SilentServer {
  port: number
  /** When each connection was accepted (Date.now()), in order. */
  readonly accepted: number[]
  close(): Promise<void>
}

export async function silentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>()
  const accepted: number[] = []
  const server: Server = createServer((socket) => {
    accepted.push(Date.now())
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    port,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

/** A TCP connection that never sends a byte (it reads and discards, so the server's FIN is seen); resolves once connected. */
export function silentSocket(address: string, localAddress?: string): Promise<Socket> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))]
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...(localAddress ? { localAddress } : {}) }, () => resolve(socket))
    socket.once('error', reject)
    socket.resume()
  })
}

