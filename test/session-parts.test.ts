// Unit tests of the session's parts: credentials, candidate mapping, back-off, path-probe sealing, ICE options.
import { describe, expect, it } from 'vitest'
import { Candidate as WeriftCandidate } from 'werift-ice'
import {
  Candidate as ProtoCandidate,
  CandidateType,
  NetworkType,
  RelayProtocol,
  TCPType,
} from '../src/gen/feature/epdisc_candidate.js'
import { Message } from '../src/gen/signaling/signaling.js'
import { PrivateKey } from '../src/core/keys.js'
import { boxSharedKey } from '../src/core/shared-key-cache.js'
import { Backoff, backoffBounds, CUNICU_BACKOFF } from '../src/core/backoff.js'
import {
  CandidateMappingError,
  candidateInfoFromProto,
  candidateInfoFromWerift,
  candidateInfoToProto,
  candidateInfoToWerift,
  formatCandidate,
} from '../src/core/session/candidate-mapping.js'
import { CREDENTIAL_ALPHABET, generateCredentials, randomLetters } from '../src/core/session/credentials.js'
import type { CandidateInfo } from '../src/core/session/events.js'
import { resolveInterfaceAddresses, weriftOptions } from '../src/core/session/ice-options.js'
import { IceServerUrlError, parseStunServer } from '../src/core/session/ice-servers.js'
import { goodbyeId, openProbe, PathProbe, PROBE_LENGTH, sealProbe, type ProbePacket } from '../src/core/session/path-probe.js'
import { Session } from '../src/core/session/session.js'
import { InprocessBackend } from '../src/core/backends/inprocess.js'

describe('credentials', () => {
  it('are 16 and 32 letters [a-zA-Z], different every time', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 200; i++) {
      const { ufrag, pwd } = generateCredentials()
      expect(ufrag).toMatch(/^[a-zA-Z]{16}$/)
      expect(pwd).toMatch(/^[a-zA-Z]{32}$/)
      seen.add(ufrag).add(pwd)
    }
    expect(seen.size).toBe(400)
  })

  it('use every letter about equally (no modulo bias towards the first letters)', () => {
    const counts = new Map<string, number>()
    const text = randomLetters(52 * 2000)
    for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1)
    expect(counts.size).toBe(52)
    expect([...counts.keys()].every((ch) => CREDENTIAL_ALPHABET.includes(ch))).toBe(true)
    // Expected 2000 each; with `byte % 52` the first 48 letters would get ~2078 and the last 4 ~1039.
    for (const n of counts.values()) expect(n).toBeGreaterThan(1700)
    const tail = ['W', 'X', 'Y', 'Z'].map((ch) => counts.get(ch)!)
    for (const n of tail) expect(n).toBeGreaterThan(1700)
  })
})

