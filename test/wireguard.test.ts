// The --wg tooling without root: `wg show dump` parsing, the wg runner's error kinds, the endpoint guard's
// changes and undo, the setup checks, and two WireGuard meshes on loopback (inprocess backend) with a
// stand-in `wg` (test/helpers/fake-wg.ts) whose "interfaces" are plain UDP sockets: the peer's endpoint is
// pointed at our proxy, a datagram from A's "WireGuard" reaches B's, and closing puts the endpoints back.
import { createSocket, type Socket } from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { InprocessBackend } from '../src/core/backends/inprocess.js'
import { PrivateKey, PublicKey } from '../src/core/keys.js'
import { EndpointGuard, type EndpointChange } from '../src/core/wireguard/endpoint-guard.js'
import type { WireguardEvent } from '../src/core/wireguard/events.js'
import { WireguardMesh } from '../src/core/wireguard/mesh.js'
import { interfaceKey, interfacesExcept, planPeers, planWireguard, WireguardSetupError } from '../src/core/wireguard/setup.js'
import { networkInterfaces } from 'node:os'
import { parseWgDump, WgDumpError } from '../src/core/wireguard/wg-dump.js'
import { WgError, WgTool } from '../src/core/wireguard/wg-tool.js'
import { emptySummary, foldWireguardEvent } from '../src/ui/wireguard-summary.js'
import { makeFakeWg, type FakeInterface } from './helpers/fake-wg.js'
import { dirname } from 'node:path'
import { killAll, RUN, runCli, startCli } from './helpers/cli.js'
import { Terminal } from './helpers/terminal.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await killAll()
})

const K1 = PrivateKey.generate().publicKey.toString()
const K2 = PrivateKey.generate().publicKey.toString()
const PSK = Buffer.alloc(32, 9).toString('base64')

describe('wg show dump', () => {
  it('parses the interface line and every peer field, "(none)" and "off" as absent', () => {
    const text =
      `cPriv=\tcPub=\t51820\toff\n` +
      `${K1}\t${PSK}\t203.0.113.5:51820\t10.99.0.2/32,fd00::2/128\t1764500000\t1234\t5678\t25\n` +
      `${K2}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n`
    expect(parseWgDump(text)).toEqual({
      privateKey: 'cPriv=',
      publicKey: 'cPub=',
      listenPort: 51820,
      peers: [
        { publicKey: K1, presharedKey: PSK, endpoint: '203.0.113.5:51820', allowedIps: ['10.99.0.2/32', 'fd00::2/128'], latestHandshake: 1764500000, transferRx: 1234, transferTx: 5678, persistentKeepalive: 25 },
        { publicKey: K2, allowedIps: [], transferRx: 0, transferTx: 0 },
      ],
    })
    expect(parseWgDump('(none)\t(none)\t0\t0x1234\n')).toEqual({ listenPort: 0, fwmark: '0x1234', peers: [] })
  })

  it('refuses what is not a dump, naming the line', () => {
    expect(() => parseWgDump('')).toThrow(WgDumpError)
    expect(() => parseWgDump('interface: wg0\n  public key: x\n')).toThrow(/first line/)
    expect(() => parseWgDump(`a\tb\t51820\toff\n${K1}\t(none)\t(none)\n`)).toThrow(/line 2: expected 8 peer fields, got 3/)
    expect(() => parseWgDump(`a\tb\t51820\toff\n${K1}\t(none)\t(none)\t(none)\tsoon\t0\t0\toff\n`)).toThrow(/line 2: latest-handshake "soon"/)
  })
})

const iface = (over: Partial<FakeInterface> = {}): FakeInterface => ({
  iface: 'wg0',
  privateKey: PrivateKey.generate().toBase64(),
  listenPort: 51820,
  peers: [{ publicKey: K1, allowedIps: ['10.99.0.2/32'], endpoint: '203.0.113.5:51820' }],
  ...over,
})

