// Unit tests of what the session state machine delegates: asking for credentials with back-off, the
// forwarder's attachment to a connected attempt, the session's STUN/TURN servers, its outgoing messages, and
// an attempt's agent gathering before the peer's credentials came.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Message } from '../src/gen/signaling/signaling.js'
import type { Backend } from '../src/core/backend.js'
import { Emitter } from '../src/core/emitter.js'
import { PrivateKey } from '../src/core/keys.js'
import { boxSharedKey } from '../src/core/shared-key-cache.js'
import { CredentialRequests } from '../src/core/session/credential-requests.js'
import { generateCredentials } from '../src/core/session/credentials.js'
import { IceAttempt, type AttemptSettings } from '../src/core/session/ice-attempt.js'
import type { SessionEventBody } from '../src/core/session/events.js'
import { forwardKey } from '../src/core/session/forward-seal.js'
import type { Forwarder, ForwardLink, ForwardStats } from '../src/core/session/forwarder.js'
import { PathForwarding, type ForwardedPath } from '../src/core/session/path-forwarding.js'
import { describeMessage, PeerMessages } from '../src/core/session/peer-messages.js'
import type { ResolvedIceServers } from '../src/core/session/relays.js'
import { SessionIceServers, withIceServers } from '../src/core/session/session-ice-servers.js'

afterEach(() => {
  vi.useRealTimers()
})

describe('CredentialRequests', () => {
  // No jitter: the delays are exactly 100, 200, 400 … ms.
  const backoff = { initialMs: 100, factor: 2, maxMs: 10_000, jitter: 0 }

  it('sends at once, then after each back-off delay, until the peer answers', () => {
    vi.useFakeTimers()
    const requests = new CredentialRequests(backoff)
    let sent = 0
    let waiting = true
    requests.start(() => sent++, () => waiting)
    expect(sent).toBe(1)
    vi.advanceTimersByTime(99)
    expect(sent).toBe(1)
    vi.advanceTimersByTime(1)
    expect(sent).toBe(2)
    vi.advanceTimersByTime(199)
    expect(sent).toBe(2)
    vi.advanceTimersByTime(1)
    expect(sent).toBe(3)
    waiting = false
    vi.advanceTimersByTime(10_000)
    expect(sent).toBe(3)
    expect(requests.pending).toBe(false)
  })

  it('stop() ends the resends; a new start() begins again at the first delay', () => {
    vi.useFakeTimers()
    const requests = new CredentialRequests(backoff)
    const sent: string[] = []
    requests.start(() => sent.push('a'), () => true)
    vi.advanceTimersByTime(300) // a at 0, 100, 300
    expect(sent).toEqual(['a', 'a', 'a'])
    expect(requests.pending).toBe(true)
    requests.stop()
    expect(requests.pending).toBe(false)
    vi.advanceTimersByTime(10_000)
    expect(sent).toEqual(['a', 'a', 'a'])
    requests.start(() => sent.push('b'), () => true)
    vi.advanceTimersByTime(100)
    expect(sent).toEqual(['a', 'a', 'a', 'b', 'b'])
    requests.stop()
  })

  it('a start() replaces the run before it: only the new send repeats', () => {
    vi.useFakeTimers()
    const requests = new CredentialRequests(backoff)
    const sent: string[] = []
    requests.start(() => sent.push('old'), () => true)
    requests.start(() => sent.push('new'), () => true)
    vi.advanceTimersByTime(100)
    expect(sent).toEqual(['old', 'new', 'new'])
    requests.stop()
  })

  it('is not scheduled at all when nothing is awaited', () => {
    vi.useFakeTimers()
    const requests = new CredentialRequests(backoff)
    let sent = 0
    requests.start(() => sent++, () => false)
    expect(sent).toBe(1)
    expect(requests.pending).toBe(false)
  })
})

/** A forwarder as the session sees it: what it was told, and its two emitters. */
function fakeForwarder(sealed: boolean) {
  const calls: string[] = []
  const links: ForwardLink[] = []
  const handled: Buffer[] = []
  const forwarder = {
    sealed,
    stats: new Emitter<ForwardStats>(),
    errors: new Emitter<string>(),
    attach: (link: ForwardLink) => (calls.push('attach'), links.push(link)),
    detach: () => calls.push('detach'),
    handle: (datagram: Buffer) => (calls.push('handle'), handled.push(datagram)),
    noteForeign: () => calls.push('foreign'),
  }
  return { forwarder: forwarder as unknown as Forwarder, raw: forwarder, calls, links, handled }
}

function path(): ForwardedPath & { sent: Uint8Array[] } {
  const sent: Uint8Array[] = []
  return { local: generateCredentials(), remote: generateCredentials(), agent: { send: (d) => (sent.push(d), true) }, sent }
}

