// Issue 10, "peer departure", with two `session` processes as users run them: a peer stopped cleanly
// (SIGINT) says goodbye and the other side leaves 'connected' within 1 s to wait for it; a peer killed with
// SIGKILL says nothing and the other side reports 'disconnected' within 6 s of the kill (5 s of silence on
// the pair); both times the two reconnect, verified, when the stopped peer starts again.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, startCli, type CliProcess } from './helpers/cli.js'
import { preparePython, startPython, type PythonEnv } from './helpers/interop.js'

afterEach(killAll)
let py: PythonEnv | undefined
afterAll(() => py?.cleanup())

function keyFile(dir: string, key: PrivateKey): string {
  const file = join(dir, `${key.publicKey.short.replace(/\//g, '_')}.key`)
  writeFileSync(file, key.toBase64() + '\n', { mode: 0o600 })
  return file
}

/** Events of `p` after the first `from`. */
const since = (p: CliProcess, from: number) => p.events.slice(from)

/** The first event after the first `from` that matches (events are parsed afresh on every read). */
function waitAfter(p: CliProcess, from: number, match: (e: Record<string, any>) => boolean, timeoutMs: number) {
  return p.waitForEvent((e) => match(e) && since(p, from).some((later) => JSON.stringify(later) === JSON.stringify(e)), timeoutMs)
}

describe('peer departure between two session processes', () => {
  it('clean stop: the other side leaves connected within 1 s and waits; kill -9: disconnected within 6 s; both times they reconnect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-depart-'))
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
    const { address } = await server.waitForEvent((e) => e.type === 'listening')
    const backend = `grpc://${address}?insecure=true`
    const a = PrivateKey.generate()
    const b = PrivateKey.generate()
    const [fileA, fileB] = [keyFile(dir, a), keyFile(dir, b)]
    const session = (file: string, peer: PrivateKey) => startCli(['session', peer.publicKey.toString(), '-k', file, '-b', backend, '--loopback', '--json'])
    const verified = (p: CliProcess, from = 0) => waitAfter(p, from, (e) => e.type === 'verified', 20_000)

    const pa = session(fileA, b)
    let pb = session(fileB, a)
    await Promise.all([verified(pa), verified(pb)])

    // 1. Clean stop (Ctrl-C): the goodbye over the path.
    let mark = pa.events.length
    let stoppedAt = Date.now()
    pb.child.kill('SIGINT')
    const left = await waitAfter(pa, mark, (e) => e.type === 'state' && e.state !== 'connected', 10_000)
    const cleanMs = Date.parse(left.at) - stoppedAt
    await pb.exit()
    expect(pb.events.at(-1)).toMatchObject({ type: 'state', state: 'closed' })
    expect(left).toMatchObject({ state: 'idle', previous: 'connected', reason: 'the peer stopped (it said goodbye on the path): waiting for the peer' })
    expect(cleanMs).toBeLessThanOrEqual(1000)

    mark = pa.events.length
    pb = session(fileB, a)
    await Promise.all([verified(pa, mark), verified(pb)])

    // 2. kill -9: nothing is said; the silence on the pair tells.
    mark = pa.events.length
    stoppedAt = Date.now()
    process.kill(pb.child.pid!, 'SIGKILL')
    await pb.exit()
    const disconnected = await waitAfter(pa, mark, (e) => e.type === 'state' && e.state === 'disconnected', 15_000)
    const killMs = Date.parse(disconnected.at) - stoppedAt
    // Nothing in between: the state went from connected straight to disconnected.
    expect(since(pa, mark).filter((e) => e.type === 'state')[0]).toEqual(disconnected)
    expect(disconnected).toMatchObject({ previous: 'connected', reason: expect.stringMatching(/^nothing heard from the peer on the path for 5(\.\d)? s$/) })
    expect(killMs).toBeGreaterThanOrEqual(4000)
    expect(killMs).toBeLessThanOrEqual(6000)

    // The killed peer comes back with new credentials: the survivor restarts its agent and both verify.
    mark = pa.events.length
    pb = session(fileB, a)
    await Promise.all([verified(pa, mark), verified(pb)])
    expect(since(pa, mark).some((e) => e.type === 'state' && e.state === 'restarting')).toBe(true)
    console.log(`departure: clean stop noticed after ${cleanMs} ms, kill -9 shown as disconnected after ${killMs} ms`)

    for (const p of [pa, pb, server]) p.child.kill('SIGTERM')
    await Promise.all([pa.exit(), pb.exit(), server.exit()])
  }, 120_000)

  it('a live peer that is not cunicu-ts (aioice: no probes, no data) stays connected past the 5 s silence threshold', async () => {
    py = preparePython()
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-depart-'))
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
    const { address } = await server.waitForEvent((e) => e.type === 'listening')
    const ours = PrivateKey.generate()
    const theirs = PrivateKey.generate()
    // aioice only answers STUN (and sends its own consent checks every ~5 s): our 1 s keepalive is what
    // keeps the pair audible; without it this peer would look silent for up to 6 s at a time.
    const peer = startPython(py, 'peer.py', ['session', '--server', address, '--key', theirs.toBase64(), '--peer', ours.publicKey.toString(), '--timeout', '30', '--linger', '12'])
    await peer.waitForEvent((e) => e.type === 'subscribed')
    const ts = startCli(['session', theirs.publicKey.toString(), '-k', keyFile(dir, ours), '-b', `grpc://${address}?insecure=true`, '--loopback', '--json', '--timeout', '10'])
    const context = () => `cunicu-ts:\n${ts.lines.join('\n')}\n${ts.stderr}\npython:\n${peer.lines.join('\n')}\n${peer.stderr}`
    const connected = await ts.waitForEvent((e) => e.type === 'state' && e.state === 'connected', 15_000)
    expect(await ts.exit(20_000), context()).toBe(0)
    const states = ts.events.filter((e) => e.type === 'state' && Date.parse(e.at) >= Date.parse(connected.at)).map((e) => e.state)
    // Connected for 7+ s (the 10 s timeout less the start-up), then closed by the timeout: never disconnected.
    expect(Date.parse(ts.events.find((e) => e.type === 'state' && e.state === 'closed')!.at) - Date.parse(connected.at), context()).toBeGreaterThan(6000)
    expect(states, context()).toEqual(['connected', 'closed'])
    server.child.kill('SIGTERM')
    await server.exit()
  }, 60_000)
})