describe('wg tool', () => {
  it('errors carry a kind: missing binary, permission, no interface, timeout, anything else', async () => {
    const missing = new WgTool({ binary: '/nonexistent/wg' })
    await expect(missing.dump('wg0')).rejects.toMatchObject({ kind: 'missing-binary', message: expect.stringMatching(/wireguard-tools/) })
    const fake = makeFakeWg(iface({ fail: { stderr: 'Unable to access interface: Permission denied' } }))
    const tool = new WgTool({ binary: fake.binary })
    await expect(tool.dump('wg0')).rejects.toMatchObject({ kind: 'permission', message: 'wg show wg0 dump: Unable to access interface: Permission denied' })
    fake.setState(iface({ fail: { stderr: 'Unable to access interface: Operation not permitted' } }))
    await expect(tool.privateKey('wg0')).rejects.toMatchObject({ kind: 'permission' })
    fake.setState(iface())
    await expect(tool.dump('wg9')).rejects.toMatchObject({ kind: 'no-interface', message: 'wg show wg9 dump: Unable to access interface: No such device' })
    fake.setState(iface({ fail: { stderr: 'Unable to access interface: Protocol not supported' } }))
    await expect(tool.dump('wg0')).rejects.toMatchObject({ kind: 'no-interface' })
    fake.setState(iface())
    await expect(tool.setEndpoint('wg0', 'short', '127.0.0.1:1')).rejects.toMatchObject({ kind: 'failed', message: expect.stringMatching(/Key is not the correct length/) })
    const slow = new WgTool({ binary: '/bin/sleep', timeoutMs: 200 })
    await expect(slow.run(['5'])).rejects.toMatchObject({ kind: 'timeout' })
    const aborted = new AbortController()
    const pending = new WgTool({ binary: '/bin/sleep' }).run(['5'], { signal: aborted.signal })
    aborted.abort()
    await expect(pending).rejects.toBeInstanceOf(WgError)
  })

  it('passes a preshared key on stdin, never in argv', async () => {
    const fake = makeFakeWg(iface({ peers: [] }))
    await new WgTool({ binary: fake.binary }).addPeer('wg0', K2, { allowedIps: ['10.99.0.3/32'], presharedKey: PSK, persistentKeepalive: 25 })
    const call = fake.calls().at(-1)!
    expect(call.argv).toEqual(['set', 'wg0', 'peer', K2, 'allowed-ips', '10.99.0.3/32', 'persistent-keepalive', '25', 'preshared-key', '/dev/stdin'])
    expect(call.argv.join(' ')).not.toContain(PSK)
    expect(fake.state().peers).toEqual([{ publicKey: K2, allowedIps: ['10.99.0.3/32'], persistentKeepalive: 25, presharedKey: PSK }])
  })
})

