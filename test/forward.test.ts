// `session --forward`: raw datagrams (WIRE.md §8, the default) and sealed ones (`--seal`: own magic,
// per-agent key, role-separated nonces, replay window), the Forwarder between two local UDP apps, and the
// CLI carrying 100,000 raw datagrams (and 10,000 sealed ones) over loopback; datagrams injected from other
// addresses never reach the app. The same load between NATed namespaces is in nat.test.ts.
import { createSocket, type Socket } from 'node:dgram'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { FORWARD_MAGIC, forwardKey, isForwardDatagram, openForward, ReplayWindow, sealForward } from '../src/core/session/forward-seal.js'
import { Forwarder, type ForwardStats } from '../src/core/session/forwarder.js'
import { openProbe, PROBE_MAGIC, sealProbe } from '../src/core/session/path-probe.js'
import { CliProcess, killAll, startCli } from './helpers/cli.js'
import { withTimeout } from './helpers/wait.js'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await killAll()
})

const key = new Uint8Array(32).fill(7)
const payload = new TextEncoder().encode('a WireGuard datagram')

describe('forward datagrams', () => {
  it('round-trip; refused when reflected (own role), tampered, or under another key', () => {
    const sealed = sealForward(key, 'controlling', 5n, payload)
    expect(sealed.length).toBe(payload.length + 32)
    expect(openForward(key, 'controlling', sealed)).toEqual({ counter: 5n, payload })
    // The receiver opens only the peer's nonce space: our own datagram coming back does not open.
    expect(openForward(key, 'controlled', sealed)).toBeUndefined()
    const tampered = sealed.slice()
    tampered[tampered.length - 1]! ^= 1
    expect(openForward(key, 'controlling', tampered)).toBeUndefined()
    const counterChanged = sealed.slice()
    counterChanged[15]! ^= 1
    expect(openForward(key, 'controlling', counterChanged)).toBeUndefined()
    expect(openForward(new Uint8Array(32).fill(8), 'controlling', sealed)).toBeUndefined()
  })

  it('never mixes with path probes: distinct magic, each refuses the other', () => {
    expect(Buffer.from(FORWARD_MAGIC).equals(Buffer.from(PROBE_MAGIC))).toBe(false)
    const probe = sealProbe(key, { type: 'request', from: 'controlling', id: '0011223344556677', timestamp: 1 })
    expect(isForwardDatagram(probe)).toBe(false)
    expect(openProbe(key, sealForward(key, 'controlling', 0n, new Uint8Array(58)))).toBeUndefined()
  })

  it('one key per ICE agent pair, the same on both sides', () => {
    const box = new Uint8Array(32).fill(1)
    const l = { ufrag: 'a'.repeat(16), pwd: 'b'.repeat(32) }
    const r = { ufrag: 'c'.repeat(16), pwd: 'd'.repeat(32) }
    expect(forwardKey(box, 'controlling', l, r)).toEqual(forwardKey(box, 'controlled', r, l))
    expect(forwardKey(box, 'controlling', l, r)).not.toEqual(forwardKey(box, 'controlling', l, { ...r, pwd: 'e'.repeat(32) }))
    expect(forwardKey(box, 'controlling', l, r)).not.toEqual(forwardKey(new Uint8Array(32).fill(2), 'controlling', l, r))
  })

  it('the replay window accepts each counter once, late ones within the window, and counts gaps as missing', () => {
    const w = new ReplayWindow()
    expect([0n, 1n, 3n].map((c) => w.accept(c))).toEqual([true, true, true])
    expect(w.missing).toBe(1) // 2 not seen
    expect(w.accept(3n)).toBe(false)
    expect(w.accept(2n)).toBe(true)
    expect(w.missing).toBe(0)
    expect(w.accept(10_000n)).toBe(true)
    expect(w.accept(4n)).toBe(false) // older than the window
    expect(w.accept(9_999n)).toBe(true)
    expect(w.missing).toBe(10_001 - 6)
  })
})

