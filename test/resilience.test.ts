// The signaling path through its worst minutes: a server killed with -9 and restarted, graceful shutdown,
// and no private key material in anything a full run prints.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, runCli, startCli, type CliProcess } from './helpers/cli.js'
import { unusedPort } from './helpers/net.js'

afterEach(killAll)

const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-resilience-'))
let n = 0
function keyFile(key = PrivateKey.generate()): { key: PrivateKey; file: string } {
  const file = join(dir, `k${n++}.key`)
  writeFileSync(file, key.toBase64() + '\n', { mode: 0o600 })
  return { key, file }
}

async function signalOn(port: number, extra: string[] = []): Promise<CliProcess> {
  const server = startCli(['signal', '--listen', `127.0.0.1:${port}`, '--json', ...extra])
  await server.waitForEvent((e) => e.type === 'listening')
  return server
}

const connected = (e: Record<string, any>) => e.type === 'state' && e.state === 'connected'

describe('server killed with -9 and restarted on the same port', () => {
  it('a session whose handshake was cut still connects, and subscribe gets every message published after the restart', async () => {
    const port = await unusedPort()
    const backend = `grpc://127.0.0.1:${port}?insecure=true`
    const a = keyFile()
    const b = keyFile()
    const watcher = keyFile()
    const server1 = await signalOn(port)

    // A is mid-handshake: subscribed, its credentials (need_creds) sent into a server about to die.
    const pa = startCli(['session', b.key.publicKey.toString(), '-k', a.file, '-b', backend, '--loopback', '--exit-on-connected', '--timeout', '60', '--json'])
    await pa.waitForEvent((e) => e.type === 'envelope' && e.direction === 'out' && e.kind === 'credentials')
    const sub = startCli(['subscribe', '-k', watcher.file, '-b', backend, '--count', '5', '--timeout', '60', '--json'])
    await sub.waitForEvent((e) => e.type === 'subscribed')

    process.kill(server1.child.pid!, 'SIGKILL')
    await server1.exit()
    await pa.waitForEvent((e) => e.type === 'backend' && e.status.state === 'reconnecting', 10_000)
    await sub.waitForEvent((e) => e.type === 'backend' && e.status.state === 'reconnecting', 10_000)
    await signalOn(port)

    // Both clients resubscribe on their own (the sync envelope marks them live again).
    await pa.waitForEvent((e) => e.type === 'backend' && e.status.state === 'connected', 15_000)
    await sub.waitForEvent((e) => e.type === 'backend' && e.status.state === 'connected', 15_000)

    const pb = startCli(['session', a.key.publicKey.toString(), '-k', b.file, '-b', backend, '--loopback', '--exit-on-connected', '--timeout', '60', '--json'])
    const lines = Array.from({ length: 5 }, (_, i) => JSON.stringify({ candidate: { port: 1000 + i } })).join('\n') + '\n'
    const pub = await runCli(['publish', '-k', a.file, '-b', backend, watcher.key.publicKey.toString()], { input: lines })
    expect(pub.code).toBe(0)

    expect(await pa.exit(60_000)).toBe(0)
    expect(await pb.exit(60_000)).toBe(0)
    expect(pa.events.some(connected) && pb.events.some(connected)).toBe(true)
    expect(await sub.exit(20_000)).toBe(0)
    expect(sub.events.filter((e) => e.type === 'message').map((e) => e.message.candidate.port)).toEqual([1000, 1001, 1002, 1003, 1004])
  }, 120_000)
})