describe('candidate mapping', () => {
  const host: CandidateInfo = { type: 'host', protocol: 'udp', address: '192.0.2.2', port: 50123, priority: 2130706431, foundation: 'abc123' }
  const srflx: CandidateInfo = {
    type: 'srflx', protocol: 'udp', address: '203.0.113.7', port: 4000, priority: 1694498815, foundation: 'f2',
    relatedAddress: '192.0.2.2', relatedPort: 50123,
  }
  const relay6: CandidateInfo = {
    type: 'relay', protocol: 'udp', address: '2001:db8::7', port: 3478, priority: 16777215, foundation: 'r',
    relatedAddress: '2001:db8::2', relatedPort: 40000, relayProtocol: 'tcp',
  }
  const tcp: CandidateInfo = { type: 'host', protocol: 'tcp', address: 'fd00::2', port: 9, priority: 1, foundation: 't', tcpType: 'passive' }

  it('writes the wire form as WIRE.md §7 says', () => {
    const p = candidateInfoToProto(srflx)
    expect(p).toEqual({
      type: CandidateType.SERVER_REFLEXIVE, networkType: NetworkType.UDP4, tcpType: TCPType.UNSPECIFIED_TCP_TYPE,
      foundation: 'f2', component: 1, priority: 1694498815, address: '203.0.113.7', port: 4000,
      relatedAddress: { address: '192.0.2.2', port: 50123 }, relayProtocol: RelayProtocol.UNSPECIFIED_RELAY_PROTOCOL,
    })
    expect(candidateInfoToProto(host).relatedAddress).toBeUndefined()
    expect(candidateInfoToProto(host).type).toBe(CandidateType.HOST)
    const r = candidateInfoToProto(relay6)
    expect([r.type, r.networkType, r.relayProtocol]).toEqual([CandidateType.RELAY, NetworkType.UDP6, RelayProtocol.TCP])
    const t = candidateInfoToProto(tcp)
    expect([t.networkType, t.tcpType]).toEqual([NetworkType.TCP6, TCPType.PASSIVE])
    expect(candidateInfoToProto({ ...host, type: 'prflx', relatedAddress: '10.0.0.1', relatedPort: 1 }).type).toBe(CandidateType.PEER_REFLEXIVE)
  })

  it('round-trips CandidateInfo → protobuf (bytes) → CandidateInfo', () => {
    for (const info of [host, srflx, relay6, tcp]) {
      const bytes = Message.encode(Message.fromPartial({ candidate: candidateInfoToProto(info) })).finish()
      expect(candidateInfoFromProto(Message.decode(bytes).candidate!)).toEqual(info)
    }
  })

  it('round-trips CandidateInfo → werift Candidate → CandidateInfo, and werift SDP agrees', () => {
    for (const info of [host, srflx, { ...relay6, relayProtocol: 'udp' as const }]) {
      const w = candidateInfoToWerift(info)
      expect(w.component).toBe(1)
      expect(candidateInfoFromWerift(w)).toEqual(info)
      expect(candidateInfoFromWerift(WeriftCandidate.fromSdp(w.toSdp()))).toEqual(info)
    }
    const sdp = WeriftCandidate.fromSdp('6815297761 1 udp 1694498815 203.0.113.7 4000 typ srflx raddr 192.0.2.2 rport 50123')
    expect(candidateInfoFromWerift(sdp)).toEqual({ ...srflx, foundation: '6815297761' })
  })

  it('keeps ICE priorities above 2^31 through the int32 field, as Go int32() does', () => {
    const big = { ...host, priority: 0x80000001 }
    const p = candidateInfoToProto(big)
    expect(p.priority).toBe(-2147483647)
    expect(candidateInfoFromProto(p).priority).toBe(0x80000001)
  })

  it('gives a foundation to a wire candidate without one', () => {
    expect(candidateInfoToWerift({ ...host, foundation: '' }).foundation).not.toBe('')
  })

  it('rejects unusable wire candidates with a reason', () => {
    const base = candidateInfoToProto(host)
    const bad: [Partial<ProtoCandidate>, RegExp][] = [
      [{ type: CandidateType.UNSPECIFIED_CANDIDATE_TYPE }, /unknown type/],
      [{ networkType: NetworkType.UNSPECIFIED_NETWORK_TYPE }, /unknown network type/],
      [{ address: '' }, /no address/],
      [{ port: 0 }, /not a port/],
      [{ port: 70000 }, /not a port/],
    ]
    for (const [change, reason] of bad) {
      expect(() => candidateInfoFromProto({ ...base, ...change })).toThrow(CandidateMappingError)
      expect(() => candidateInfoFromProto({ ...base, ...change })).toThrow(reason)
    }
  })

  it('formats candidates for renderers', () => {
    expect(formatCandidate({ ...host, address: '127.0.0.1' })).toBe('host udp 127.0.0.1:50123')
    expect(formatCandidate(srflx)).toBe('srflx udp 203.0.113.7:4000 from 192.0.2.2:50123')
    expect(formatCandidate(relay6)).toBe('relay udp [2001:db8::7]:3478 from [2001:db8::2]:40000 via tcp')
  })
})

