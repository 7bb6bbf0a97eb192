// Authenticated subscriptions (`signal --require-auth`): only the holder of a key's private key may
// subscribe to it; everyone else gets PERMISSION_DENIED with a message saying why.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Metadata, status, type ServiceError } from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import {
  AUTH_KEY_TAG_PREFIX,
  AUTH_METADATA_KEY,
  AuthProofError,
  authKeyFromTag,
  openSubscribeProof,
  PROOF_LENGTH,
  sealSubscribeProof,
} from '../src/core/auth-proof.js'
import { BackendError, openBackend, type Backend, type BackendOptions, type BackendStatus, type ReceivedMessage } from '../src/core/backend.js'
import { PrivateKey } from '../src/core/keys.js'
import { ReplayGuard } from '../src/core/server/replay-guard.js'
import { SignalingServer, type SignalingServerOptions } from '../src/core/server/signaling-server.js'
import type { SignalingClient } from '../src/gen/signaling/signaling.js'
import { Message } from '../src/gen/signaling/signaling.js'
import { envelopeTo, publish, rawClient, subscribe, wire } from './helpers/signaling.js'
import { killAll, runCli, startCli } from './helpers/cli.js'
import { deferred, withTimeout } from './helpers/wait.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await killAll()
})

const SKEW_MS = 30_000

async function startAuthServer(options: Partial<SignalingServerOptions> & { now?: () => number } = {}) {
  const serverKey = PrivateKey.generate()
  const { now, ...rest } = options
  const server = await SignalingServer.start({ listen: '127.0.0.1:0', auth: { serverKey, maxSkewMs: SKEW_MS, ...(now ? { now } : {}) }, ...rest })
  closers.push(() => server.close(200))
  const client = rawClient(server.address)
  closers.push(() => client.close())
  return { server, client, serverKey }
}

function proofMetadata(proof: string): Metadata {
  const metadata = new Metadata()
  metadata.set(AUTH_METADATA_KEY, proof)
  return metadata
}

async function expectDenied(client: SignalingClient, key: Uint8Array, metadata: Metadata, detail: RegExp): Promise<void> {
  const sub = subscribe(client, key, metadata)
  const err: ServiceError = await withTimeout(sub.failed, 5000, 'the refusal')
  expect(err.code, `${err.code} ${err.details}`).toBe(status.PERMISSION_DENIED)
  expect(err.details).toMatch(detail)
}

function getBuildInfoTag(client: SignalingClient): Promise<string> {
  return new Promise((resolve, reject) => client.getBuildInfo({}, (err, info) => (err ? reject(err) : resolve(info.tag))))
}

describe('subscribe proof (auth-proof.ts)', () => {
  const owner = PrivateKey.generate()
  const server = PrivateKey.generate()

  it('opens for the owner, with the sealed timestamp and nonce', () => {
    const nonce = new Uint8Array(24).fill(7)
    const proof = sealSubscribeProof(owner, server.publicKey, 1_700_000_000_123, nonce)
    expect(Buffer.from(proof, 'base64').length).toBe(PROOF_LENGTH)
    expect(openSubscribeProof(proof, owner.publicKey.bytes, server)).toEqual({ timestampMs: 1_700_000_000_123, nonce })
  })

  it.each([
    ['missing', undefined, 'missing'],
    ['empty', '', 'missing'],
    ['not base64 of the right length', 'aGVsbG8=', 'malformed'],
    ['base64 with junk', sealSubscribeProof(owner, server.publicKey) + '!!', 'malformed'],
  ] as const)('refuses a %s proof', (_what, proof, reason) => {
    expect(() => openSubscribeProof(proof, owner.publicKey.bytes, server)).toThrow(expect.objectContaining({ reason }) as AuthProofError)
  })

  it('refuses a proof sealed by another key, to another server, or for a low-order key', () => {
    const other = PrivateKey.generate()
    // Sealed by `other` while subscribing to owner's key: opens with (server, owner) only if owner sealed it.
    expect(() => openSubscribeProof(sealSubscribeProof(other, server.publicKey), owner.publicKey.bytes, server)).toThrow(/not sealed by the subscribed key/)
    expect(() => openSubscribeProof(sealSubscribeProof(owner, other.publicKey), owner.publicKey.bytes, server)).toThrow(/not sealed by the subscribed key/)
    expect(() => openSubscribeProof(sealSubscribeProof(owner, server.publicKey), new Uint8Array(32), server)).toThrow(/not a usable Curve25519/)
  })

  it('reads the server key from a GetBuildInfo tag', () => {
    expect(authKeyFromTag(AUTH_KEY_TAG_PREFIX + server.publicKey.toString())?.toString()).toBe(server.publicKey.toString())
    expect(authKeyFromTag('v0.5.0')).toBeUndefined()
    expect(authKeyFromTag(AUTH_KEY_TAG_PREFIX + 'garbage')).toBeUndefined()
  })
})

