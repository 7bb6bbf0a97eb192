// Debian's coturn in the bed's public namespace, with a generated configuration: TURN REST credentials
// (use-auth-secret + static-auth-secret, what `signal --relay turn:...?secret=` hands out), no TLS, no CLI,
// a log file we can read back, started in the foreground and killed by PID.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NetnsBed } from './bed.js'

export interface Coturn {
  secret: string
  realm: string
  port: number
  /** Everything coturn logged so far. */
  log(): string
  stop(): void
}

export async function startCoturn(bed: NetnsBed, options: { secret: string; realm?: string; port?: number }): Promise<Coturn> {
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-coturn-'))
  const ip = bed.addresses.publicIp
  const port = options.port ?? 3478
  const realm = options.realm ?? 'cunicu-ts.test'
  const logFile = join(dir, 'turn.log')
  const config = [
    `listening-ip=${ip}`,
    `relay-ip=${ip}`,
    `listening-port=${port}`,
    'min-port=49152',
    'max-port=49999',
    'use-auth-secret',
    `static-auth-secret=${options.secret}`,
    `realm=${realm}`,
    'fingerprint',
    'no-tls',
    'no-dtls',
    'no-cli',
    'no-multicast-peers',
    // coturn refuses some private peer ranges unless allowed; the bed's "public" addresses are private ones.
    `allowed-peer-ip=10.231.0.0-10.231.255.255`,
    `userdb=${join(dir, 'turndb')}`,
    `pidfile=${join(dir, 'turn.pid')}`,
    `log-file=${logFile}`,
    'simple-log',
    'verbose',
  ].join('\n')
  const configFile = join(dir, 'turnserver.conf')
  writeFileSync(configFile, config + '\n')
  const child = bed.spawn(bed.ns.pub, ['turnserver', '-c', configFile])
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') + output
  const stop = () => {
    if (child.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true })
  }
  bed.onDestroy(stop)
  // Ready once the UDP listener is bound in the namespace (bounded: 100 polls of 100 ms).
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) {
      const text = log()
      stop()
      throw new Error(`turnserver exited with ${child.exitCode}:\n${text.slice(-2000)}`)
    }
    const sockets = bed.exec(bed.ns.pub, ['ss', '-lun', `sport = :${port}`])
    if (sockets.includes(`${ip}:${port}`)) return { secret: options.secret, realm, port, log, stop }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const text = log()
  stop()
  throw new Error(`turnserver did not listen on ${ip}:${port} within 10 s:\n${text.slice(-2000)}`)
}