describe('back-off', () => {
  it('defaults to cunīcu: 0.5 s, ×1.5, ±50 %, at most a minute', () => {
    expect(CUNICU_BACKOFF).toEqual({ initialMs: 500, factor: 1.5, maxMs: 60_000, jitter: 0.5 })
    expect(backoffBounds(0)).toEqual({ minMs: 250, maxMs: 750 })
    expect(backoffBounds(1)).toEqual({ minMs: 375, maxMs: 1125 })
    expect(backoffBounds(30)).toEqual({ minMs: 30_000, maxMs: 60_000 })
  })

  it('stays inside its bounds for every step, and restarts after reset', () => {
    for (const random of [() => 0, () => 0.999999, Math.random]) {
      const b = new Backoff({}, random)
      for (let i = 0; i < 40; i++) {
        const d = b.next()
        const { minMs, maxMs } = backoffBounds(i)
        expect(d).toBeGreaterThanOrEqual(Math.floor(minMs))
        expect(d).toBeLessThanOrEqual(Math.ceil(maxMs))
        expect(d).toBeLessThanOrEqual(60_000)
      }
      expect(b.attempts).toBe(40)
      b.reset()
      expect(b.next()).toBeLessThanOrEqual(750)
    }
  })

  it('grows without jitter exactly by the factor', () => {
    const b = new Backoff({ initialMs: 100, factor: 2, maxMs: 1000, jitter: 0 })
    expect(Array.from({ length: 6 }, () => b.next())).toEqual([100, 200, 400, 800, 1000, 1000])
  })

  it('refuses a shrinking factor', () => {
    expect(() => new Backoff({ factor: 0.5 })).toThrow(RangeError)
  })
})