async function udpSocket(): Promise<Socket & { port: number; received: Buffer[] }> {
  const socket = createSocket('udp4') as Socket & { port: number; received: Buffer[] }
  socket.received = []
  socket.on('message', (m) => socket.received.push(m))
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  socket.port = socket.address().port
  closers.push(() => new Promise<void>((resolve) => socket.close(() => resolve())))
  return socket
}

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('Forwarder', () => {
  const portOf = (f: Forwarder) => Number(f.address.split(':')[1])

  it('raw: carries datagrams unchanged both ways, a probe-magic one too; counts foreign ones; pauses when detached', async () => {
    const appA = await udpSocket()
    const appB = await udpSocket()
    const a = await Forwarder.open({ listen: '127.0.0.1:0', intervalMs: 50 })
    const b = await Forwarder.open({ listen: '127.0.0.1:0', to: `127.0.0.1:${appB.port}`, intervalMs: 50 })
    closers.push(() => a.close(), () => b.close())
    expect(a.mode).toBe('raw')
    const wire: Uint8Array[] = []
    a.attach({ send: (d) => (wire.push(d), b.handle(Buffer.from(d)), true) })
    b.attach({ send: (d) => (a.handle(Buffer.from(d)), true) })
    const magic = Buffer.concat([Buffer.from(PROBE_MAGIC), Buffer.from('not a probe, app data')])
    appA.send(magic, portOf(a), '127.0.0.1')
    for (let i = 0; i < 5; i++) appA.send(Buffer.from(`to b ${i}`), portOf(a), '127.0.0.1')
    await until(() => appB.received.length === 6, 5000, "B's app to get 6 datagrams")
    // Unchanged on the wire and at the far app: no framing, no crypto.
    expect(Buffer.from(wire[0]!).equals(magic)).toBe(true)
    expect(appB.received[0]!.equals(magic)).toBe(true)
    expect(appB.received.slice(1).map(String)).toEqual(Array.from({ length: 5 }, (_, i) => `to b ${i}`))
    appB.send(Buffer.from('to a'), portOf(b), '127.0.0.1')
    await until(() => appA.received.length === 1, 5000, "A's app to get the answer")
    expect(String(appA.received[0])).toBe('to a')
    b.noteForeign()
    expect(b.snapshot()).toMatchObject({ mode: 'raw', active: true, foreign: 1, received: { datagrams: 6 }, sent: { datagrams: 1 }, lost: 0, invalid: 0 })
    // A send that finds no usable pair (consent expired) is not counted as sent.
    a.attach({ send: () => false })
    appA.send(Buffer.from('no pair'), portOf(a), '127.0.0.1')
    await until(() => a.snapshot().notConnected === 1, 5000, 'notConnected after a refused send')
    expect(a.snapshot().sent.datagrams).toBe(6)
    a.detach()
    expect(a.active).toBe(false)
  })

  it('sealed: carries datagrams both ways; refuses replays and reflections; counts loss', async () => {
    const appA = await udpSocket()
    const appB = await udpSocket()
    const a = await Forwarder.open({ listen: '127.0.0.1:0', intervalMs: 50, mode: 'sealed' })
    const b = await Forwarder.open({ listen: '127.0.0.1:0', to: `127.0.0.1:${appB.port}`, intervalMs: 50, mode: 'sealed' })
    closers.push(() => a.close(), () => b.close())
    expect(() => a.attach({ send: () => true })).toThrow(/needs a key/)
    const wire: Uint8Array[] = []
    let dropNext = false
    const statsB: ForwardStats[] = []
    b.stats.on((s) => statsB.push(s))
    a.attach({ seal: { key, role: 'controlling' }, send: (d) => (wire.push(d), dropNext ? (dropNext = false) : b.handle(Buffer.from(d)), true) })
    b.attach({ seal: { key, role: 'controlled' }, send: (d) => (a.handle(Buffer.from(d)), true) })

    // Before B knows A's app: A's app speaks first, so A learns where B's datagrams go.
    for (let i = 0; i < 10; i++) appA.send(Buffer.from(`to b ${i}`), portOf(a), '127.0.0.1')
    await until(() => appB.received.length === 10, 5000, "B's app to get 10 datagrams")
    appB.send(Buffer.from('to a'), portOf(b), '127.0.0.1')
    await until(() => appA.received.length === 1, 5000, "A's app to get the answer")
    expect(appB.received.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `to b ${i}`))
    expect(String(appA.received[0])).toBe('to a')
    expect(isForwardDatagram(wire[0]!)).toBe(true)

    // A replayed datagram and A's own datagram reflected back to it are refused, not delivered.
    b.handle(Buffer.from(wire[0]!))
    a.handle(Buffer.from(wire[1]!))
    // One datagram lost on the way: B sees the gap in A's counter.
    dropNext = true
    appA.send(Buffer.from('lost'), portOf(a), '127.0.0.1')
    appA.send(Buffer.from('after'), portOf(a), '127.0.0.1')
    await until(() => appB.received.length === 11, 5000, 'the datagram after the lost one')
    const snapshotB = b.snapshot()
    expect(snapshotB).toMatchObject({ mode: 'sealed', active: true, received: { datagrams: 11 }, sent: { datagrams: 1 }, lost: 1, replayed: 1, app: `127.0.0.1:${appB.port}` })
    expect(a.snapshot()).toMatchObject({ sent: { datagrams: 12 }, received: { datagrams: 1 }, invalid: 1 })
    expect(appB.received.length).toBe(11)
    expect(appA.received.length).toBe(1)
    await until(() => statsB.length >= 2, 5000, 'periodic stats')

    // Detached (the path went away): local datagrams are counted, not sent.
    a.detach()
    appA.send(Buffer.from('nowhere'), portOf(a), '127.0.0.1')
    await until(() => a.snapshot().notConnected === 1, 5000, 'notConnected')
    expect(a.active).toBe(false)
  })

  it('refuses addresses that are not IP:PORT and ports in use, naming them', async () => {
    await expect(Forwarder.open({ listen: 'localhost:1' })).rejects.toThrow(/"localhost:1" is not IP:PORT/)
    const busy = await udpSocket()
    await expect(Forwarder.open({ listen: `127.0.0.1:${busy.port}` })).rejects.toThrow(new RegExp(`cannot listen for forwarding on 127.0.0.1:${busy.port}: .*EADDRINUSE`))
  })
})

