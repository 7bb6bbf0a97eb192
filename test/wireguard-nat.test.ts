// `session --wg` end to end (issue 9): a real WireGuard tunnel between two network namespaces, each behind
// its own NAT router namespace, each with a wireguard-go interface wg0 and `cunicu-ts session --wg wg0`
// (A names its peer, B carries every peer of its interface). A 20 MB TCP stream crosses the tunnel
// (10.99.0.1 → 10.99.0.2) and both ends hash it. Once behind endpoint-independent NATs (a direct pair), once
// behind a symmetric NAT (a relay pair through coturn with the credentials of `signal --relay`). After
// SIGTERM both peers' endpoints are what they were before. Then the --wg refusals, each with the interface
// unchanged. Needs root (network namespaces): without it, skipped on a developer's machine, failed under CI
// unless CUNICU_TEST_SKIP_NETNS=1 (test/netns/bed.ts, netnsGate).
import { fileURLToPath } from 'node:url'
import { writeFileSync } from 'node:fs'
import { afterEach, beforeAll, expect, it } from 'vitest'
import { CliProcess } from './helpers/cli.js'
import { describeNetns, tearDownBeds, NetnsBed, removeStaleNamespaces, requireTools, type NatKind } from './netns/bed.js'
import { startCoturn, type Coturn } from './netns/coturn.js'
import { describePair, lastPair, makePeers, startSignal, type Pair } from './netns/peers.js'
import { dumpOf, endpointsOf, startWireguardGo, type WgNode } from './netns/wireguard.js'
import { PrivateKey } from '../src/core/keys.js'

const SECRET = 'cunicu-ts-wg-test-secret'
const TCP_TOOL = fileURLToPath(new URL('./netns/tcp-tool.mjs', import.meta.url))
const STREAM_BYTES = 20 * 1024 * 1024
const TUNNEL = { a: '10.99.0.1', b: '10.99.0.2', port: 5201 }
/** A's endpoint for B before the session: nobody there (the sink namespace drops it), restored on exit. */
const STALE_ENDPOINT = '10.231.0.99:51820'

let bed: NetnsBed | undefined
let coturn: Coturn | undefined

afterEach(tearDownBeds)

const hasRelay = (pair: Pair) => pair.local.type === 'relay' || pair.remote.type === 'relay'

interface Tunnel {
  wgA: WgNode
  wgB: WgNode
  pa: CliProcess
  pb: CliProcess
  startedAt: number
  keys: { a: string; b: string }
  context: () => string
}

/** The bed, coturn, `signal --relay`, wireguard-go on both sides, and the two --wg sessions. */
async function tunnel(name: string, nat: Record<'a' | 'b', NatKind>): Promise<Tunnel> {
  bed = new NetnsBed(name).create({ nat })
  coturn = await startCoturn(bed, { secret: SECRET })
  const ip = bed.addresses.publicIp
  const { backend } = await startSignal(bed, [`turn:${ip}:3478?secret=${SECRET}&ttl=1h`])
  const { a, b } = makePeers()
  const keys = { a: a.key.publicKey.toString(), b: b.key.publicKey.toString() }
  const wgA = await startWireguardGo(bed, bed.ns.peerA, { privateKeyFile: a.file, address: `${TUNNEL.a}/24` })
  const wgB = await startWireguardGo(bed, bed.ns.peerB, { privateKeyFile: b.file, address: `${TUNNEL.b}/24` })
  wgA.wg(['set', 'wg0', 'peer', keys.b, 'allowed-ips', `${TUNNEL.b}/32`, 'endpoint', STALE_ENDPOINT])
  wgB.wg(['set', 'wg0', 'peer', keys.a, 'allowed-ips', `${TUNNEL.a}/32`])
  const common = ['-b', backend, '--interface', 'eth0', '--stun', `stun:${ip}:3478`, '--json']
  const startedAt = Date.now()
  // No -k: each session signs with its interface's private key.
  const pa = wgA.cli(['session', '--wg', 'wg0', keys.b, ...common])
  const pb = wgB.cli(['session', '--wg', 'wg0', ...common])
  const context = () => `A:\n${pa.lines.join('\n')}\n${pa.stderr}\nB:\n${pb.lines.join('\n')}\n${pb.stderr}`
  return { wgA, wgB, pa, pb, startedAt, keys, context }
}