describe('endpoint guard', () => {
  const guardFor = (state: FakeInterface, addedByUs = false) => {
    const fake = makeFakeWg(state)
    const tool = new WgTool({ binary: fake.binary })
    const changes: EndpointChange[] = []
    const original = state.peers[0] ?? { publicKey: K2, allowedIps: ['10.99.0.3/32'] }
    const guard = new EndpointGuard({ tool, iface: 'wg0', original: { transferRx: 0, transferTx: 0, ...original }, addedByUs, onChange: (c) => changes.push(c) })
    return { fake, guard, changes }
  }

  it('points the endpoint at the proxy and puts the old one back', async () => {
    const { fake, guard, changes } = guardFor(iface())
    await guard.restore() // nothing pointed yet: nothing to do
    expect(fake.calls()).toEqual([])
    await guard.point('127.0.0.1:40000')
    await guard.point('127.0.0.1:40000') // already there: no second call
    expect(fake.state().peers[0]!.endpoint).toBe('127.0.0.1:40000')
    await guard.close()
    await guard.close()
    expect(fake.state().peers).toEqual([{ publicKey: K1, allowedIps: ['10.99.0.2/32'], endpoint: '203.0.113.5:51820' }])
    expect(fake.calls().map((c) => c.argv.slice(4).join(' '))).toEqual(['endpoint 127.0.0.1:40000', 'endpoint 203.0.113.5:51820'])
    expect(changes).toEqual([
      { action: 'pointed', endpoint: '127.0.0.1:40000', previous: '203.0.113.5:51820' },
      { action: 'restored', endpoint: '203.0.113.5:51820' },
    ])
  })

  it('a peer without endpoint is removed and re-added as it was (wg set cannot unset an endpoint)', async () => {
    const peer = { publicKey: K1, allowedIps: ['10.99.0.2/32', '10.98.0.0/16'], persistentKeepalive: 25, presharedKey: PSK }
    const { fake, guard, changes } = guardFor(iface({ peers: [peer] }))
    await guard.point('127.0.0.1:40001')
    // Restores run after the point they undo, even when called without waiting.
    const restoring = guard.restore()
    await guard.point('127.0.0.1:40002')
    await restoring
    await guard.close()
    expect(fake.state().peers).toEqual([{ publicKey: K1, allowedIps: ['10.99.0.2/32', '10.98.0.0/16'], persistentKeepalive: 25, presharedKey: PSK }])
    expect(changes.map((c) => c.action)).toEqual(['pointed', 'restored', 'pointed', 'restored'])
  })

  it('a path lost for good (restoreAfterMs without a path) restores the endpoint; a path back in time keeps it pointed', async () => {
    const fake = makeFakeWg(iface())
    const changes: EndpointChange[] = []
    const errors: Error[] = []
    const original = { ...iface().peers[0]!, transferRx: 0, transferTx: 0 }
    const guard = new EndpointGuard({ tool: new WgTool({ binary: fake.binary }), iface: 'wg0', original, addedByUs: false, restoreAfterMs: 300, onChange: (c) => changes.push(c), onError: (e) => errors.push(e) })
    const settle = async (ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms))
      await guard.idle()
    }
    guard.pathDown() // never pointed: nothing to restore
    guard.pathUp('127.0.0.1:40010')
    await settle(50)
    expect(fake.state().peers[0]!.endpoint).toBe('127.0.0.1:40010')
    guard.pathDown()
    await settle(100)
    guard.pathUp('127.0.0.1:40010') // back within 300 ms: stays pointed
    await settle(500)
    expect(fake.state().peers[0]!.endpoint).toBe('127.0.0.1:40010')
    expect(changes.map((c) => c.action)).toEqual(['pointed'])
    guard.pathDown()
    await settle(600)
    expect(fake.state().peers[0]!.endpoint).toBe('203.0.113.5:51820')
    expect(changes.map((c) => c.action)).toEqual(['pointed', 'restored'])
    // A path after that points it again; close() cancels a pending restore and restores at once.
    guard.pathUp('127.0.0.1:40011')
    await settle(50)
    guard.pathDown()
    await guard.close()
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(changes.map((c) => c.action)).toEqual(['pointed', 'restored', 'pointed', 'restored'])
    expect(fake.state().peers[0]!.endpoint).toBe('203.0.113.5:51820')
    expect(errors).toEqual([])
  })

  it('a peer we added is removed on close', async () => {
    const { fake, guard, changes } = guardFor(iface({ peers: [{ publicKey: K2, allowedIps: ['10.99.0.3/32'] }] }), true)
    await guard.point('127.0.0.1:40003')
    await guard.close()
    expect(fake.state().peers).toEqual([])
    expect(changes.map((c) => c.action)).toEqual(['pointed', 'removed'])
  })
})

describe('--wg setup checks', () => {
  it("the signaling key is the interface's; a different -k is refused naming both public keys", async () => {
    const key = PrivateKey.generate()
    const fake = makeFakeWg(iface({ privateKey: key.toBase64() }))
    const tool = new WgTool({ binary: fake.binary })
    expect((await interfaceKey(tool, 'wg0')).publicKey.toString()).toBe(key.publicKey.toString())
    expect((await interfaceKey(tool, 'wg0', PrivateKey.parse(key.toBase64()))).publicKey.equals(key.publicKey)).toBe(true)
    const other = PrivateKey.generate()
    await expect(interfaceKey(tool, 'wg0', other)).rejects.toThrow(
      `-k holds the key of ${other.publicKey.toString()}, but wg0 has the key of ${key.publicKey.toString()}`,
    )
    await expect(interfaceKey(tool, 'wg7')).rejects.toMatchObject({ kind: 'no-interface', message: expect.stringMatching(/^--wg: there is no WireGuard interface wg7/) })
    fake.setState(iface({ privateKey: undefined }))
    await expect(interfaceKey(tool, 'wg0')).rejects.toThrow(/wg0 has no private key yet: set one with `wg set wg0 private-key FILE`/)
  })

  it('host candidates come from every interface with an external address except the WireGuard one', () => {
    const external = Object.entries(networkInterfaces()).filter(([, infos]) => (infos ?? []).some((i) => !i.internal)).map(([n]) => n)
    for (const name of external) {
      const rest = interfacesExcept(name)
      expect(rest ?? []).not.toContain(name)
      expect(rest ?? []).toEqual(external.filter((n) => n !== name))
    }
    expect(interfacesExcept('no-such-wg')).toEqual(external.length ? external : undefined)
  })

  it('the peer must be on the interface, else --allowed-ips adds it, else the fixing command', async () => {
    const dump = parseWgDump(`p\tq\t51820\toff\n${K1}\t(none)\t(none)\t10.99.0.2/32\t0\t0\t0\toff\n`)
    expect(planPeers('wg0', dump, { peer: PublicKey.parse(K1) })).toEqual([{ key: PublicKey.parse(K1), original: dump.peers[0], addedByUs: false }])
    expect(() => planPeers('wg0', dump, { peer: PublicKey.parse(K2) })).toThrow(
      `--wg: ${K2} is not a peer of wg0: add it with \`wg set wg0 peer ${K2} allowed-ips IP/32\`, or pass --allowed-ips IP/32`,
    )
    expect(planPeers('wg0', dump, { peer: PublicKey.parse(K2), allowedIps: ['10.99.0.3/32'] })).toMatchObject([{ addedByUs: true, original: { publicKey: K2, allowedIps: ['10.99.0.3/32'] } }])
    expect(planPeers('wg0', dump, {}).map((p) => p.key.toString())).toEqual([K1])
    expect(() => planPeers('wg0', { ...dump, peers: [] }, {})).toThrow(WireguardSetupError)
    expect(() => planPeers('wg0', { ...dump, listenPort: 0 }, {})).toThrow(/no listen port/)
    expect(() => planPeers('wg0', dump, { allowedIps: ['10.99.0.3/32'] })).toThrow(/give PEER_PK too/)
  })
})