const UDP_TOOL = fileURLToPath(new URL('./netns/udp-tool.mjs', import.meta.url))

function tool(args: string[]): CliProcess {
  // Not the CLI, but the same line-wise NDJSON reader; killAll() stops it like the CLI children.
  return new CliProcess(spawn(process.execPath, [UDP_TOOL, ...args], { stdio: 'pipe' }))
}

/** Sends `count` marked datagrams to `port` from a socket bound to `host`: they must never reach an app. */
async function inject(host: string, port: number, count: number): Promise<void> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, host, resolve))
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => socket.send(Buffer.from(`INJECTED ${i}`), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())))
  }
  await new Promise<void>((resolve) => socket.close(() => resolve()))
}

interface ForwardPair {
  pa: CliProcess
  pb: CliProcess
  /** Starts B again with the same key and arguments (after it was killed). */
  restartB: () => CliProcess
  /** A's forward address: what A's app sends to. */
  forwardA: string
  /** B's local ICE candidate on the selected pair: where the peer's datagrams arrive. */
  candidateB: { address: string; port: number }
}

/** signal + two `session --forward` processes; B delivers to appPort; resolves once both forward actively. */
async function forwardPair(appPort: number, extra: string[] = []): Promise<ForwardPair> {
  const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
  const { address } = await server.waitForEvent((e) => e.type === 'listening')
  const backend = `grpc://${address}?insecure=true`
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-forward-'))
  const [ka, kb] = [PrivateKey.generate(), PrivateKey.generate()]
  const [fa, fb] = [join(dir, 'a.key'), join(dir, 'b.key')]
  writeFileSync(fa, ka.toBase64() + '\n', { mode: 0o600 })
  writeFileSync(fb, kb.toBase64() + '\n', { mode: 0o600 })
  const common = ['-b', backend, '--loopback', '--json', '--timeout', '120', '--forward', '127.0.0.1:0', ...extra]
  const pa = startCli(['session', kb.publicKey.toString(), '-k', fa, ...common])
  const argsB = ['session', ka.publicKey.toString(), '-k', fb, ...common, '--forward-to', `127.0.0.1:${appPort}`]
  const pb = startCli(argsB)
  const active = (e: Record<string, any>) => e.type === 'forward' && e.active === true
  const [startA] = await Promise.all([pa.waitForEvent(active, 30_000), pb.waitForEvent(active, 30_000)])
  const pairB = await pb.waitForEvent((e) => e.type === 'pair', 1000)
  return { pa, pb, forwardA: startA.local, candidateB: pairB.local, restartB: () => startCli(argsB) }
}

