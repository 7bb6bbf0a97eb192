// Every command stopped by a signal says so in its exit code, as shells do: 130 after SIGINT (Ctrl-C),
// 143 after SIGTERM, after its graceful stop (the last NDJSON lines still come out).
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, startCli, type CliProcess } from './helpers/cli.js'

afterEach(killAll)

const CODES = { SIGINT: 130, SIGTERM: 143 } as const
const key = () => PrivateKey.generate()

async function signalServer(): Promise<{ server: CliProcess; backend: string }> {
  const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
  const { address } = await server.waitForEvent((e) => e.type === 'listening')
  return { server, backend: `grpc://${address}?insecure=true` }
}

/**
 * Resolves once the process sits waiting (sleeping, no CPU time used over several samples): `pubkey` prints
 * nothing while it waits on stdin, and Node catches SIGINT/SIGTERM from its start, so /proc's SigCgt cannot tell.
 */
async function waiting(pid: number): Promise<void> {
  const sample = () => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')
    return { state: fields[0], cpu: Number(fields[11]) + Number(fields[12]) }
  }
  let last = sample()
  let idle = 0
  for (let i = 0; i < 300 && idle < 4; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    const now = sample()
    idle = now.state === 'S' && now.cpu === last.cpu ? idle + 1 : 0
    last = now
  }
  if (idle < 4) throw new Error(`process ${pid} never settled into waiting`)
}

/** Starts the command, waits until it is doing its work, stops it with `signal`, returns the exit code. */
async function stopWith(signal: keyof typeof CODES, p: CliProcess, ready: () => Promise<unknown>): Promise<number | null> {
  await ready()
  process.kill(p.child.pid!, signal)
  return p.exit(20_000)
}

describe.each(['SIGINT', 'SIGTERM'] as const)('stopped by %s', (signal) => {
  const code = CODES[signal]

  it(`signal exits ${code} after its 'stopped' line`, async () => {
    const { server } = await signalServer()
    expect(await stopWith(signal, server, async () => {})).toBe(code)
    expect(server.events.at(-1)).toMatchObject({ type: 'stopped' })
  })

  it(`subscribe exits ${code}`, async () => {
    const { backend } = await signalServer()
    const sub = startCli(['subscribe', '-b', backend, '--json'], { env: { CUNICU_PRIVATE_KEY: key().toBase64() } })
    expect(await stopWith(signal, sub, () => sub.waitForEvent((e) => e.type === 'subscribed'))).toBe(code)
  })

  it(`session exits ${code} after its 'closed' state`, async () => {
    const { backend } = await signalServer()
    const p = startCli(['session', key().publicKey.toString(), '-b', backend, '--loopback', '--json'], { env: { CUNICU_PRIVATE_KEY: key().toBase64() } })
    expect(await stopWith(signal, p, () => p.waitForEvent((e) => e.type === 'subscribed'))).toBe(code)
    expect(p.events.at(-1)).toMatchObject({ type: 'state', state: 'closed' })
  })

  it(`demo exits ${code}, not with its failure code`, async () => {
    const p = startCli(['demo', '--json'])
    expect(await stopWith(signal, p, () => p.waitForEvent((e) => e.type === 'server'))).toBe(code)
    expect(p.stderr).not.toMatch(/demo failed/)
  })

  it(`publish reading stdin exits ${code}`, async () => {
    const { backend } = await signalServer()
    const p = startCli(['publish', key().publicKey.toString(), '-b', backend, '--json'], { env: { CUNICU_PRIVATE_KEY: key().toBase64() } })
    p.child.stdin.write('{"credentials":{"ufrag":"one"}}\n') // stdin stays open: it waits for more
    expect(await stopWith(signal, p, () => p.waitForEvent((e) => e.type === 'published'))).toBe(code)
    expect(p.events.at(-1)).toMatchObject({ type: 'summary', published: 1 })
  })

  it(`pubkey waiting on stdin exits ${code}, with and without oclif`, async () => {
    for (const args of [['pubkey'], ['pubkey', '--json']]) {
      const p = startCli(args)
      expect(await stopWith(signal, p, () => waiting(p.child.pid!))).toBe(code)
    }
  })
})