describe('path probe sealing', () => {
  const a = PrivateKey.generate()
  const b = PrivateKey.generate()
  const key = boxSharedKey(a, b.publicKey)
  const request: ProbePacket = { type: 'request', from: 'controlling', id: '0123456789abcdef', timestamp: 1_700_000_000_000 }

  it('opens what it sealed, and both peers derive the same key', () => {
    expect(boxSharedKey(b, a.publicKey)).toEqual(key)
    const sealed = sealProbe(key, request)
    expect(sealed.length).toBe(PROBE_LENGTH)
    expect(openProbe(boxSharedKey(b, a.publicKey), sealed)).toEqual(request)
    // Two seals of the same packet differ (fresh nonce).
    expect(Buffer.from(sealProbe(key, request)).equals(Buffer.from(sealed))).toBe(false)
  })

  it('rejects tampered, truncated, forged and foreign datagrams', () => {
    const sealed = sealProbe(key, request)
    for (let i = 0; i < sealed.length; i++) {
      const copy = Uint8Array.from(sealed)
      copy[i]! ^= 0x01
      expect(openProbe(key, copy)).toBeUndefined()
    }
    expect(openProbe(key, sealed.subarray(0, sealed.length - 1))).toBeUndefined()
    expect(openProbe(key, new Uint8Array([...sealed, 0]))).toBeUndefined()
    // Sealed by a third party who knows both public keys but neither private key.
    const mallory = PrivateKey.generate()
    expect(openProbe(key, sealProbe(boxSharedKey(mallory, a.publicKey), request))).toBeUndefined()
    // Sealed for another pair.
    expect(openProbe(key, sealProbe(boxSharedKey(a, mallory.publicKey), request))).toBeUndefined()
    // Random bytes with the right length and magic.
    const random = Uint8Array.from(sealed)
    random.set(crypto.getRandomValues(new Uint8Array(sealed.length - 8)), 8)
    expect(openProbe(key, random)).toBeUndefined()
    expect(openProbe(key, new Uint8Array(0))).toBeUndefined()
  })

  it('counts only a sealed response to one of our own outstanding ids', async () => {
    const sentByA: Uint8Array[] = []
    const sentByB: Uint8Array[] = []
    const results: string[] = []
    const probeA = new PathProbe({
      key, role: 'controlling', timeoutMs: 2000, intervalMs: 1000,
      send: async (d) => void sentByA.push(d),
      onVerified: (rtt) => results.push(`verified ${rtt > 0}`),
      onUnverified: (reason) => results.push(`unverified ${reason}`),
    })
    const probeB = new PathProbe({
      key, role: 'controlled', timeoutMs: 2000, intervalMs: 1000,
      send: async (d) => void sentByB.push(d),
      onVerified: () => {}, onUnverified: () => {},
    })
    try {
      probeA.start()
      expect(sentByA.length).toBe(1)
      // A response to an id A never sent, correctly sealed: does not count.
      expect(probeA.handle(sealProbe(key, { type: 'response', from: 'controlled', id: 'ffffffffffffffff', timestamp: 0 }))).toBe(true)
      // A's own request reflected back at it: refused (wrong role), not answered.
      expect(probeA.handle(sentByA[0]!)).toBe(false)
      expect(sentByA.length).toBe(1)
      // Garbage: ignored.
      expect(probeA.handle(Buffer.from('hello'))).toBe(false)
      expect(results).toEqual([])
      // B is not connected yet: a valid probe, but unanswered (werift would drop the answer).
      expect(probeB.handle(sentByA[0]!)).toBe(true)
      expect(sentByB).toEqual([])
      probeB.start()
      expect(sentByB.map((d) => openProbe(key, d)?.type)).toEqual(['request'])
      // B answers A's real request (and, its own request unanswered, asks again at once); the answer gives A
      // its round trip.
      expect(probeB.handle(sentByA[0]!)).toBe(true)
      expect(sentByB.map((d) => openProbe(key, d)?.type)).toEqual(['request', 'response', 'request'])
      expect(probeA.handle(sentByB[1]!)).toBe(true)
      // A has its answer but has not answered B yet: not settled, so A cannot leave B unanswered.
      expect(results).toEqual([])
      expect(probeA.handle(sentByB[0]!)).toBe(true)
      expect(openProbe(key, sentByA.at(-1)!)?.type).toBe('response')
      expect(results).toEqual(['verified true'])
      // After verifying, A still answers B's requests, without asking anything itself.
      const before = sentByA.length
      expect(probeA.handle(sentByB[0]!)).toBe(true)
      expect(sentByA.slice(before).map((d) => openProbe(key, d)?.type)).toEqual(['response'])
      expect(results).toEqual(['verified true'])
    } finally {
      probeA.stop()
      probeB.stop()
    }
  })

  // The race of issue 10: A connects first and probes; B connects later. Both must settle within one
  // round trip of B's start, not at A's next retransmission or at the 3 s deadline.
  for (const [name, aFirst] of [['the controlling side', true], ['the controlled side', false]] as const) {
    it(`settles both sides within one round trip of the later start, when ${name} connects first`, async () => {
      const verified: string[] = []
      // Datagrams are delivered by hand, in order, so the test sees exactly what one round trip carries.
      const wire: { to: 'A' | 'B'; d: Uint8Array }[] = []
      const probeA = new PathProbe({ key, role: 'controlling', timeoutMs: 3000, intervalMs: 60_000, send: async (d) => void wire.push({ to: 'B', d }), onVerified: () => verified.push('A'), onUnverified: () => verified.push('A unverified') })
      const probeB = new PathProbe({ key, role: 'controlled', timeoutMs: 3000, intervalMs: 60_000, send: async (d) => void wire.push({ to: 'A', d }), onVerified: () => verified.push('B'), onUnverified: () => verified.push('B unverified') })
      const [first, second] = aFirst ? [probeA, probeB] : [probeB, probeA]
      const deliver = () => {
        const batch = wire.splice(0)
        for (const { to, d } of batch) (to === 'A' ? probeA : probeB).handle(d)
        return batch.length
      }
      try {
        first.start()
        deliver() // the early request reaches a side that is not connected: unanswered
        expect(wire).toEqual([])
        second.start()
        // Flight 1: the second side's request. Flight 2: the answer plus the first side's own request.
        // Flight 3: the answer to that. No retransmission timer was needed (the interval is 60 s).
        let flights = 0
        while (deliver() > 0 && flights < 10) flights++
        expect(verified.sort()).toEqual(['A', 'B'])
        expect(flights).toBeLessThanOrEqual(3)
      } finally {
        probeA.stop()
        probeB.stop()
      }
    })
  }

  it('stops triggered requests once answered: two sides starting together do not ping-pong', async () => {
    const sent = { A: 0, B: 0 }
    const wire: { to: 'A' | 'B'; d: Uint8Array }[] = []
    const verified: string[] = []
    const probeA = new PathProbe({ key, role: 'controlling', timeoutMs: 3000, intervalMs: 60_000, send: async (d) => void (sent.A++, wire.push({ to: 'B', d })), onVerified: () => verified.push('A'), onUnverified: () => {} })
    const probeB = new PathProbe({ key, role: 'controlled', timeoutMs: 3000, intervalMs: 60_000, send: async (d) => void (sent.B++, wire.push({ to: 'A', d })), onVerified: () => verified.push('B'), onUnverified: () => {} })
    try {
      probeA.start()
      probeB.start()
      for (let i = 0; i < 50 && wire.length > 0; i++) {
        const { to, d } = wire.shift()!
        ;(to === 'A' ? probeA : probeB).handle(d)
      }
      expect(wire).toEqual([])
      expect(verified.sort()).toEqual(['A', 'B'])
      expect(sent.A + sent.B).toBeLessThanOrEqual(8)
    } finally {
      probeA.stop()
      probeB.stop()
    }
  })

  it('is verified at the deadline when the peer answers us but its own requests never reach us', async () => {
    let probeB!: PathProbe
    const rtt = await new Promise<number>((resolve, reject) => {
      const probeA: PathProbe = new PathProbe({
        key, role: 'controlling', timeoutMs: 300, intervalMs: 1000,
        send: async (d) => void probeB.handle(d),
        onVerified: resolve,
        onUnverified: reject,
      })
      // B is connected and answers, but the way from B to A loses B's requests (one-way loss).
      probeB = new PathProbe({
        key, role: 'controlled', timeoutMs: 2000, intervalMs: 1000,
        send: async (d) => void (openProbe(key, d)?.type === 'response' && probeA.handle(d)),
        onVerified: () => {}, onUnverified: () => {},
      })
      probeB.start()
      probeA.start()
    })
    probeB.stop()
    expect(rtt).toBeGreaterThan(0)
  })

  it('upgrades an unverified path to verified when a late cunicu-ts peer connects after the deadline', async () => {
    const results: string[] = []
    const wire: { to: 'A' | 'B'; d: Uint8Array }[] = []
    const probeA = new PathProbe({ key, role: 'controlling', timeoutMs: 50, intervalMs: 10, send: async (d) => void wire.push({ to: 'B', d }), onVerified: () => results.push('A verified'), onUnverified: () => results.push('A unverified') })
    const probeB = new PathProbe({ key, role: 'controlled', timeoutMs: 3000, intervalMs: 60_000, send: async (d) => void wire.push({ to: 'A', d }), onVerified: () => results.push('B verified'), onUnverified: () => {} })
    try {
      probeA.start()
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => results.length && (clearInterval(poll), resolve()), 5)
      })
      expect(results).toEqual(['A unverified'])
      wire.splice(0) // A's requests while B was not connected: lost
      probeB.start()
      for (let i = 0; i < 10 && wire.length > 0; i++) {
        const { to, d } = wire.shift()!
        ;(to === 'A' ? probeA : probeB).handle(d)
      }
      expect(results.sort()).toEqual(['A unverified', 'A verified', 'B verified'])
    } finally {
      probeA.stop()
      probeB.stop()
    }
  })

  it('says goodbye bound to this pair of ICE agents: a goodbye for other credentials or from ourselves is ignored', async () => {
    const sentByA: Uint8Array[] = []
    const goodbyes: string[] = []
    const ufragA = 'aaaaaaaaaaaaaaaa'
    const ufragB = 'bbbbbbbbbbbbbbbb'
    const probeA = new PathProbe({ key, role: 'controlling', timeoutMs: 3000, ufrags: { local: ufragA, remote: ufragB }, send: async (d) => void sentByA.push(d), onVerified: () => {}, onUnverified: () => {}, onGoodbye: () => goodbyes.push('A') })
    const probeB = new PathProbe({ key, role: 'controlled', timeoutMs: 3000, ufrags: { local: ufragB, remote: ufragA }, send: async () => {}, onVerified: () => {}, onUnverified: () => {}, onGoodbye: () => goodbyes.push('B') })
    // A later agent of B's (new credentials) must not take an old goodbye of A's for its own.
    const probeB2 = new PathProbe({ key, role: 'controlled', timeoutMs: 3000, ufrags: { local: 'cccccccccccccccc', remote: ufragA }, send: async () => {}, onVerified: () => {}, onUnverified: () => {}, onGoodbye: () => goodbyes.push('B2') })
    try {
      await probeA.goodbye()
      expect(sentByA).toEqual([]) // never connected: nobody to tell
      probeA.start()
      sentByA.splice(0)
      await probeA.goodbye()
      expect(sentByA.map((d) => openProbe(key, d)?.type)).toEqual(['goodbye', 'goodbye', 'goodbye'])
      expect(openProbe(key, sentByA[0]!)?.id).toBe(goodbyeId(ufragA, ufragB))
      expect(probeB2.handle(sentByA[0]!)).toBe(true)
      expect(probeA.handle(sentByA[0]!)).toBe(false) // our own, reflected
      expect(goodbyes).toEqual([])
      expect(probeB.handle(sentByA[0]!)).toBe(true)
      expect(goodbyes).toEqual(['B'])
      // A goodbye with a forged id (right key, wrong binding) is not one.
      probeB.handle(sealProbe(key, { type: 'goodbye', from: 'controlling', id: goodbyeId(ufragB, ufragA), timestamp: 0 }))
      expect(goodbyes).toEqual(['B'])
    } finally {
      probeA.stop()
      probeB.stop()
      probeB2.stop()
    }
  })

  it('gives up with a plain reason when nobody answers', async () => {
    const reason = await new Promise<string>((resolve) => {
      const probe = new PathProbe({
        key, role: 'controlled', timeoutMs: 300, intervalMs: 50,
        send: async () => {}, onVerified: () => resolve('verified?!'), onUnverified: resolve,
      })
      probe.start()
    })
    expect(reason).toBe('the peer did not answer path probes within 300 ms: it may not be cunicu-ts; the ICE path is connected but unverified')
  })
})