describe('ReplayGuard (injected clock)', () => {
  const nonce = (n: number): Uint8Array => new Uint8Array(24).fill(n)

  it('accepts a nonce once while fresh, then refuses it as a replay', () => {
    let now = 1_000_000
    const guard = new ReplayGuard(SKEW_MS, 10, () => now)
    expect(guard.admit(now, nonce(1))).toBe('fresh')
    expect(guard.admit(now, nonce(1))).toBe('replayed')
    now += SKEW_MS
    expect(guard.admit(now - SKEW_MS, nonce(1))).toBe('replayed')
    now += 1
    // Past the skew the timestamp alone refuses it, so the nonce no longer needs remembering.
    expect(guard.admit(now - SKEW_MS - 1, nonce(1))).toBe('too-old')
    expect(guard.admit(now + SKEW_MS + 1, nonce(2))).toBe('too-new')
    expect(guard.admit(now, nonce(2))).toBe('fresh')
    expect(guard.size).toBe(1)
  })

  it('is bounded: past capacity it refuses new proofs until old ones expire', () => {
    let now = 5_000_000
    const guard = new ReplayGuard(SKEW_MS, 3, () => now)
    for (let i = 0; i < 3; i++) expect(guard.admit(now, nonce(i))).toBe('fresh')
    expect(guard.admit(now, nonce(9))).toBe('full')
    now += SKEW_MS + 1
    expect(guard.admit(now, nonce(9))).toBe('fresh')
    expect(guard.size).toBe(1)
  })
})

describe('signal --require-auth', () => {
  it('announces its key in GetBuildInfo; a server without it announces none', async () => {
    const { client, serverKey, server } = await startAuthServer()
    expect(await getBuildInfoTag(client)).toBe(`auth-key:${serverKey.publicKey}`)
    expect(server.authKey?.toString()).toBe(serverKey.publicKey.toString())
    const plain = await SignalingServer.start({ listen: '127.0.0.1:0' })
    closers.push(() => plain.close(200))
    const plainClient = rawClient(plain.address)
    closers.push(() => plainClient.close())
    expect(await getBuildInfoTag(plainClient)).toBe('')
    expect(plain.authKey).toBeUndefined()
  })

  it('lets the owner subscribe and receive; publishing needs no proof', async () => {
    const { client, serverKey, server } = await startAuthServer()
    const owner = PrivateKey.generate()
    const sub = subscribe(client, owner.publicKey.bytes, proofMetadata(sealSubscribeProof(owner, serverKey.publicKey)))
    await sub.synced
    const sent = envelopeTo(owner.publicKey.bytes)
    await publish(client, sent)
    expect((await sub.waitFor(1)).map(wire)).toEqual([wire(sent)])
    expect(server.stats()).toMatchObject({ subscribers: 1, refusedSubscribes: 0 })
    sub.call.cancel()
  })

  it('refuses everyone else with PERMISSION_DENIED', async () => {
    const { client, serverKey, server } = await startAuthServer()
    const owner = PrivateKey.generate()
    const thief = PrivateKey.generate()
    const key = owner.publicKey.bytes
    await expectDenied(client, key, new Metadata(), /no cunicu-auth metadata.*requires proof/)
    // The thief's own valid proof, presented for the owner's key.
    await expectDenied(client, key, proofMetadata(sealSubscribeProof(thief, serverKey.publicKey)), /not sealed by the subscribed key/)
    // The owner's proof, but sealed to some other server's key.
    await expectDenied(client, key, proofMetadata(sealSubscribeProof(owner, PrivateKey.generate().publicKey)), /not sealed by the subscribed key/)
    await expectDenied(client, key, proofMetadata('not-a-proof'), /not base64 of \d+ bytes/)
    // Too old and too new: the clocks of client and server disagree by more than the skew.
    await expectDenied(client, key, proofMetadata(sealSubscribeProof(owner, serverKey.publicKey, Date.now() - SKEW_MS - 5000)), /older than the allowed skew of 30 s \(signal --auth-skew\)/)
    await expectDenied(client, key, proofMetadata(sealSubscribeProof(owner, serverKey.publicKey, Date.now() + SKEW_MS + 5000)), /ahead of the server's clock/)
    expect(server.stats()).toMatchObject({ subscribers: 0, refusedSubscribes: 6 })
  })

  it('refuses a proof used a second time, even while it is fresh', async () => {
    const { client, serverKey } = await startAuthServer()
    const owner = PrivateKey.generate()
    const proof = sealSubscribeProof(owner, serverKey.publicKey)
    const first = subscribe(client, owner.publicKey.bytes, proofMetadata(proof))
    await first.synced
    await expectDenied(client, owner.publicKey.bytes, proofMetadata(proof), /already used \(replay\)/)
    first.call.cancel()
  })

  it('refuses a captured proof replayed after the allowed skew', async () => {
    let clockOffset = 0
    const { client, serverKey } = await startAuthServer({ now: () => Date.now() + clockOffset })
    const owner = PrivateKey.generate()
    const captured = sealSubscribeProof(owner, serverKey.publicKey)
    clockOffset = SKEW_MS + 1000
    await expectDenied(client, owner.publicKey.bytes, proofMetadata(captured), /older than the allowed skew/)
  })

  it('GrpcBackend learns the server key from GetBuildInfo and proves ownership by itself', async () => {
    const { server } = await startAuthServer()
    const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
    const a = await backend(`grpc://${server.address}?insecure=true`)
    const got = deferred<ReceivedMessage>()
    await a.subscribe({ ours: alice, theirs: bob.publicKey }, { onMessage: got.resolve })
    const b = await backend(`grpc://${server.address}?insecure=true`)
    await b.publish(bob, alice.publicKey, Message.create({ candidate: { port: 9 } }))
    expect((await withTimeout(got.promise, 5000, 'the message')).message.candidate?.port).toBe(9)
    // The first attempt had no proof (refused), the second had one.
    expect(server.stats()).toMatchObject({ subscribers: 1, refusedSubscribes: 1 })
  })

  it('GrpcBackend with a pinned key (?auth_key= or authServerKey) proves at once, and fails clearly on a wrong one', async () => {
    const { server, serverKey } = await startAuthServer()
    const a = await backend(`grpc://${server.address}?insecure=true&auth_key=${encodeURIComponent(serverKey.publicKey.toString())}`)
    await a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} })
    const b = await backend(`grpc://${server.address}?insecure=true`, { authServerKey: serverKey.publicKey.toString() })
    await b.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} })
    expect(server.stats()).toMatchObject({ subscribers: 2, refusedSubscribes: 0 })

    const wrong = await backend(`grpc://${server.address}?insecure=true`, { authServerKey: PrivateKey.generate().publicKey.toString(), connectTimeoutMs: 3000 })
    const err = await wrong.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BackendError)
    expect((err as Error).message).toMatch(/PERMISSION_DENIED: subscribe refused: .*not sealed by the subscribed key/)
    await expect(openBackend('grpc://127.0.0.1:1?insecure=true&auth_key=short')).rejects.toThrow(/backend grpc:\/\/127\.0\.0\.1:1: server auth key "short" is not valid base64/)
  })

  it('GrpcBackend re-subscribes with a fresh proof after a restart with a new server key', async () => {
    const first = await startAuthServer()
    const port = first.server.address.split(':')[1]!
    const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
    const a = await backend(`grpc://${first.server.address}?insecure=true`, { connectTimeoutMs: 3000 })
    const got = deferred<ReceivedMessage>()
    await a.subscribe({ ours: alice, theirs: bob.publicKey }, { onMessage: got.resolve })
    const reconnecting = nextStatus(a, 'reconnecting')
    await first.server.close(200)
    await reconnecting
    const connected = nextStatus(a, 'connected')
    const second = await startAuthServer({ listen: `127.0.0.1:${port}` })
    expect(second.serverKey.publicKey.equals(first.serverKey.publicKey)).toBe(false)
    await connected
    expect(second.server.stats().subscribers).toBe(1)
    const b = await backend(`grpc://${second.server.address}?insecure=true`)
    await b.publish(bob, alice.publicKey, Message.create({ candidate: { port: 11 } }))
    expect((await withTimeout(got.promise, 5000, 'the message after the restart')).message.candidate?.port).toBe(11)
  }, 30_000)
})

