// A real redis-server for the cluster tests: started on 127.0.0.1 with a free port, storing nothing
// (--save '' --appendonly no), killed by PID. Missing binary: the test fails and names the apt package.
import { spawn, type ChildProcess } from 'node:child_process'
import { createClient } from 'redis'
import { afterAll, beforeAll } from 'vitest'
import { findExecutable } from '../../scripts/find-executable.js'
import { unusedPort } from './net.js'
import type { SelfSigned } from './tls.js'
import { withTimeout } from './wait.js'

export function redisServerBinary(): string {
  const binary = findExecutable('redis-server')
  if (!binary) throw new Error('redis-server not found: the cluster tests need the Debian package redis-server (apt-get install -y redis-server)')
  return binary
}

export class RedisServer {
  #child: ChildProcess | undefined
  #log = ''

  private constructor(
    readonly port: number,
    readonly extraArgs: readonly string[],
    readonly tls: SelfSigned | undefined,
  ) {}

  /**
   * `extraArgs`: more redis-server options (a cluster node's), kept for restarts. `tls`: the server speaks
   * only TLS on `port`, with this certificate, for clients, and for a cluster's bus and replication too.
   */
  static async start(port?: number, extraArgs: readonly string[] = [], tls?: SelfSigned): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await unusedPort()), extraArgs, tls)
    await server.start()
    return server
  }

  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** Starts (again) on the same port; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.#child) throw new Error('redis-server already running')
    const listen = this.tls
      ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', this.tls.certFile, '--tls-key-file', this.tls.keyFile]
      : ['--port', String(this.port)]
    if (this.tls) listen.push('--tls-ca-cert-file', this.tls.certFile, '--tls-auth-clients', 'no', '--tls-cluster', 'yes', '--tls-replication', 'yes')
    const child = spawn(redisServerBinary(), [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice', ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#child = child
    this.#log = ''
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        this.#log += d.toString()
        if (this.#log.includes('Ready to accept connections')) resolve()
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${this.#log}`)))
      child.once('error', reject)
    })
    try {
      await withTimeout(ready, 10_000, `redis-server on port ${this.port}`)
    } catch (err) {
      await this.kill()
      throw err
    }
  }

  /** SIGKILL, as a crash would; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.#child
    this.#child = undefined
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    process.kill(child.pid!, 'SIGKILL')
    await exited
  }

  /** Runs one command on a short-lived connection (PUBSUB NUMSUB ...). */
  async command(...args: string[]): Promise<unknown> {
    const client = createClient({ url: this.url, socket: this.tls ? { tls: true, ca: this.tls.cert, reconnectStrategy: false } : { reconnectStrategy: false } })
    client.on('error', () => {})
    await client.connect()
    try {
      return await client.sendCommand(args)
    } finally {
      client.destroy()
    }
  }

  /** How many connections are subscribed to each channel. */
  async numsub(...channels: string[]): Promise<Map<string, number>> {
    const reply = (await this.command('PUBSUB', 'NUMSUB', ...channels)) as (string | number)[]
    const result = new Map<string, number>()
    for (let i = 0; i + 1 < reply.length; i += 2) result.set(String(reply[i]), Number(reply[i + 1]))
    return result
  }

  async channels(pattern = '*'): Promise<string[]> {
    return ((await this.command('PUBSUB', 'CHANNELS', pattern)) as string[]).map(String).sort()
  }
}

/** One redis-server for a test file: started before its tests, killed after them. */
export function redisForFile(): { readonly url: string } {
  let server: RedisServer | undefined
  beforeAll(async () => {
    server = await RedisServer.start()
  })
  afterAll(async () => {
    await server?.kill()
  })
  return {
    get url(): string {
      if (!server) throw new Error('redis-server is not running (redisForFile() starts it in beforeAll)')
      return server.url
    },
  }
}