interface StreamResult {
  firstByteMs: number
  pointedMs: number
  megabitsPerSecond: number
}

/** Waits until both endpoints point at the proxies, then streams 20 MB A → B through the tunnel. */
async function stream(name: string, t: Tunnel): Promise<StreamResult> {
  const pointed = (e: Record<string, any>) => e.type === 'endpoint' && e.action === 'pointed'
  const [pointA] = await Promise.all([t.pa.waitForEvent(pointed, 60_000), t.pb.waitForEvent(pointed, 60_000)]).catch((err: Error) => {
    throw new Error(`${err.message.split('\n')[0]}\n${t.context()}`)
  })
  expect(pointA).toMatchObject({ peer: t.keys.b, endpoint: expect.stringMatching(/^127\.0\.0\.1:\d+$/), previous: STALE_ENDPOINT })
  expect(t.pb.events.find(pointed)).toMatchObject({ peer: t.keys.a })
  expect(endpointsOf(t.wgA)[t.keys.b]).toBe(pointA.endpoint)
  const pointedMs = Date.parse(pointA.at) - t.startedAt

  const receiver = new CliProcess(t.wgB.spawn([process.execPath, TCP_TOOL, 'recv', `${TUNNEL.b}:${TUNNEL.port}`, String(STREAM_BYTES)]))
  await receiver.waitForEvent((e) => e.type === 'listening')
  const sender = new CliProcess(t.wgA.spawn([process.execPath, TCP_TOOL, 'send', `${TUNNEL.b}:${TUNNEL.port}`, String(STREAM_BYTES)]))
  const first = await receiver.waitForEvent((e) => e.type === 'first-byte', 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\nsender: ${sender.lines.join('\n')}\nwg A: ${dumpOf(t.wgA)}\nwg B: ${dumpOf(t.wgB)}\n${t.context()}`)
  })
  const sent = await sender.waitForEvent((e) => e.type === 'sent', 120_000)
  const received = await receiver.waitForEvent((e) => e.type === 'received', 120_000)
  expect(received.bytes).toBe(STREAM_BYTES)
  expect(sent.bytes).toBe(STREAM_BYTES)
  expect(received.sha256).toBe(sent.sha256)
  const result = {
    firstByteMs: first.at - t.startedAt,
    pointedMs,
    megabitsPerSecond: Math.round((STREAM_BYTES * 8) / received.seconds / 1e4) / 100,
  }
  console.log(
    `[wg ${name}] A: ${describePair(lastPair(t.pa))} | B: ${describePair(lastPair(t.pb))}\n` +
      `[wg ${name}] session start → endpoint pointed ${result.pointedMs} ms, → first tunnel byte ${result.firstByteMs} ms; ` +
      `${STREAM_BYTES / 1048576} MiB TCP through the tunnel in ${received.seconds} s: ${result.megabitsPerSecond} Mbit/s, sha256 equal`,
  )
  // WireGuard itself saw the handshake through our proxy (the runner reads `wg show wg0 dump`).
  await t.pa.waitForEvent((e) => e.type === 'handshake' && e.peer === t.keys.b && typeof e.latestHandshake === 'string', 15_000)
  return result
}

/** SIGTERM both: exit 143 (stopped by SIGTERM, after the clean-up), and each peer's endpoint is what it was before the session. */
async function stopAndCheckRestore(t: Tunnel): Promise<void> {
  for (const p of [t.pa, t.pb]) process.kill(p.child.pid!, 'SIGTERM')
  expect(await t.pa.exit(15_000), t.context()).toBe(143)
  expect(await t.pb.exit(15_000), t.context()).toBe(143)
  expect(endpointsOf(t.wgA)).toEqual({ [t.keys.b]: STALE_ENDPOINT })
  // B's peer had no endpoint: it was removed and re-added as it was (`wg set` cannot unset an endpoint).
  expect(endpointsOf(t.wgB)).toEqual({ [t.keys.a]: '(none)' })
  expect(t.wgB.wg(['show', 'wg0', 'allowed-ips']).trim()).toBe(`${t.keys.a}\t${TUNNEL.a}/32`)
  for (const p of [t.pa, t.pb]) expect(p.events.filter((e) => e.type === 'endpoint').at(-1), t.context()).toMatchObject({ action: 'restored' })
}

describeNetns('WireGuard over the session in network namespaces', () => {
  beforeAll(() => {
    requireTools({ nft: 'nftables', turnserver: 'coturn', ss: 'iproute2', wg: 'wireguard-tools', 'wireguard-go': 'wireguard-go', nsenter: 'util-linux', unshare: 'util-linux' })
    removeStaleNamespaces()
  })

  it('behind endpoint-independent NATs: a direct pair carries a 20 MB TCP stream through wg0; SIGTERM restores the endpoints', async () => {
    const t = await tunnel('wgeim', { a: 'endpoint-independent', b: 'endpoint-independent' })
    await stream('eim', t)
    for (const pair of [lastPair(t.pa)!, lastPair(t.pb)!]) expect(hasRelay(pair), describePair(pair)).toBe(false)
    // Every event of B (every-peer mode) names the peer it belongs to.
    expect(t.pb.events.filter((e) => e.type !== 'interface').every((e) => e.peer === t.keys.a), t.context()).toBe(true)
    expect(t.pb.events.find((e) => e.type === 'interface')).toMatchObject({ iface: 'wg0', publicKey: t.keys.b, peers: [t.keys.a] })
    await stopAndCheckRestore(t)
  }, 240_000)

  it('behind a symmetric NAT: a TURN relay pair (signal --relay) carries a 20 MB TCP stream through wg0', async () => {
    const t = await tunnel('wgsym', { a: 'symmetric', b: 'endpoint-independent' })
    await stream('sym', t)
    for (const pair of [lastPair(t.pa)!, lastPair(t.pb)!]) expect(hasRelay(pair), describePair(pair)).toBe(true)
    expect(coturn!.log()).toMatch(/user <\d{10}:[A-Za-z0-9+/]{43}=>: incoming packet ALLOCATE processed, success/)
    await stopAndCheckRestore(t)
  }, 240_000)
})

describeNetns('session --wg refusals against a real interface', () => {
  beforeAll(() => {
    requireTools({ wg: 'wireguard-tools', 'wireguard-go': 'wireguard-go', nsenter: 'util-linux', unshare: 'util-linux', setpriv: 'util-linux' })
    removeStaleNamespaces()
  })

  /** One peer namespace with wg0 (key A, peer B with an endpoint), and B's and a stranger's keys. */
  async function oneInterface(name: string) {
    bed = new NetnsBed(name).create({ nat: { a: 'endpoint-independent', b: 'endpoint-independent' } })
    const { a, b } = makePeers()
    const wgA = await startWireguardGo(bed, bed.ns.peerA, { privateKeyFile: a.file, address: `${TUNNEL.a}/24` })
    wgA.wg(['set', 'wg0', 'peer', b.key.publicKey.toString(), 'allowed-ips', `${TUNNEL.b}/32`, 'endpoint', STALE_ENDPOINT])
    return { wgA, a, b }
  }

  /** Runs a refused CLI call: exit 2, nothing on stdout, one line on stderr, and wg0 exactly as before. */
  async function refused(node: WgNode, args: string[], options: { env?: Record<string, string>; wrapper?: string[] } = {}): Promise<string> {
    const before = dumpOf(node)
    const p = node.cli(args, options.env, options.wrapper)
    p.child.stdin.end()
    const code = await p.exit(20_000)
    expect({ code, stdout: p.lines }, p.stderr).toEqual({ code: 2, stdout: [] })
    expect(p.stderr).toMatch(/^Error: [^\n]+\n$/)
    expect(dumpOf(node)).toBe(before)
    return p.stderr.trim()
  }

  it('not root, no wg, no such interface, peer missing without --allowed-ips, -k of another key: one line, exit 2, wg0 unchanged', async () => {
    const { wgA, a, b } = await oneInterface('wgerr')
    const peerB = b.key.publicKey.toString()
    const backend = ['-b', 'grpc://127.0.0.1:9?insecure=true']
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
    expect(await refused(wgA, ['session', '--wg', 'wg0', peerB, ...backend], { wrapper: nobody, env: { HOME: '/tmp' } })).toMatch(
      /^Error: --wg wg0 needs root \(or CAP_NET_ADMIN\) to read and change the interface: wg show wg0 private-key: Unable to access interface: Permission denied$/,
    )
    expect(await refused(wgA, ['session', '--wg', 'wg0', peerB, ...backend], { env: { PATH: '/nonexistent' } })).toBe(
      'Error: the `wg` command of wireguard-tools is not on PATH (apt-get install wireguard-tools)',
    )
    expect(await refused(wgA, ['session', '--wg', 'wg7', peerB, ...backend])).toMatch(/^Error: --wg: there is no WireGuard interface wg7 \(create it with `ip link add wg7 type wireguard` or `wireguard-go wg7`\)/)
    const stranger = PrivateKey.generate().publicKey.toString()
    expect(await refused(wgA, ['session', '--wg', 'wg0', stranger, ...backend])).toBe(
      `Error: --wg: ${stranger} is not a peer of wg0: add it with \`wg set wg0 peer ${stranger} allowed-ips IP/32\`, or pass --allowed-ips IP/32`,
    )
    const other = makePeers().a
    expect(await refused(wgA, ['session', '--wg', 'wg0', peerB, '-k', other.file, ...backend])).toBe(
      `Error: -k holds the key of ${other.key.publicKey.toString()}, but wg0 has the key of ${a.key.publicKey.toString()}: with --wg the interface's key is the signaling key; drop -k or give wg0's key`,
    )
    // -k with the interface's own key is accepted (it stays up until SIGTERM, then leaves wg0 as it was).
    const before = dumpOf(wgA)
    const ok = wgA.cli(['session', '--wg', 'wg0', peerB, '-k', a.file, ...backend, '--no-server-relays', '--json'])
    await ok.waitForEvent((e) => e.type === 'interface' && e.publicKey === a.key.publicKey.toString())
    process.kill(ok.child.pid!, 'SIGTERM')
    expect(await ok.exit(15_000), ok.stderr).toBe(143)
    expect(dumpOf(wgA)).toBe(before)
  }, 90_000)

  it('--allowed-ips adds a missing peer for the session and removes it on SIGTERM', async () => {
    const { wgA } = await oneInterface('wgadd')
    const { backend } = await startSignal(bed!, [])
    const before = dumpOf(wgA)
    const newcomer = PrivateKey.generate().publicKey.toString()
    const p = wgA.cli(['session', '--wg', 'wg0', newcomer, '--allowed-ips', '10.99.0.3/32', '-b', backend, '--interface', 'eth0', '--json'])
    await p.waitForEvent((e) => e.type === 'subscribed', 20_000)
    expect(wgA.wg(['show', 'wg0', 'allowed-ips'])).toContain(`${newcomer}\t10.99.0.3/32`)
    process.kill(p.child.pid!, 'SIGTERM')
    expect(await p.exit(15_000), p.stderr).toBe(143)
    expect(dumpOf(wgA)).toBe(before)
    expect(p.events.filter((e) => e.type === 'endpoint')).toEqual([expect.objectContaining({ action: 'removed', peer: newcomer })])
  }, 90_000)
})