async function backend(url: string, options?: BackendOptions): Promise<Backend> {
  const b = await openBackend(url, options)
  closers.push(() => b.close())
  return b
}

function nextStatus(b: Backend, state: BackendStatus['state'], ms = 15_000): Promise<BackendStatus> {
  const seen = deferred<BackendStatus>()
  const off = b.onStatus((s) => s.state === state && seen.resolve(s))
  return withTimeout(seen.promise, ms, `backend status ${state}`).finally(off)
}

describe('signal --require-auth (CLI)', () => {
  it('announces the --server-key in its listening line; subscribe and publish work through it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-auth-'))
    const [serverKey, a, b] = [PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()]
    const file = (name: string, key: PrivateKey): string => {
      const path = join(dir, name)
      writeFileSync(path, key.toBase64() + '\n', { mode: 0o600 })
      return path
    }
    const signal = startCli(['signal', '--listen', '127.0.0.1:0', '--json', '--require-auth', '--server-key', file('server.key', serverKey)])
    const listening = await signal.waitForEvent((e) => e.type === 'listening')
    expect(listening.authKey).toBe(serverKey.publicKey.toString())
    const backend = `grpc://${listening.address}?insecure=true`
    const sub = startCli(['subscribe', '-k', file('b.key', b), '-b', backend, '--json', '--count', '1', '--timeout', '15'])
    await sub.waitForEvent((e) => e.type === 'subscribed')
    const pub = await runCli(['publish', '-k', file('a.key', a), '-b', backend, b.publicKey.toString(), '--message', '{"candidate":{"port":4242}}'])
    expect(pub.code, pub.stderr).toBe(0)
    const message = await sub.waitForEvent((e) => e.type === 'message')
    expect(message).toMatchObject({ from: a.publicKey.toString(), message: { candidate: { port: 4242 } } })
    expect(await sub.exit()).toBe(0)
    signal.child.kill('SIGTERM')
    expect(await signal.exit()).toBe(143)
    // The subscriber's first attempt had no proof yet: refused once, then admitted.
    expect(signal.events.find((e) => e.type === 'stopped')).toMatchObject({ refusedSubscribes: 1 })
  })
})