describe('PathForwarding', () => {
  const ours = PrivateKey.generate()
  const theirs = PrivateKey.generate().publicKey

  it('attaches to a connected path: raw sends go to that path\'s agent; datagrams of other paths are not forwarded', () => {
    const fake = fakeForwarder(false)
    const forwarding = new PathForwarding(fake.forwarder, { ours, theirs, role: 'controlling' }, () => {})
    const a = path()
    const b = path()
    forwarding.attach(a)
    expect(fake.links).toHaveLength(1)
    expect(fake.links[0]!.seal).toBeUndefined()
    fake.links[0]!.send(new Uint8Array([1, 2]))
    expect(a.sent).toEqual([new Uint8Array([1, 2])])
    forwarding.datagram(a, Buffer.from('from the path'), true)
    forwarding.datagram(a, Buffer.from('a stranger'), false)
    forwarding.datagram(b, Buffer.from('an older agent'), true)
    expect(fake.calls).toEqual(['attach', 'handle', 'foreign'])
    expect(fake.handled.map(String)).toEqual(['from the path'])
  })

  it('sealed: the link carries the key of the attempt\'s credentials and our role', () => {
    const fake = fakeForwarder(true)
    const forwarding = new PathForwarding(fake.forwarder, { ours, theirs, role: 'controlled' }, () => {})
    const a = path()
    forwarding.attach(a)
    const seal = fake.links[0]!.seal!
    expect(seal.role).toBe('controlled')
    expect(Buffer.from(seal.key)).toEqual(Buffer.from(forwardKey(boxSharedKey(ours, theirs), 'controlled', a.local, a.remote!)))
  })

  it('a path without an agent or without the peer\'s credentials is not attached', () => {
    const fake = fakeForwarder(false)
    const forwarding = new PathForwarding(fake.forwarder, { ours, theirs, role: 'controlling' }, () => {})
    forwarding.attach({ local: generateCredentials(), remote: generateCredentials(), agent: undefined })
    forwarding.attach({ local: generateCredentials(), remote: undefined, agent: { send: () => true } })
    expect(fake.calls).toEqual([])
  })

  it('detaches only the attached path, once; close() detaches and stops reporting', () => {
    const fake = fakeForwarder(false)
    const events: SessionEventBody[] = []
    const forwarding = new PathForwarding(fake.forwarder, { ours, theirs, role: 'controlling' }, (e) => events.push(e))
    const a = path()
    forwarding.attach(a)
    forwarding.detach(path())
    expect(fake.calls).toEqual(['attach'])
    fake.raw.errors.emit('send failed')
    fake.raw.stats.emit({ local: '127.0.0.1:1', active: true } as ForwardStats)
    expect(events).toEqual([
      { type: 'error', source: 'forward', message: 'send failed' },
      { type: 'forward', local: '127.0.0.1:1', active: true },
    ])
    forwarding.detach(a)
    forwarding.detach(a)
    expect(fake.calls).toEqual(['attach', 'detach'])
    forwarding.datagram(a, Buffer.from('late'), true)
    expect(fake.handled).toEqual([])
    forwarding.attach(a)
    forwarding.close()
    expect(fake.calls).toEqual(['attach', 'detach', 'attach', 'detach'])
    fake.raw.errors.emit('after close')
    expect(events).toHaveLength(2)
  })
})

function resolved(partial: Partial<ResolvedIceServers>): ResolvedIceServers {
  return { stunServers: [], turnServers: [], turnInfo: [], skipped: [], errors: [], ...partial }
}

