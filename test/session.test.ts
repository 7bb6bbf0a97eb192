// Two sessions over in-process backends, on loopback: connect, verify, late peer, restart, reordering
// and duplicates, a lonely peer. Every wait is on an event with a deadline; every session is closed.
import { createSocket } from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { CandidateType, NetworkType } from '../src/gen/feature/epdisc_candidate.js'
import { Message } from '../src/gen/signaling/signaling.js'
import { InprocessBackend } from '../src/core/backends/inprocess.js'
import type { Backend, ReceivedMessage } from '../src/core/backend.js'
import type { PrivateKey } from '../src/core/keys.js'
import { Session, type SessionOptions } from '../src/core/session/index.js'
import type { SessionEvent } from '../src/core/session/events.js'
import { ShufflingBackend } from './helpers/session-backends.js'
import { isState, isType, orderedKeys, record, waitFor, type Recorder } from './helpers/session-events.js'

const FAST_BACKOFF = { initialMs: 100, factor: 1.5, maxMs: 1000, jitter: 0.5 }

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface Peer {
  session: Session
  backend: Backend
  log: Recorder
}

function peer(ours: PrivateKey, theirs: PrivateKey, options: Partial<SessionOptions> = {}, backend: Backend = new InprocessBackend()): Peer {
  const session = new Session({
    backend,
    ours,
    theirs: theirs.publicKey,
    ice: { loopback: true, connectTimeoutMs: 10_000 },
    backoff: FAST_BACKOFF,
    ...options,
  })
  const log = record(session.events)
  cleanups.push(async () => {
    await session.close()
    await backend.close()
  })
  return { session, backend, log }
}

const connected = (p: Peer, timeoutMs = 15_000, seen: readonly SessionEvent[] = p.log.events) =>
  waitFor(p.session.events, isState('connected'), timeoutMs, 'state connected', seen)
const verified = (p: Peer, timeoutMs = 10_000, seen: readonly SessionEvent[] = p.log.events) =>
  waitFor(p.session.events, isType('verified'), timeoutMs, 'verified', seen)
const pairOf = (p: Peer, seen: readonly SessionEvent[] = p.log.events) =>
  waitFor(p.session.events, isType('pair'), 10_000, 'pair', seen)

function samePair(a: Peer, b: Peer, pa: Extract<SessionEvent, { type: 'pair' }>, pb: Extract<SessionEvent, { type: 'pair' }>): void {
  expect(`${pa.local.address}:${pa.local.port}`).toBe(`${pb.remote.address}:${pb.remote.port}`)
  expect(`${pa.remote.address}:${pa.remote.port}`).toBe(`${pb.local.address}:${pb.local.port}`)
  void a
  void b
}