describe('two meshes on loopback with a stand-in wg', () => {
  /** A "WireGuard" socket: what the interface would send and receive on its listen port. */
  async function wireguardSocket(): Promise<{ socket: Socket; port: number; received: Buffer[] }> {
    const socket = createSocket('udp4')
    const received: Buffer[] = []
    socket.on('message', (m) => received.push(m))
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    closers.push(() => new Promise<void>((resolve) => socket.close(() => resolve())))
    return { socket, port: socket.address().port, received }
  }

  const waitFor = async (what: string, check: () => boolean, timeoutMs = 20_000) => {
    const until = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  it('points each endpoint at the proxy, carries a datagram between the "interfaces", restores on close; events carry the peer', async () => {
    const a = PrivateKey.generate()
    const b = PrivateKey.generate()
    const [wgA, wgB] = [await wireguardSocket(), await wireguardSocket()]
    const fakeA = makeFakeWg({ iface: 'wg0', privateKey: a.toBase64(), listenPort: wgA.port, peers: [{ publicKey: b.publicKey.toString(), allowedIps: ['10.99.0.2/32'], endpoint: '192.0.2.7:51820' }] })
    const fakeB = makeFakeWg({ iface: 'wg0', privateKey: b.toBase64(), listenPort: wgB.port, peers: [{ publicKey: a.publicKey.toString(), allowedIps: ['10.99.0.1/32'] }] })
    const backend = new InprocessBackend()
    closers.push(() => backend.close())
    const events = { a: [] as WireguardEvent[], b: [] as WireguardEvent[] }
    const meshes = await Promise.all(
      ([['a', fakeA, a, b.publicKey], ['b', fakeB, b, undefined]] as const).map(async ([name, fake, ours, peer]) => {
        const tool = new WgTool({ binary: fake.binary })
        const key = await interfaceKey(tool, 'wg0')
        expect(key.publicKey.equals(ours.publicKey)).toBe(true)
        const plan = await planWireguard(tool, 'wg0', peer ? { peer } : {})
        const mesh = new WireguardMesh({ tool, plan, backend, ours: key, single: peer !== undefined, session: { ice: { loopback: true } }, dumpIntervalMs: 200 })
        closers.push(() => mesh.close())
        mesh.events.on((e) => events[name].push(e))
        return mesh
      }),
    )
    await Promise.all(meshes.map((m) => m.start()))
    const pointed = (list: WireguardEvent[]) => list.find((e) => e.type === 'endpoint' && e.action === 'pointed') as Extract<WireguardEvent, { type: 'endpoint'; action: 'pointed' }> | undefined
    await waitFor('both endpoints pointed', () => Boolean(pointed(events.a) && pointed(events.b)))
    const proxyA = pointed(events.a)!.endpoint
    expect(fakeA.state().peers[0]!.endpoint).toBe(proxyA)
    expect(fakeB.state().peers[0]!.endpoint).toBe(pointed(events.b)!.endpoint)

    // A's WireGuard sends to its peer's endpoint (our proxy); B's WireGuard receives it from B's proxy.
    const datagram = Buffer.from('a WireGuard handshake initiation, 148 bytes in real life')
    const [, port] = proxyA.split(':')
    await waitFor('the datagram at B', () => {
      wgA.socket.send(datagram, Number(port), '127.0.0.1')
      return wgB.received.some((d) => d.equals(datagram))
    })
    // The table's row for B's peer, folded from the same events (bytes, handshake poll, endpoint).
    await waitFor('a handshake poll at A', () => events.a.some((e) => e.type === 'handshake'))
    await waitFor("A's forward counters", () => events.a.some((e) => e.type === 'forward' && e.sent.bytes >= datagram.length))
    const summary = emptySummary()
    events.a.forEach((e) => foldWireguardEvent(summary, e))
    expect(summary.rows.get(b.publicKey.toString())).toMatchObject({ role: expect.any(String), state: 'connected', endpoint: proxyA })
    expect(summary.rows.get(b.publicKey.toString())!.sentBytes).toBeGreaterThanOrEqual(datagram.length)

    await Promise.all(meshes.map((m) => m.close()))
    expect(fakeA.state().peers[0]!.endpoint).toBe('192.0.2.7:51820')
    expect(fakeB.state().peers).toEqual([{ publicKey: a.publicKey.toString(), allowedIps: ['10.99.0.1/32'] }])
    for (const list of [events.a, events.b]) {
      const peerOf = list === events.a ? b : a
      expect(list.filter((e) => e.type !== 'interface').every((e) => 'peer' in e && e.peer === peerOf.publicKey.toString())).toBe(true)
      expect(list.filter((e) => e.type === 'endpoint').at(-1)).toMatchObject({ action: 'restored' })
    }
  }, 40_000)
})

describe('every-peer mode follows the interface', () => {
  it('a peer added to the interface gets a session within a poll; a removed one loses it, with nothing restored', async () => {
    const a = PrivateKey.generate()
    const first = PrivateKey.generate().publicKey.toString()
    const later = PrivateKey.generate().publicKey.toString()
    const fake = makeFakeWg({ iface: 'wg0', privateKey: a.toBase64(), listenPort: 51820, peers: [{ publicKey: first, allowedIps: ['10.99.0.2/32'] }] })
    const tool = new WgTool({ binary: fake.binary })
    const backend = new InprocessBackend()
    closers.push(() => backend.close())
    const plan = await planWireguard(tool, 'wg0', {})
    const mesh = new WireguardMesh({ tool, plan, backend, ours: a, single: false, session: { ice: { loopback: true } }, dumpIntervalMs: 100 })
    closers.push(() => mesh.close())
    const events: WireguardEvent[] = []
    mesh.events.on((e) => events.push(e))
    await mesh.start()
    expect(mesh.peers).toEqual([first])
    fake.setState({ ...fake.state(), peers: [...fake.state().peers, { publicKey: later, allowedIps: ['10.99.0.3/32'] }] })
    const until = Date.now() + 10_000
    while (!events.some((e) => e.type === 'subscribed' && 'peer' in e && e.peer === later) && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    expect(mesh.peers).toEqual([first, later])
    fake.setState({ ...fake.state(), peers: fake.state().peers.filter((p) => p.publicKey !== first) })
    while (mesh.peers.includes(first) && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    expect(mesh.peers).toEqual([later])
    expect(events.find((e) => e.type === 'state' && e.state === 'closed' && 'peer' in e && e.peer === first)).toBeDefined()
    // Neither peer was ever pointed, and the one that left is not touched: only show calls reached wg.
    expect(fake.calls().filter((c) => c.argv[0] === 'set')).toEqual([])
  })
})

describe('session --wg on the command line (no root needed)', () => {
  const oneLine = (stderr: string) => expect(stderr).toMatch(/^Error: [^\n]+\n$/)

  it('PEER_PK may be left out only with --wg; --allowed-ips needs --wg; --wg and --forward exclude each other', async () => {
    const peer = PrivateKey.generate().publicKey.toString()
    const env = { CUNICU_PRIVATE_KEY: PrivateKey.generate().toBase64() }
    const missing = await runCli(['session'], { env })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toBe("Error: PEER_PK is missing: give the peer's public key (or --wg IFACE to carry every peer of a WireGuard interface)\n")
    const allowed = await runCli(['session', peer, '--allowed-ips', '10.99.0.2/32'], { env })
    expect(allowed.code).toBe(2)
    expect(allowed.stderr).toMatch(/--wg/)
    const both = await runCli(['session', peer, '--wg', 'wg0', '--forward', '127.0.0.1:0'], { env })
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/--forward.*cannot also be provided when using --wg|--wg.*cannot also be provided when using --forward/)
  })

  it('--timeout without the peer: exit 4 naming the peer, the interface untouched', async () => {
    const a = PrivateKey.generate()
    const peer = PrivateKey.generate().publicKey.toString()
    const fake = makeFakeWg({ iface: 'wg0', privateKey: a.toBase64(), listenPort: 51820, peers: [{ publicKey: peer, allowedIps: ['10.99.0.2/32'], endpoint: '192.0.2.7:51820' }] })
    const before = fake.state()
    const r = await runCli(['session', '--wg', 'wg0', peer, '-b', 'inprocess:', '--loopback', '--timeout', '2'], { env: { PATH: `${dirname(fake.binary)}:${process.env.PATH}` } })
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toBe(`Error: timed out after 2 s: not connected to ${peer.slice(0, 8)}…\n`)
    expect(fake.state()).toEqual(before)
  })

  it('without wireguard-tools on PATH: one line naming the package, exit 2', async () => {
    const r = await runCli(['session', '--wg', 'wg0'], { env: { PATH: '/nonexistent' } })
    expect(r).toMatchObject({ code: 2, stdout: '' })
    expect(r.stderr).toBe('Error: the `wg` command of wireguard-tools is not on PATH (apt-get install wireguard-tools)\n')
    oneLine(r.stderr)
  })
})

describe('session --wg end to end with a stand-in wg on PATH (no root needed)', () => {
  it('A names its peer (NDJSON), B carries every peer (the table, in tmux): endpoints pointed, restored on SIGTERM', async () => {
    const signal = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
    const { address } = await signal.waitForEvent((e) => e.type === 'listening')
    const backend = `grpc://${address}?insecure=true`
    const a = PrivateKey.generate()
    const b = PrivateKey.generate()
    const [A, B] = [a.publicKey.toString(), b.publicKey.toString()]
    const fakeA = makeFakeWg({ iface: 'wg0', privateKey: a.toBase64(), listenPort: 51820, peers: [{ publicKey: B, allowedIps: ['10.99.0.2/32'], endpoint: '192.0.2.7:51820' }] })
    const fakeB = makeFakeWg({ iface: 'wg0', privateKey: b.toBase64(), listenPort: 51821, peers: [{ publicKey: A, allowedIps: ['10.99.0.1/32'] }] })
    const path = (fake: typeof fakeA) => `${dirname(fake.binary)}:${process.env.PATH}`
    const command = `PATH='${path(fakeB)}' NODE_ENV=production ${process.execPath} ${RUN} session --wg wg0 -b '${backend}' --loopback; sleep 30`
    const terminal = Terminal.open(command, { cols: 140, rows: 30 })
    try {
      const pa = startCli(['session', '--wg', 'wg0', B, '-b', backend, '--loopback', '--json'], { env: { PATH: path(fakeA) } })
      const pointed = await pa.waitForEvent((e) => e.type === 'endpoint' && e.action === 'pointed', 30_000)
      expect(pointed).toMatchObject({ peer: B, endpoint: expect.stringMatching(/^127\.0\.0\.1:\d+$/), previous: '192.0.2.7:51820' })
      expect(fakeA.state().peers[0]!.endpoint).toBe(pointed.endpoint)
      const row = new RegExp(`${A.slice(0, 8).replace(/[+/]/g, '\\$&')}… +(controlling|controlled) +connected +host→host 127\\.0\\.0\\.1:\\d+`)
      const screen = await terminal.waitFor((s) => row.test(s), 20_000)
      expect(screen, screen).toMatch(row)
      expect(screen).toMatch(/peer +role +state +pair +RTT +⇒ sent +⇐ recv +handshake/)
      // B points its endpoint once its path carries (the row may show 'connected' a moment before).
      for (let i = 0; i < 100 && !fakeB.state().peers[0]!.endpoint; i++) await new Promise((r) => setTimeout(r, 100))
      expect(fakeB.state().peers[0]!.endpoint).toMatch(/^127\.0\.0\.1:\d+$/)
      process.kill(pa.child.pid!, 'SIGTERM')
      expect(await pa.exit(15_000), pa.stderr).toBe(143)
      expect(fakeA.state().peers).toEqual([{ publicKey: B, allowedIps: ['10.99.0.2/32'], endpoint: '192.0.2.7:51820' }])
    } finally {
      terminal.close()
    }
  }, 60_000)
})
