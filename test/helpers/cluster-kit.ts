// What the signal --cluster tests share (cluster.test.ts: one Redis; redis-sharded.test.ts: a Redis Cluster):
// in-process SignalingServer instances on a cluster URL with their cluster events, backends on them, a
// recording handler, two `signal --cluster` processes, and polling for broker state that has no event.
// Everything opened is closed after each test.
import { afterEach } from 'vitest'
import type { Backend, MessageHandler } from '../../src/core/backend.js'
import { openBackend } from '../../src/core/backends/index.js'
import type { ClusterEvent } from '../../src/core/server/cluster/cluster.js'
import { parseClusterUrl } from '../../src/core/server/cluster/cluster-url.js'
import { SignalingServer } from '../../src/core/server/signaling-server.js'
import { killAll, startCli, type CliProcess } from './cli.js'
import { deferred, withTimeout } from './wait.js'

export interface Instance {
  server: SignalingServer
  url: string
  events: ClusterEvent[]
  /** Resolves at the next cluster event of that state. */
  next(state: ClusterEvent['state'], ms?: number): Promise<ClusterEvent>
}

export interface ClusterKit {
  /** Run after each test, last first (servers, backends, anything a test adds). */
  closers: (() => unknown)[]
  instance(clusterUrl: string): Promise<Instance>
  backend(url: string): Promise<Backend>
}

/** Registers an afterEach that closes what the kit opened and kills spawned CLIs. */
export function clusterKit(): ClusterKit {
  const closers: (() => unknown)[] = []
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close()
    await killAll()
  })
  return {
    closers,
    async instance(clusterUrl) {
      const events: ClusterEvent[] = []
      const waiters: { state: string; resolve: (e: ClusterEvent) => void }[] = []
      const server = await SignalingServer.start({
        listen: '127.0.0.1:0',
        cluster: parseClusterUrl(clusterUrl),
        // The tests publish many envelopes at once from one connection.
        limits: { publishBurst: 10_000, publishRatePerSecond: 10_000 },
        onClusterEvent: (event) => {
          events.push(event)
          for (const w of waiters.splice(0)) {
            if (w.state === event.state) w.resolve(event)
            else waiters.push(w)
          }
        },
      })
      closers.push(() => server.close(500))
      return {
        server,
        url: `grpc://${server.address}?insecure=true`,
        events,
        next: (state, ms = 15_000) => withTimeout(new Promise<ClusterEvent>((resolve) => waiters.push({ state, resolve })), ms, `cluster event "${state}"`),
      }
    },
    async backend(url) {
      const b = await openBackend(url, { connectTimeoutMs: 5000, publishTimeoutMs: 5000 })
      closers.push(() => b.close())
      return b
    },
  }
}

/** A handler that records each message's candidate port, in order; wait(n) resolves at n messages. */
export function recorder(): MessageHandler & { ports: number[]; wait(n: number, ms?: number): Promise<void> } {
  const ports: number[] = []
  let want = 0
  let reached = deferred()
  return {
    ports,
    onMessage: ({ message }) => {
      ports.push(message.candidate?.port ?? -1)
      if (ports.length >= want) reached.resolve()
    },
    wait(n, ms = 10_000) {
      want = n
      reached = deferred()
      if (ports.length >= n) reached.resolve()
      return withTimeout(reached.promise, ms, `${n} messages (have ${ports.length}: ${ports.join(',')})`)
    },
  }
}

/** For broker state, which has no event: re-checks every 20 ms. */
export async function waitFor(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/**
 * Two `signal --listen 127.0.0.1:0 --cluster URL --json` processes (with `extraArgs`, in `env`), once both
 * listen: the processes, their `listening` events and addresses. killAll (after each test) ends them if the
 * test does not.
 */
export async function twoSignalProcesses(clusterUrl: string, options: { env?: Record<string, string | undefined>; extraArgs?: string[] } = {}) {
  const start = () => startCli(['signal', '--listen', '127.0.0.1:0', '--cluster', clusterUrl, ...(options.extraArgs ?? []), '--json'], { env: options.env })
  const processes: [CliProcess, CliProcess] = [start(), start()]
  const listening = await Promise.all(processes.map((p) => p.waitForEvent((e) => e.type === 'listening')))
  return { processes, listening, addresses: listening.map((e) => e.address as string) as [string, string] }
}