describe('ICE options', () => {
  it('parses STUN URLs', () => {
    expect(parseStunServer('stun:127.0.0.1:3478')).toEqual({ url: 'stun:127.0.0.1:3478', host: '127.0.0.1', port: 3478 })
    expect(parseStunServer('stun:stun.example.org')).toMatchObject({ host: 'stun.example.org', port: 3478 })
    expect(parseStunServer('stun:[::1]:19302')).toEqual({ url: 'stun:[::1]:19302', host: '::1', port: 19302 })
    expect(() => parseStunServer('http://x')).toThrow(IceServerUrlError)
    expect(() => parseStunServer('stun:host:99999')).toThrow(/out of range/)
  })

  it('builds loopback-only and interface options', () => {
    expect(weriftOptions({ loopback: true })).toEqual({
      useIpv4: false, useIpv6: false, additionalHostAddresses: ['127.0.0.1'], interfaceAddresses: { udp4: '127.0.0.1' },
    })
    expect(weriftOptions({ interfaces: ['lo', '10.9.8.7'] }).additionalHostAddresses).toEqual(expect.arrayContaining(['127.0.0.1', '10.9.8.7']))
    expect(() => resolveInterfaceAddresses(['no-such-if0'])).toThrow(/interface "no-such-if0" not found \(known: .*lo/)
  })
})

describe('Session construction', () => {
  it('refuses a session with ourselves', () => {
    const k = PrivateKey.generate()
    expect(() => new Session({ backend: new InprocessBackend(), ours: k, theirs: k.publicKey })).toThrow(/same/)
  })

  it('close() before start() is idempotent and start() afterwards rejects', async () => {
    const [a, b] = [PrivateKey.generate(), PrivateKey.generate()]
    const backend = new InprocessBackend()
    const session = new Session({ backend, ours: a, theirs: b.publicKey })
    await Promise.all([session.close(), session.close()])
    expect(session.state).toBe('closed')
    await expect(session.start()).rejects.toThrow(/closed/)
    await backend.close()
  })

  it('an aborted signal closes the session', async () => {
    const [a, b] = [PrivateKey.generate(), PrivateKey.generate()]
    const backend = new InprocessBackend()
    const controller = new AbortController()
    const session = new Session({ backend, ours: a, theirs: b.publicKey, ice: { loopback: true }, signal: controller.signal })
    try {
      await session.start()
      const closed = new Promise<void>((resolve) => session.events.on((e) => e.type === 'state' && e.state === 'closed' && resolve()))
      controller.abort()
      await closed
      expect(session.state).toBe('closed')
    } finally {
      await session.close()
      await backend.close()
    }
  })
})