describe('SessionIceServers', () => {
  const stunA = { url: 'stun:a.example:3478', host: 'a.example', port: 3478 }
  const stunB = { url: 'stun:b.example:3478', host: 'b.example', port: 3478 }
  const turn = { url: 'turn:t.example:3478?transport=udp', host: 't.example', port: 3478, transport: 'udp' as const, username: 'u', password: 'p' }

  it('adds the gathered servers after the flags\' own, without repeating a STUN server', () => {
    const merged = withIceServers({ loopback: true, stunServers: [stunA] }, resolved({ stunServers: [stunA, stunB], turnServers: [turn] }))
    expect(merged).toEqual({ loopback: true, stunServers: [stunA, stunB], turnServers: [turn] })
    expect(withIceServers({ loopback: true }, undefined)).toEqual({ loopback: true })
    expect(withIceServers({ loopback: true }, resolved({}))).toEqual({ loopback: true })
  })

  it('tells each server it could not ask, then the servers in use; nothing when there is nothing', () => {
    const events: SessionEventBody[] = []
    const turnInfo = [{ url: turn.url, username: 'u', source: 'server' as const }]
    new SessionIceServers({
      ice: undefined,
      servers: resolved({ stunServers: [stunB], turnServers: [turn], turnInfo, skipped: ['stuns:x: not supported'], errors: ['could not get relays from grpc://h:1: aborted'] }),
      renew: undefined,
      emit: (e) => events.push(e),
    }).announce()
    expect(events).toEqual([
      { type: 'error', source: 'backend', message: 'could not get relays from grpc://h:1: aborted; going on without its relays' },
      { type: 'relays', stun: [stunB.url], turn: turnInfo, skipped: ['stuns:x: not supported'] },
    ])
    const none: SessionEventBody[] = []
    new SessionIceServers({ ice: undefined, servers: resolved({}), renew: undefined, emit: (e) => none.push(e) }).announce()
    new SessionIceServers({ ice: undefined, servers: undefined, renew: undefined, emit: (e) => none.push(e) }).announce()
    expect(none).toEqual([])
  })

  it('without renewal every agent gets the flags\' options plus the gathered servers; no renewed TURN credentials', () => {
    const servers = new SessionIceServers({ ice: { stunServers: [stunA] }, servers: resolved({ turnServers: [turn] }), renew: undefined, emit: () => {} })
    expect(servers.current()).toEqual({ stunServers: [stunA], turnServers: [turn] })
    expect(servers.renewedTurn(turn.url)).toBeUndefined()
    servers.start()
    servers.close()
  })

  it('with renewal, before any renewal, the initial servers are current and their TURN credentials are the renewed ones', () => {
    const servers = new SessionIceServers({ ice: undefined, servers: resolved({ turnServers: [turn] }), renew: async () => resolved({}), emit: () => {} })
    expect(servers.current()).toEqual({ turnServers: [turn] })
    expect(servers.renewedTurn(turn.url)).toEqual(turn)
    expect(servers.renewedTurn('turn:other:1')).toBeUndefined()
    servers.close()
  })

  it('servers still on their way: not settled, the flags\' options only; told and used once they arrive', async () => {
    let arrive!: (servers: ResolvedIceServers) => void
    const events: SessionEventBody[] = []
    const servers = new SessionIceServers({ ice: { stunServers: [stunA] }, servers: new Promise((resolve) => (arrive = resolve)), renew: undefined, emit: (e) => events.push(e) })
    servers.announce() // the session announces at start, before the answer
    expect(servers.settled).toBe(false)
    expect(servers.current()).toEqual({ stunServers: [stunA] })
    expect(events).toEqual([])
    arrive(resolved({ turnServers: [turn], turnInfo: [{ url: turn.url, username: 'u', source: 'server' }] }))
    await servers.ready
    expect(servers.settled).toBe(true)
    expect(servers.current()).toEqual({ stunServers: [stunA], turnServers: [turn] })
    expect(events).toEqual([{ type: 'relays', stun: [], turn: [{ url: turn.url, username: 'u', source: 'server' }], skipped: [] }])
  })

  it('a failed gathering is one error and no servers; after close nothing is told', async () => {
    const events: SessionEventBody[] = []
    const failed = new SessionIceServers({ ice: undefined, servers: Promise.reject(new Error('boom')), renew: undefined, emit: (e) => events.push(e) })
    failed.announce()
    await failed.ready
    expect(failed.settled).toBe(true)
    expect(failed.current()).toBeUndefined()
    expect(events).toEqual([{ type: 'error', source: 'backend', message: 'could not gather STUN/TURN servers: boom' }])
    const late: SessionEventBody[] = []
    const closed = new SessionIceServers({ ice: undefined, servers: Promise.resolve(resolved({ turnServers: [turn] })), renew: async () => resolved({}), emit: (e) => late.push(e) })
    closed.announce()
    closed.start()
    closed.close()
    await closed.ready
    expect(late).toEqual([])
    expect(closed.renewedTurn(turn.url)).toBeUndefined() // no renewal was started after close
  })
})

