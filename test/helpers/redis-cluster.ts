// A real Redis Cluster for the redis-cluster:// tests and the bench: 3 masters with one replica each, from
// Debian's redis-server on loopback ports, in a temp dir, created with `redis-cli --cluster create`.
// Lean on purpose: cluster-node-timeout 1000 ms (a failover takes ~2 s), nothing persisted but nodes.conf,
// cluster-require-full-coverage no (a down shard does not stop the others, as README recommends).
// Every redis-server is killed by PID in kill().
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { findExecutable } from '../../scripts/find-executable.js'
import { unusedPort } from './net.js'
import { RedisServer } from './redis.js'
import type { SelfSigned } from './tls.js'

const NODE_TIMEOUT_MS = 1000

export interface ClusterNodeInfo {
  port: number
  id: string
  master: boolean
  failed: boolean
  /** For a replica: the id of its master. */
  masterId: string | undefined
  slots: [number, number][]
}

export class RedisClusterBed {
  private constructor(
    readonly dir: string,
    readonly nodes: RedisServer[],
    readonly tls: SelfSigned | undefined,
  ) {}

  /**
   * Starts 2 × `masters` nodes, creates the cluster, resolves once every master has a synced replica.
   * `tls`: every node speaks only TLS, to clients, on the cluster bus and for replication.
   */
  static async start(masters = 3, tls?: SelfSigned): Promise<RedisClusterBed> {
    const cli = findExecutable('redis-cli')
    if (!cli) throw new Error('redis-cli not found: the Redis Cluster tests need the Debian package redis-server (apt-get install -y redis-server)')
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-redis-cluster-'))
    const bed = new RedisClusterBed(dir, [], tls)
    try {
      const ports = new Set<number>()
      while (ports.size < 4 * masters) ports.add(await unusedPort())
      const [clientPorts, busPorts] = [[...ports].slice(0, 2 * masters), [...ports].slice(2 * masters)]
      for (const [i, port] of clientPorts.entries()) {
        const args = ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-port', String(busPorts[i])]
        args.push('--cluster-node-timeout', String(NODE_TIMEOUT_MS), '--cluster-require-full-coverage', 'no', '--dir', dir)
        bed.nodes.push(await RedisServer.start(port, args, tls))
      }
      const cliTls = tls ? ['--tls', '--cacert', tls.certFile] : []
      await promisify(execFile)(cli, [...cliTls, '--cluster', 'create', ...clientPorts.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], {
        timeout: 30_000,
      })
      await bed.waitHealthy(masters)
      return bed
    } catch (err) {
      await bed.kill()
      throw err
    }
  }

  /** redis-cluster://… (rediss-cluster://… with TLS) naming two of the nodes as seeds (the rest is discovered). */
  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}-cluster://${this.nodes
      .slice(0, 2)
      .map((n) => `127.0.0.1:${n.port}`)
      .join(',')}`
  }

  node(port: number): RedisServer {
    const node = this.nodes.find((n) => n.port === port)
    if (!node) throw new Error(`no cluster node on port ${port}`)
    return node
  }

  /** CLUSTER NODES as seen by a running node. */
  async topology(): Promise<ClusterNodeInfo[]> {
    let lastError: unknown
    for (const node of this.nodes.filter((n) => n.pid !== undefined)) {
      try {
        const text = String(await node.command('CLUSTER', 'NODES'))
        return text.trim().split('\n').map(parseNodeLine)
      } catch (err) {
        lastError = err
      }
    }
    throw new Error(`no cluster node answered CLUSTER NODES: ${String(lastError)}`)
  }

  /** The master (port) serving a hash slot now. */
  async masterOfSlot(slot: number): Promise<number> {
    const owner = (await this.topology()).find((n) => n.master && !n.failed && n.slots.some(([from, to]) => slot >= from && slot <= to))
    if (!owner) throw new Error(`no live master serves slot ${slot}`)
    return owner.port
  }

  /**
   * Every running node agrees the cluster is ok, `masters` live masters own all slots, and each has a
   * replica whose replication link is up (so that a killed master can fail over).
   */
  async waitHealthy(masters = 3, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms
    let why = ''
    for (;;) {
      try {
        why = await this.#unhealthy(masters)
        if (!why) return
      } catch (err) {
        why = String(err)
      }
      if (Date.now() > deadline) throw new Error(`Redis Cluster not healthy after ${ms} ms: ${why}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  async #unhealthy(masters: number): Promise<string> {
    const running = this.nodes.filter((n) => n.pid !== undefined)
    for (const node of running) {
      const info = String(await node.command('CLUSTER', 'INFO'))
      if (!info.includes('cluster_state:ok')) return `${node.port}: cluster_state not ok`
    }
    const topology = await this.topology()
    const live = topology.filter((n) => n.master && !n.failed && n.slots.length > 0)
    if (live.length !== masters) return `${live.length} live masters with slots`
    for (const master of live) {
      const replication = String(await this.node(master.port).command('INFO', 'replication'))
      if (!/slave0:.*state=online/.test(replication)) return `master ${master.port} has no online replica`
    }
    return ''
  }

  /** Kills every node by PID and removes the temp dir. */
  async kill(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()))
    rmSync(this.dir, { recursive: true, force: true })
  }
}

function parseNodeLine(line: string): ClusterNodeInfo {
  const [id, address, flags, master, , , , , ...slots] = line.split(' ')
  const port = Number(address!.split('@')[0]!.split(':').pop())
  const flagList = flags!.split(',')
  return {
    id: id!,
    port,
    master: flagList.includes('master'),
    failed: flagList.includes('fail') || flagList.includes('fail?') || flagList.includes('noaddr'),
    masterId: master === '-' ? undefined : master,
    slots: slots
      .filter((s) => !s.startsWith('['))
      .map((s) => {
        const [from, to] = s.split('-').map(Number)
        return [from!, to ?? from!] as [number, number]
      }),
  }
}