async function stopBoth({ pa, pb }: ForwardPair): Promise<void> {
  for (const p of [pa, pb]) process.kill(p.child.pid!, 'SIGTERM')
  expect(await Promise.all([pa.exit(), pb.exit()])).toEqual([143, 143])
  // The final counters come before 'closed'.
  expect([...pb.events].reverse().find((e) => e.type === 'forward')).toMatchObject({ active: false })
  expect(pb.events.at(-1)).toMatchObject({ type: 'state', state: 'closed' })
}

describe('session --forward (two processes on loopback)', () => {
  it('raw: 100,000 datagrams of 1-1,400 random bytes arrive byte-exact with < 1 % loss, the probe-magic one too; injected ones never', async () => {
    const count = 100_000
    const seed = 1234
    const receiver = tool(['recv-verify', '127.0.0.1:0', String(count), String(seed)])
    const { port: appPort } = await receiver.waitForEvent((e) => e.type === 'listening', 30_000)
    const pair = await forwardPair(appPort)
    // Before the load: datagrams to B's ICE socket from another socket of this host and from another
    // loopback address (a stranger pretending to be a peer) are counted as foreign and never delivered.
    await inject('127.0.0.1', pair.candidateB.port, 50)
    await inject('127.0.0.2', pair.candidateB.port, 50)
    await pair.pb.waitForEvent((e) => e.type === 'forward' && e.foreign >= 100, 5000)
    // Offered rate: CUNICU_FORWARD_RATE, 10,000/s by default (the path's capacity is in BENCHMARKS.md).
    const rate = process.env.CUNICU_FORWARD_RATE ?? '10000'
    const sender = tool(['send-random', pair.forwardA, String(count), rate, String(seed)])
    const sent = await sender.waitForEvent((e) => e.type === 'sent', 60_000)
    const received = await withTimeout(receiver.waitForEvent((e) => e.type === 'received', 60_000), 61_000, 'the receiver')
    expect(sent.datagrams).toBe(count)
    const loss = 1 - received.exact / count
    console.log(
      `[forward raw loopback] ${count} datagrams of 1-1400 B at ${rate}/s offered: ${received.exact} byte-exact, ${received.corrupt} other, loss ${(loss * 100).toFixed(2)} %, ` +
        `${received.perSecond} datagrams/s, ${(received.bitsPerSecond / 1e6).toFixed(1)} Mbit/s`,
    )
    // Nothing arrived that was not sent (the 100 injected ones included), and nearly all of it did.
    expect(received.corrupt).toBe(0)
    expect(received.firstArrived).toBe(true)
    expect(loss).toBeLessThan(0.01)
    const report = await pair.pb.waitForEvent((e) => e.type === 'forward' && e.received.datagrams >= received.exact, 5000)
    expect(report).toMatchObject({ mode: 'raw', active: true, invalid: 0, replayed: 0, app: `127.0.0.1:${appPort}` })
    expect(report.foreign).toBeGreaterThanOrEqual(100)
    await stopBoth(pair)
  }, 180_000)

  it('follows the path across an ICE restart: the peer killed and started again, forwarding resumes on the new pair', async () => {
    const app = await udpSocket()
    const pair = await forwardPair(app.port)
    const [host, port] = [pair.forwardA.split(':')[0]!, Number(pair.forwardA.split(':')[1])]
    const sender = createSocket('udp4')
    closers.push(() => new Promise<void>((resolve) => sender.close(() => resolve())))
    const send = (text: string) => new Promise<void>((resolve, reject) => sender.send(Buffer.from(text), port, host, (e) => (e ? reject(e) : resolve())))
    await send('before')
    await until(() => app.received.some((m) => String(m) === 'before'), 5000, 'the first datagram')
    pair.pb.child.kill('SIGKILL')
    await pair.pb.exit()
    const pb2 = pair.restartB()
    // A sees B's new credentials, restarts its agent, and attaches the forwarder to the new pair.
    const restarted = await pair.pa.waitForEvent((e) => e.type === 'state' && e.state === 'restarting', 20_000)
    await pair.pa.waitForEvent((e) => e.type === 'forward' && e.active === true && Date.parse(e.at) >= Date.parse(restarted.at), 20_000)
    await pb2.waitForEvent((e) => e.type === 'forward' && e.active === true, 20_000)
    const pairs = pair.pa.events.filter((e) => e.type === 'pair')
    expect(pairs.length).toBeGreaterThanOrEqual(2)
    // The new B listens on the same app address; datagrams flow again (bounded retries: the first may race).
    for (let i = 0; i < 50 && !app.received.some((m) => String(m).startsWith('after')); i++) {
      await send(`after ${i}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(app.received.some((m) => String(m).startsWith('after'))).toBe(true)
  }, 90_000)

  it('sealed (--seal): 10,000 datagrams with < 1 % loss and loss reported; injected ones never reach the app', async () => {
    const receiver = tool(['recv', '127.0.0.1:0', '10000'])
    const { port: appPort } = await receiver.waitForEvent((e) => e.type === 'listening')
    const pair = await forwardPair(appPort, ['--seal'])
    await inject('127.0.0.1', pair.candidateB.port, 20)
    await inject('127.0.0.2', pair.candidateB.port, 20)
    await pair.pb.waitForEvent((e) => e.type === 'forward' && e.foreign >= 40, 5000)
    const rate = process.env.CUNICU_FORWARD_RATE ?? '2000'
    const sender = tool(['send', pair.forwardA, '10000', '1000', rate])
    const sent = await sender.waitForEvent((e) => e.type === 'sent', 30_000)
    const received = await withTimeout(receiver.waitForEvent((e) => e.type === 'received', 30_000), 31_000, 'the receiver')
    expect(sent.datagrams).toBe(10_000)
    const loss = 1 - received.distinct / 10_000
    console.log(`[forward sealed loopback] 10000 × 1000 B at ${rate}/s: received ${received.distinct}, loss ${(loss * 100).toFixed(2)} %, ${(received.bitsPerSecond / 1e6).toFixed(1)} Mbit/s`)
    expect(loss).toBeLessThan(0.01)
    // Every datagram the app got was one of the 10,000 (none of the injected ones: they carry no sequence).
    expect(received.datagrams).toBe(received.distinct)
    const report = await pair.pb.waitForEvent((e) => e.type === 'forward' && e.received.datagrams >= received.datagrams, 5000)
    expect(report).toMatchObject({ mode: 'sealed', active: true, replayed: 0, app: `127.0.0.1:${appPort}` })
    expect(report.lost).toBe(10_000 - received.distinct)
    await stopBoth(pair)
  }, 90_000)
})
