// grpc-js reports a failed bind only as text ("No address added out of total 1 resolved errors: …"), so
// after it fails we ask the OS directly: binding the same address with Node gives the errno.
import { createServer } from 'node:net'

/** The port of HOST:PORT when the OS says it is taken (EADDRINUSE), else undefined. */
export async function addressInUse(listen: string): Promise<number | undefined> {
  const match = /^\[?([^\]]*)\]?:(\d+)$/.exec(listen)
  if (!match) return undefined
  const host = match[1] || '0.0.0.0'
  const port = Number(match[2])
  if (port === 0) return undefined
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? port : undefined))
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)))
  })
}