describe('graceful shutdown', () => {
  it('SIGTERM drains, ends the streams (clients start reconnecting) and exits 143 without waiting for the clients to leave', async () => {
    const port = await unusedPort()
    const server = await signalOn(port)
    const sub = startCli(['subscribe', '-k', keyFile().file, '-b', `grpc://127.0.0.1:${port}?insecure=true`, '--timeout', '30', '--json'])
    await sub.waitForEvent((e) => e.type === 'subscribed')
    process.kill(server.child.pid!, 'SIGTERM')
    expect(await server.exit(10_000)).toBe(143)
    // The server ended the stream itself: its subscriber is still running, it did not wait for it to leave.
    expect(sub.child.exitCode).toBeNull()
    expect(server.events.at(-1)).toMatchObject({ type: 'stopped' })
    await sub.waitForEvent((e) => e.type === 'backend' && e.status.state === 'reconnecting', 5_000)
    process.kill(sub.child.pid!, 'SIGINT')
    expect(await sub.exit(10_000)).toBe(130)
  }, 30_000)

  it('a client that stopped answering does not keep a stopped server alive: exit 130 after the drain deadline', async () => {
    const port = await unusedPort()
    const server = await signalOn(port, ['--drain-timeout', '2'])
    const sub = startCli(['subscribe', '-k', keyFile().file, '-b', `grpc://127.0.0.1:${port}?insecure=true`, '--json'])
    await sub.waitForEvent((e) => e.type === 'subscribed')
    process.kill(sub.child.pid!, 'SIGSTOP') // its HTTP/2 connection stays open, and grpc-js keeps it
    try {
      const started = Date.now()
      process.kill(server.child.pid!, 'SIGINT')
      expect(await server.exit(15_000)).toBe(130)
      expect(server.events.at(-1)).toMatchObject({ type: 'stopped' })
      // The drain's 2 s deadline (--drain-timeout), then at most STOP_LINGER_MS (1 s) for what lingers.
      expect(Date.now() - started).toBeLessThan(6_000)
    } finally {
      process.kill(sub.child.pid!, 'SIGCONT')
    }
  })

  it('a second signal exits at once, with its own code', async () => {
    const port = await unusedPort()
    const server = await signalOn(port)
    // A client that cannot answer (stopped) keeps its connection open: the graceful stop then waits out its
    // 2 s grace for it, which leaves time to send the second signal while the first stop is still running.
    const sub = startCli(['subscribe', '-k', keyFile().file, '-b', `grpc://127.0.0.1:${port}?insecure=true`, '--json'])
    await sub.waitForEvent((e) => e.type === 'subscribed')
    process.kill(sub.child.pid!, 'SIGSTOP')
    try {
      process.kill(server.child.pid!, 'SIGINT') // alone, this would end with 130 after the grace
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(server.child.exitCode).toBeNull() // still stopping gracefully
      const second = Date.now()
      process.kill(server.child.pid!, 'SIGTERM')
      expect(await server.exit(10_000)).toBe(143)
      expect(Date.now() - second).toBeLessThan(1_000)
      expect(server.events.some((e) => e.type === 'stopped')).toBe(false) // it did not finish the graceful stop
    } finally {
      process.kill(sub.child.pid!, 'SIGCONT')
    }
  })
})

describe('private keys never leak', () => {
  it('no output of a full run (keygen -o, pubkey, signal, subscribe, publish, two sessions, errors) contains private key material', async () => {
    const out: string[] = []
    const a = join(dir, 'leak-a.key')
    const b = join(dir, 'leak-b.key')
    for (const file of [a, b]) {
      const r = await runCli(['keygen', '-o', file])
      expect(r.code).toBe(0)
      out.push(r.stdout, r.stderr)
    }
    const { readFileSync } = await import('node:fs')
    const keyA = PrivateKey.parse(readFileSync(a, 'utf8'))
    const keyB = PrivateKey.parse(readFileSync(b, 'utf8'))
    for (const file of [a, b]) {
      const r = await runCli(['pubkey'], { input: readFileSync(file, 'utf8') })
      out.push(r.stdout, r.stderr)
    }
    const server = await signalOn(0)
    const backend = `grpc://${server.events[0]!.address}?insecure=true`
    const sub = startCli(['subscribe', '-k', b, '-b', backend, '--count', '1', '--timeout', '30', '--json'])
    await sub.waitForEvent((e) => e.type === 'subscribed')
    const pub = await runCli(['publish', '-k', a, '-b', backend, keyB.publicKey.toString(), '--message', '{"credentials":{"ufrag":"x"}}'])
    out.push(pub.stdout, pub.stderr)
    await sub.exit()
    const pa = startCli(['session', keyB.publicKey.toString(), '-k', a, '-b', backend, '--loopback', '--exit-on-connected', '--timeout', '30', '--json'])
    const pb = startCli(['session', keyA.publicKey.toString(), '-k', b, '-b', backend, '--loopback', '--exit-on-connected', '--timeout', '30'])
    expect(await pa.exit(40_000)).toBe(0)
    expect(await pb.exit(40_000)).toBe(0)
    // Error paths: bad flags, unreachable backend, self as peer, loose permissions.
    for (const args of [
      ['session', keyA.publicKey.toString(), '-k', a, '-b', backend],
      ['subscribe', '-k', a, '-b', 'grpc://127.0.0.1:9?insecure=true'],
      ['publish', '-k', a, '-b', backend, 'bad-key', '--message', '{}'],
    ]) {
      const r = await runCli(args, { timeoutMs: 20_000 })
      out.push(r.stdout, r.stderr)
    }
    process.kill(server.child.pid!, 'SIGTERM')
    expect(await server.exit()).toBe(143)
    out.push(...[server, sub, pa, pb].flatMap((p) => [p.lines.join('\n'), p.stderr]))

    const all = out.join('\n')
    expect(all).toContain(keyA.publicKey.toString()) // the run did print keys: the public ones
    for (const key of [keyA, keyB]) {
      const raw = Buffer.from(key.toBase64(), 'base64')
      for (const form of [key.toBase64(), key.toBase64().slice(0, 20), raw.toString('hex'), raw.toString('base64url')]) {
        expect(all.includes(form), `private key material (${form.slice(0, 6)}…) in the output`).toBe(false)
      }
    }
  }, 120_000)
})