describe('Session over the in-process backend (loopback ICE)', () => {
  it('connects two peers, with opposite roles, the same pair from both ends, and a verified path', async () => {
    const [small, large] = orderedKeys()
    const a = peer(small, large)
    const b = peer(large, small)
    const started = performance.now()
    await Promise.all([a.session.start(), b.session.start()])
    expect(a.session.role).toBe('controlling')
    expect(b.session.role).toBe('controlled')
    const roleA = a.log.events.find(isType('role'))!
    expect(roleA.reason).toMatch(/^our key .{8}… < their key .{8}…: we control$/)
    expect(b.log.events.find(isType('role'))!.reason).toMatch(/they control$/)
    expect(a.log.events.some(isType('subscribed'))).toBe(true)

    await Promise.all([connected(a), connected(b)])
    const connectedMs = performance.now() - started
    const [pa, pb] = await Promise.all([pairOf(a), pairOf(b)])
    samePair(a, b, pa, pb)
    expect(pa.local.address).toBe('127.0.0.1')
    const [va, vb] = await Promise.all([verified(a), verified(b)])
    expect(va.rttMs).toBeGreaterThan(0)
    expect(vb.rttMs).toBeGreaterThan(0)
    console.log(`in-process loopback: connected after ${connectedMs.toFixed(0)} ms; probe rtt ${va.rttMs} / ${vb.rttMs} ms`)

    // The states went the documented way, and messages were counted both ways.
    const states = a.log.events.filter(isType('state')).map((e) => e.state)
    expect(states).toEqual(expect.arrayContaining(['gathering', 'connecting', 'connected']))
    expect(states.indexOf('gathering')).toBeLessThan(states.indexOf('connected'))
    const envelopes = a.log.events.filter(isType('envelope'))
    expect(envelopes.some((e) => e.direction === 'out' && e.kind === 'credentials' && e.size > 0)).toBe(true)
    expect(envelopes.some((e) => e.direction === 'in' && e.kind === 'candidate' && e.backend === 'inprocess:')).toBe(true)
    expect(a.log.events.some((e) => e.type === 'candidate' && e.side === 'local')).toBe(true)
    expect(a.log.events.some((e) => e.type === 'candidate' && e.side === 'remote')).toBe(true)
    expect(a.log.events.filter(isType('error'))).toEqual([])
    expect(b.log.events.filter(isType('error'))).toEqual([])

    await a.session.close()
    expect(a.session.state).toBe('closed')
  })

  it('connects when the second peer starts 2 s later', async () => {
    const [small, large] = orderedKeys()
    const a = peer(small, large)
    const b = peer(large, small)
    await a.session.start()
    // The only timer here is the delay itself: what is tested is that A's resends reach a late B.
    await new Promise((r) => setTimeout(r, 2000))
    expect(a.session.state).toBe('idle')
    await b.session.start()
    await Promise.all([connected(a), connected(b)])
    await Promise.all([verified(a), verified(b)])
  })

  it('reconnects after one side stops cleanly and starts again with new credentials', async () => {
    const [small, large] = orderedKeys()
    const a = peer(small, large)
    const b = peer(large, small)
    await Promise.all([a.session.start(), b.session.start()])
    await Promise.all([connected(a), connected(b)])
    const firstUfrags = new Set(a.log.events.filter(isType('envelope')).map((e) => e.detail))

    const mark = b.log.events.length
    await a.session.close()
    await a.backend.close()
    const a2 = peer(small, large)
    await a2.session.start()
    // A said goodbye when it stopped, so B was already waiting for it (a peer that vanishes without one
    // makes B restart when its new credentials arrive instead: session-signals, session-cli).
    const waiting = await waitFor(b.session.events, isState('idle'), 10_000, 'B waiting for the peer', b.log.events.slice(mark))
    expect(waiting.reason).toMatch(/said goodbye/)
    await Promise.all([connected(a2), connected(b, 15_000, b.log.events.slice(mark + 1))])
    await Promise.all([verified(a2), verified(b, 10_000, b.log.events.slice(mark))])
    // The fresh session used credentials of its own.
    const a2Creds = a2.log.events.filter(isType('envelope')).find((e) => e.direction === 'out' && e.kind === 'credentials')
    expect(firstUfrags.has(a2Creds?.detail)).toBe(false)
  })

  it('connects through a backend that reorders and duplicates every message', async () => {
    const [small, large] = orderedKeys()
    const shufflerA = new ShufflingBackend(new InprocessBackend(), { maxDelayMs: 60, copies: 2 })
    const shufflerB = new ShufflingBackend(new InprocessBackend(), { maxDelayMs: 60, copies: 2 })
    const a = peer(small, large, {}, shufflerA)
    const b = peer(large, small, {}, shufflerB)
    await Promise.all([a.session.start(), b.session.start()])
    await Promise.all([connected(a, 20_000), connected(b, 20_000)])
    await Promise.all([verified(a), verified(b)])
    // A fast loopback connect can finish before the late copies land: let every scheduled copy arrive,
    // then the duplicates must have changed nothing (no restart, no second connect).
    const connectsBefore = [a, b].map((p) => p.log.events.filter(isState('connected')).length)
    const drained = Date.now() + 2000
    while ((shufflerA.pending > 0 || shufflerB.pending > 0) && Date.now() < drained) await new Promise((r) => setTimeout(r, 20))
    expect(shufflerA.pending + shufflerB.pending).toBe(0)
    expect(shufflerA.duplicates).toBeGreaterThan(0)
    expect(shufflerB.duplicates).toBeGreaterThan(0)
    expect([a.session.state, b.session.state]).toEqual(['connected', 'connected'])
    expect([a, b].map((p) => p.log.events.filter(isState('connected')).length)).toEqual(connectsBefore)
  })

  it('after an ICE failure, goes back to idle with new credentials (a peer that signals but never answers checks)', async () => {
    const [small, large] = orderedKeys()
    const a = peer(small, large, { ice: { loopback: true, connectTimeoutMs: 8000 } })
    // The fake peer speaks the signaling protocol by hand and points at a UDP socket that never answers.
    const fake = new InprocessBackend()
    const silent = createSocket('udp4')
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve))
    const fromA: Message[] = []
    const handler = { onMessage: (r: ReceivedMessage) => void fromA.push(r.message) }
    try {
      await fake.subscribe({ ours: large, theirs: small.publicKey }, handler)
      await a.session.start()
      await fake.publish(large, small.publicKey, Message.fromPartial({ credentials: { ufrag: 'F'.repeat(16), pwd: 'f'.repeat(32), needCreds: true } }))
      const port = (silent.address() as { port: number }).port
      await fake.publish(large, small.publicKey, Message.fromPartial({
        candidate: { type: CandidateType.HOST, networkType: NetworkType.UDP4, component: 1, priority: 2130706431, foundation: 'x', address: '127.0.0.1', port },
      }))
      const failed = await waitFor(a.session.events, isState('failed'), 10_000, 'state failed', a.log.events)
      expect(failed.reason).toMatch(/candidate pair failed|did not connect/)
      const states = a.log.events.filter(isType('state')).map((e) => e.state)
      expect(states).toEqual(['gathering', 'connecting', 'checking', 'failed'])
      const idle = await waitFor(a.session.events, isState('idle'), 5000, 'state idle again', a.log.events)
      expect(idle.reason).toMatch(/new credentials/)
      const creds = fromA.filter((m) => m.credentials).map((m) => m.credentials!)
      // Our first request (sent at start), later a new agent's request with a new ufrag.
      expect(creds[0]!.needCreds).toBe(true)
      await waitFor(a.session.events, (e): e is SessionEvent => fromA.filter((m) => m.credentials?.needCreds).length >= 2, 5000, 'new credentials')
      const ufrags = new Set(fromA.filter((m) => m.credentials).map((m) => m.credentials!.ufrag))
      expect(ufrags.size).toBe(2)
    } finally {
      await fake.unsubscribe({ ours: large, theirs: small.publicKey }, handler)
      await fake.close()
      silent.close()
    }
  })

  it('waits idle for a peer that never comes, resending with back-off, and closes without leftovers', async () => {
    const [small, large] = orderedKeys()
    const before = process.getActiveResourcesInfo()
    const backend = new InprocessBackend()
    const session = new Session({ backend, ours: small, theirs: large.publicKey, ice: { loopback: true }, backoff: { initialMs: 50, factor: 2, maxMs: 400, jitter: 0 } })
    const log = record(session.events)
    try {
      await session.start()
      // 50+100+200+400+400 = 1150 ms: the 6th copy (first + 5 resends) is due then.
      const sent = () => log.events.filter((e) => e.type === 'envelope' && e.direction === 'out' && e.kind === 'credentials')
      await waitFor(session.events, (e): e is SessionEvent => sent().length >= 6, 5000, '6 credential messages')
      const times = sent().map((e) => Date.parse(e.at))
      const gaps = times.slice(1).map((t, i) => t - times[i]!)
      // Growing then capped: no tight loop.
      expect(gaps[0]!).toBeGreaterThanOrEqual(40)
      expect(gaps[3]!).toBeGreaterThanOrEqual(350)
      expect(session.state).toBe('idle')
    } finally {
      await session.close()
      await backend.close()
    }
    expect(session.state).toBe('closed')
    const count = (list: string[]) => list.filter((r) => r === 'Timeout' || r === 'UDPWrap').length
    expect(count(process.getActiveResourcesInfo())).toBeLessThanOrEqual(count(before))
    log.stop()
  })
})