describe('PeerMessages', () => {
  const ours = PrivateKey.generate()
  const theirs = PrivateKey.generate().publicKey
  const credentials = { ufrag: 'abcdefghijklmnop', pwd: 'p'.repeat(32) }

  function backend(publish: Backend['publish']): Backend {
    return { url: 'test:', type: 'test', publish } as unknown as Backend
  }

  it('tells a sent message as an envelope with its size and description', async () => {
    const events: SessionEventBody[] = []
    const seen: Message[] = []
    const abort = new AbortController()
    const messages = new PeerMessages({
      backend: backend(async (_o, to, message, signal) => (expect(to).toBe(theirs), expect(signal).toBe(abort.signal), seen.push(message), { size: 123 })),
      ours,
      theirs,
      signal: abort.signal,
      emit: (e) => events.push(e),
    })
    messages.credentials(credentials, true)
    messages.credentials(credentials, false)
    await vi.waitFor(() => expect(events).toHaveLength(2))
    expect(seen.map((m) => m.credentials)).toEqual([
      { ...credentials, needCreds: true },
      { ...credentials, needCreds: false },
    ])
    expect(events).toEqual([
      { type: 'envelope', direction: 'out', kind: 'credentials', size: 123, backend: 'test:', detail: describeMessage(seen[0]!) },
      { type: 'envelope', direction: 'out', kind: 'credentials', size: 123, backend: 'test:', detail: describeMessage(seen[1]!) },
    ])
    expect(events[0]).toMatchObject({ detail: expect.stringMatching(/, need creds$/) })
    expect(events[1]).not.toMatchObject({ detail: expect.stringMatching(/need creds/) })
  })

  it('a failed send (rejected or thrown) is an error event, never a rejection; after the abort, nothing is told', async () => {
    const events: SessionEventBody[] = []
    const abort = new AbortController()
    let mode: 'reject' | 'throw' = 'reject'
    const messages = new PeerMessages({
      backend: backend(() => {
        // Synchronously, as a backend closed under us might: still an event, not an exception.
        if (mode === 'throw') throw new Error('closed')
        return Promise.reject(new Error('unreachable'))
      }),
      ours,
      theirs,
      signal: abort.signal,
      emit: (e) => events.push(e),
    })
    messages.publish(Message.fromPartial({ credentials }), 'the detail')
    mode = 'throw'
    messages.publish(Message.fromPartial({ credentials }), 'again')
    await vi.waitFor(() => expect(events).toHaveLength(2))
    expect(events).toEqual([
      { type: 'error', source: 'publish', message: 'could not send credentials (the detail) via test:: unreachable' },
      { type: 'error', source: 'publish', message: 'could not send credentials (again) via test:: closed' },
    ])
    abort.abort()
    messages.publish(Message.fromPartial({ credentials }))
    await new Promise((resolve) => setImmediate(resolve))
    expect(events).toHaveLength(2)
  })

  it('describes credentials and candidates the same way in both directions', () => {
    expect(describeMessage(Message.fromPartial({ credentials: { ...credentials, needCreds: true } }))).toMatch(/^ufrag \S+, need creds$/)
    expect(describeMessage(Message.fromPartial({ credentials }))).toMatch(/^ufrag \S+$/)
    expect(describeMessage(Message.fromPartial({}))).toBeUndefined()
  })
})

describe('IceAttempt.prepare', () => {
  function settings(): AttemptSettings {
    return { role: 'controlling', probeKey: new Uint8Array(32), ice: { loopback: true }, connectTimeoutMs: 5000, probeTimeoutMs: 1000 }
  }

  it('gathers before the peer credentials, tells nothing until start(), then publishes every gathered candidate at once', async () => {
    const calls: string[] = []
    const attempt = new IceAttempt(generateCredentials(), {
      emit: (event) => void calls.push(`emit ${event.type}`),
      setState: (state) => void calls.push(`state ${state}`),
      fail: (reason) => void calls.push(`fail ${reason}`),
      connected: () => void calls.push('connected'),
      goodbye: () => void calls.push('goodbye'),
      localCandidate: (info) => void calls.push(`candidate ${info.type} ${info.address}`),
      datagram: () => {},
      closed: () => false,
    })
    try {
      attempt.prepare(settings())
      const agent = attempt.agent
      expect(agent).toBeDefined()
      const deadline = Date.now() + 3000
      while ((agent?.connection.localCandidates.length ?? 0) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      expect(agent?.connection.localCandidates.length).toBeGreaterThan(0)
      await new Promise((r) => setTimeout(r, 20))
      expect(calls).toEqual([])
      attempt.remote = generateCredentials()
      attempt.start(settings(), [])
      // Synchronously: the same agent, the state, then the candidates it gathered while waiting.
      expect(attempt.agent).toBe(agent)
      expect(calls).toEqual(['state gathering', 'candidate host 127.0.0.1'])
    } finally {
      await attempt.end()
    }
  })

  it('a prepared attempt that ends before start closes its agent', async () => {
    const attempt = new IceAttempt(generateCredentials(), {
      emit: () => {},
      setState: () => {},
      fail: () => {},
      connected: () => {},
      goodbye: () => {},
      localCandidate: () => {},
      datagram: () => {},
      closed: () => false,
    })
    attempt.prepare(settings())
    await attempt.end()
    expect(attempt.agent?.closed).toBe(true)
  })
})
