// A network-namespace test bed: a "public" namespace (signaling server, STUN/TURN) on a bridge, NAT router
// namespaces on that bridge, and a peer namespace behind each router. Nothing touches the host's own
// interfaces or routes: every link is created inside the namespaces (`ip -n NS link add ... peer ... netns`),
// every address is a private one assigned inside them, and NAT rules live in the routers' own nftables.
// Every namespace name starts with a per-run prefix so cleanup can find all of them, also after a crash.
import { beforeAll, describe, expect } from 'vitest'
import { killAll } from '../helpers/cli.js'
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'

/** All test namespaces start with this; the run's prefix adds the PID so parallel runs never collide. */
export const NETNS_PREFIX = 'ctsnat-'

export type NatKind =
  /** Endpoint-independent mapping (Linux masquerade keeps the source port): hole punching works. */
  | 'endpoint-independent'
  /** A new random port for every destination (nft `masquerade random`): symmetric, only a relay gets through. */
  | 'symmetric'

export interface Privilege {
  ok: boolean
  reason: string
}

/** Whether this process may create network namespaces (root with CAP_NET_ADMIN, `ip` present). */
export function netnsPrivilege(): Privilege {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return { ok: false, reason: 'needs root: network namespaces (ip netns add) require CAP_SYS_ADMIN/CAP_NET_ADMIN' }
  }
  const probe = `${NETNS_PREFIX}${process.pid}-probe`
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' })
  if (add.error) return { ok: false, reason: `needs iproute2's ip: ${add.error.message}` }
  if (add.status !== 0) return { ok: false, reason: `ip netns add is not permitted here: ${add.stderr.trim()}` }
  spawnSync('ip', ['netns', 'del', probe])
  return { ok: true, reason: '' }
}

/** Set to 1 to skip the network-namespace tests (NAT, WireGuard over NAT, multicast) where they cannot run, CI included. */
export const SKIP_NETNS_ENV = 'CUNICU_TEST_SKIP_NETNS'

export interface NetnsGate {
  /** Skip the namespace tests here. */
  skip: boolean
  /** Why they are skipped, or why they will fail; '' when they can run. */
  reason: string
}

/**
 * Whether the network-namespace tests run. With the privilege they always do. Without it they are skipped
 * on a developer's machine, but under CI they run and fail with the reason (`requireNetns`): a CI that skipped
 * them silently would be green without having tested NAT traversal at all. Only an explicit
 * CUNICU_TEST_SKIP_NETNS=1 skips them there.
 */
export function netnsGate(privilege: Privilege, env: NodeJS.ProcessEnv = process.env): NetnsGate {
  if (privilege.ok) return { skip: false, reason: '' }
  if (env[SKIP_NETNS_ENV] === '1') return { skip: true, reason: `${privilege.reason} (${SKIP_NETNS_ENV}=1)` }
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0'
  if (ci) return { skip: false, reason: `${privilege.reason}; under CI these tests fail rather than skip unless ${SKIP_NETNS_ENV}=1` }
  return { skip: true, reason: `${privilege.reason} (under CI they would fail instead)` }
}

/** The first step of every namespace suite that was not skipped: fails with the gate's reason when it cannot run. */
export function requireNetns(privilege: Privilege): void {
  if (!privilege.ok) throw new Error(`${privilege.reason}; set ${SKIP_NETNS_ENV}=1 to skip the network-namespace tests`)
}

let privilegeOfThisProcess: Privilege | undefined

/**
 * describe() for a suite that needs network namespaces: skipped or failing as netnsGate decides (so CI never
 * passes without having run it), and failing first with the reason when it cannot run.
 */
export function describeNetns(name: string, body: () => void): void {
  const privilege = (privilegeOfThisProcess ??= netnsPrivilege())
  const gate = netnsGate(privilege)
  describe.skipIf(gate.skip)(gate.skip ? `${name} — skipped: ${gate.reason}` : name, () => {
    beforeAll(() => requireNetns(privilege))
    body()
  })
}

