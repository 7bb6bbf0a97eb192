// The CLI in the test bed: `cunicu-ts signal` (with coturn's secret as a relay) in the public namespace and
// `cunicu-ts session` in each peer namespace, as users would run them on three machines.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PrivateKey } from '../../src/core/keys.js'
import { CliProcess, RUN } from '../helpers/cli.js'
import type { NetnsBed } from './bed.js'

const cliEnv = (): NodeJS.ProcessEnv => ({ ...process.env, NODE_ENV: 'production', CUNICU_PRIVATE_KEY: '', CUNICU_BACKEND: '', CUNICU_KEY_FILE: '' })

export function cliIn(bed: NetnsBed, ns: string, args: string[]): CliProcess {
  return new CliProcess(bed.spawn(ns, [process.execPath, RUN, ...args], cliEnv()))
}

export interface Peer {
  key: PrivateKey
  file: string
}

export function makePeers(): { a: Peer; b: Peer } {
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-nat-'))
  const make = (name: string): Peer => {
    const key = PrivateKey.generate()
    const file = join(dir, `${name}.key`)
    writeFileSync(file, key.toBase64() + '\n', { mode: 0o600 })
    return { key, file }
  }
  return { a: make('a'), b: make('b') }
}

/** Starts `signal` on the public address with the given relays; resolves with the backend URL peers use. */
export async function startSignal(bed: NetnsBed, relays: string[]): Promise<{ process: CliProcess; backend: string }> {
  const args = ['signal', '--listen', `${bed.addresses.publicIp}:0`, '--json', ...relays.flatMap((r) => ['--relay', r])]
  const server = cliIn(bed, bed.ns.pub, args)
  const { address } = await server.waitForEvent((e) => e.type === 'listening', 20_000)
  return { process: server, backend: `grpc://${address}?insecure=true` }
}

export function startSession(bed: NetnsBed, ns: string, self: Peer, other: Peer, backend: string, extra: string[] = []): CliProcess {
  return cliIn(bed, ns, [
    'session',
    other.key.publicKey.toString(),
    '-k',
    self.file,
    '-b',
    backend,
    '--interface',
    'eth0',
    '--stun',
    `stun:${bed.addresses.publicIp}:3478`,
    '--json',
    ...extra,
  ])
}

export type Pair = { local: { type: string; address: string; port: number; relayProtocol?: string }; remote: { type: string; address: string; port: number } }

/** The last selected pair a session reported. */
export function lastPair(p: CliProcess): Pair | undefined {
  return p.events.filter((e) => e.type === 'pair').at(-1) as Pair | undefined
}

export const describePair = (pair: Pair | undefined): string =>
  pair ? `${pair.local.type} ${pair.local.address}:${pair.local.port} ⇄ ${pair.remote.type} ${pair.remote.address}:${pair.remote.port}` : 'none'