/** Tools the bed needs beyond ip; missing ones are a failure with the package to install, not a skip. */
export function requireTools(tools: Record<string, string>): void {
  const missing = Object.entries(tools).filter(([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
  if (missing.length) {
    throw new Error(`missing ${missing.map(([b, p]) => `${b} (apt-get install ${p})`).join(', ')}: .ci/run installs them`)
  }
}

function run(args: string[], input?: string): string {
  try {
    return execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 })
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`)
  }
}

/** Deletes namespaces of runs whose process is gone (a crashed or killed earlier run), never a live run's. */
export function removeStaleNamespaces(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? ''
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? ''
    const match = new RegExp(`^${NETNS_PREFIX}(\\d+)-`).exec(name)
    if (!match) continue
    const pid = Number(match[1])
    let alive = true
    try {
      process.kill(pid, 0)
    } catch {
      alive = false
    }
    if (!alive) deleteNamespace(name)
  }
}

/** Kills every process still inside the namespace (all started by this bed), then deletes it. */
function deleteNamespace(name: string): void {
  const pids = (spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '').split(/\s+/).filter(Boolean).map(Number)
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  spawnSync('ip', ['netns', 'del', name])
}

export interface BedAddresses {
  /** The public namespace's address: signaling server, STUN and TURN. */
  publicIp: string
  routers: Record<'a' | 'b', { wan: string; lan: string }>
  peers: Record<'a' | 'b', string>
}

export const ADDRESSES: BedAddresses = {
  publicIp: '10.231.0.1',
  routers: { a: { wan: '10.231.0.11', lan: '10.231.11.1' }, b: { wan: '10.231.0.12', lan: '10.231.12.1' } },
  peers: { a: '10.231.11.2', b: '10.231.12.2' },
}

export interface BedOptions {
  nat: Record<'a' | 'b', NatKind>
}

/**
 *   peer-a (eth0 10.231.11.2) ── router-a (lan0 .11.1 | wan0 10.231.0.11, NAT) ──┐
 *                                                                              br0 10.231.0.1 (public)
 *   peer-b (eth0 10.231.12.2) ── router-b (lan0 .12.1 | wan0 10.231.0.12, NAT) ──┘
 * The routers have no route to each other's LAN, so host candidates cannot reach the other peer.
 */
export class NetnsBed {
  readonly prefix: string
  readonly ns: { pub: string; sink: string; routerA: string; routerB: string; peerA: string; peerB: string }
  readonly addresses = ADDRESSES
  readonly #children = new Set<ChildProcessWithoutNullStreams>()
  readonly #onDestroy: (() => void)[] = []
  #created: string[] = []

  constructor(readonly name: string) {
    this.prefix = `${NETNS_PREFIX}${process.pid}-${name}-`
    this.ns = {
      pub: `${this.prefix}pub`,
      sink: `${this.prefix}sink`,
      routerA: `${this.prefix}ra`,
      routerB: `${this.prefix}rb`,
      peerA: `${this.prefix}pa`,
      peerB: `${this.prefix}pb`,
    }
  }

  /** Builds the topology; on any failure everything created so far is removed before the error propagates. */
  create(options: BedOptions): this {
    bedsOfThisTest.add(this)
    try {
      this.#build(options)
    } catch (err) {
      this.destroy()
      throw err
    }
    return this
  }

  #addNs(name: string): void {
    run(['ip', 'netns', 'add', name])
    this.#created.push(name)
    run(['ip', '-n', name, 'link', 'set', 'lo', 'up'])
  }

  #build(options: BedOptions): void {
    const { ns, addresses: A } = this
    for (const name of Object.values(ns)) this.#addNs(name)
    // The public segment: a bridge in the public namespace, one port per router.
    run(['ip', '-n', ns.pub, 'link', 'add', 'br0', 'type', 'bridge'])
    run(['ip', '-n', ns.pub, 'addr', 'add', `${A.publicIp}/24`, 'dev', 'br0'])
    run(['ip', '-n', ns.pub, 'link', 'set', 'br0', 'up'])
    // "The rest of the internet": a default route to a sink namespace that forwards nothing, so datagrams to
    // unknown (e.g. the peers' private) addresses vanish silently, as they would upstream. Without it
    // coturn's sendto() to a private host candidate fails with ENETUNREACH and coturn closes the allocation.
    run(['ip', '-n', ns.pub, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.sink])
    run(['ip', '-n', ns.pub, 'addr', 'add', '10.231.254.1/30', 'dev', 'up0'])
    run(['ip', '-n', ns.pub, 'link', 'set', 'up0', 'up'])
    run(['ip', '-n', ns.sink, 'addr', 'add', '10.231.254.2/30', 'dev', 'eth0'])
    run(['ip', '-n', ns.sink, 'link', 'set', 'eth0', 'up'])
    run(['ip', '-n', ns.pub, 'route', 'add', 'default', 'via', '10.231.254.2'])
    for (const side of ['a', 'b'] as const) {
      const router = side === 'a' ? ns.routerA : ns.routerB
      const peer = side === 'a' ? ns.peerA : ns.peerB
      const r = A.routers[side]
      // Router WAN <-> a bridge port in the public namespace (both ends created inside namespaces).
      run(['ip', '-n', router, 'link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', `port-${side}`, 'netns', ns.pub])
      run(['ip', '-n', ns.pub, 'link', 'set', `port-${side}`, 'master', 'br0'])
      run(['ip', '-n', ns.pub, 'link', 'set', `port-${side}`, 'up'])
      run(['ip', '-n', router, 'addr', 'add', `${r.wan}/24`, 'dev', 'wan0'])
      run(['ip', '-n', router, 'link', 'set', 'wan0', 'up'])
      run(['ip', '-n', router, 'route', 'add', 'default', 'via', A.publicIp])
      // Router LAN <-> the peer's eth0.
      run(['ip', '-n', router, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer])
      run(['ip', '-n', router, 'addr', 'add', `${r.lan}/24`, 'dev', 'lan0'])
      run(['ip', '-n', router, 'link', 'set', 'lan0', 'up'])
      run(['ip', '-n', peer, 'addr', 'add', `${A.peers[side]}/24`, 'dev', 'eth0'])
      run(['ip', '-n', peer, 'link', 'set', 'eth0', 'up'])
      run(['ip', '-n', peer, 'route', 'add', 'default', 'via', r.lan])
      // Forwarding and NAT, inside the router's namespace only.
      run(['ip', 'netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
      const masquerade = options.nat[side] === 'symmetric' ? 'masquerade random' : 'masquerade persistent'
      run(['ip', 'netns', 'exec', router, 'nft', '-f', '-'], natRuleset(masquerade))
    }
  }

  /** Runs a command in a namespace to completion. */
  exec(ns: string, args: string[]): string {
    return run(['ip', 'netns', 'exec', ns, ...args])
  }

  /** Starts a long-running process in a namespace; it is killed by PID in destroy(). */
  spawn(ns: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcessWithoutNullStreams {
    // `ip netns exec` execs the command after setns(), so the child's PID is the command's own.
    return this.spawnCommand(['ip', 'netns', 'exec', ns, ...args], env)
  }

  /** Starts a command line as given (e.g. `nsenter` into a namespace of the bed); killed by PID in destroy(). */
  spawnCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): ChildProcessWithoutNullStreams {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: 'pipe' })
    this.#children.add(child)
    child.on('exit', () => this.#children.delete(child))
    return child
  }

  /** Kills what it spawned (by PID), then removes every namespace (with their links and nft rules). Idempotent. */
  destroy(): void {
    bedsOfThisTest.delete(this)
    for (const cleanup of this.#onDestroy.splice(0)) cleanup()
    for (const child of this.#children) {
      if (child.pid && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }
    this.#children.clear()
    for (const name of this.#created.reverse()) deleteNamespace(name)
    this.#created = []
    // Anything else under this bed's prefix (e.g. created before a failure was noticed).
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? ''
    for (const line of list.split('\n')) {
      const name = line.split(' ')[0] ?? ''
      if (name.startsWith(this.prefix)) deleteNamespace(name)
    }
  }

  /** Runs at destroy(), before the processes are killed (e.g. a server's own clean-up of its files). */
  onDestroy(cleanup: () => void): void {
    this.#onDestroy.push(cleanup)
  }

  /** Namespaces of this bed that still exist (for the cleanup assertion). */
  leftovers(): string[] {
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? ''
    return list
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(this.prefix))
  }
}

function natRuleset(masquerade: string): string {
  return `table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ${masquerade}
  }
}
table ip filter {
  # A home router drops unsolicited packets to itself: dropped before conntrack confirms them, a hole-punching
  # packet that arrives before our side punched leaves no entry behind that would make masquerade pick
  # another port for our own packets to that peer (that would turn any NAT symmetric).
  chain input {
    type filter hook input priority filter; policy drop;
    iifname "lo" accept
    ct state established,related accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname "lan0" oifname "wan0" accept
    iifname "wan0" oifname "lan0" ct state established,related accept
  }
}
`
}

/** Every bed built (create()) and not destroyed yet: what tearDownBeds() removes after each test. */
const bedsOfThisTest = new Set<NetnsBed>()

/**
 * afterEach of every namespace suite: kills what the test started (by PID), then destroys each bed it built
 * (and what was registered with onDestroy, e.g. coturn), which must leave nothing behind.
 */
export async function tearDownBeds(): Promise<void> {
  await killAll()
  for (const bed of [...bedsOfThisTest]) {
    bed.destroy()
    expect(bed.leftovers()).toEqual([])
  }
}
