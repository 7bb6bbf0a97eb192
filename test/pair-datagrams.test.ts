// The datagram tap beneath werift (pair-datagrams.ts): two real agents on loopback; data from the peer's
// agent counts as from the path, the same bytes from any other socket do not (raw forwarding relies on it);
// STUN still reaches werift (the agents connect and keep consent through the tap).
import { createSocket } from 'node:dgram'
import { describe, expect, it } from 'vitest'
import { generateCredentials } from '../src/core/session/credentials.js'
import type { CandidateInfo } from '../src/core/session/events.js'
import { IceAgent } from '../src/core/session/ice-agent.js'
import { mayBeStun } from '../src/core/session/pair-datagrams.js'

describe('mayBeStun', () => {
  it('passes STUN headers (top bits 00, magic cookie) and nothing that lacks either', () => {
    const header = Buffer.alloc(20)
    header.writeUInt16BE(0x0001, 0) // Binding request
    header.writeUInt32BE(0x2112a442, 4)
    expect(mayBeStun(header)).toBe(true)
    expect(mayBeStun(header.subarray(0, 19))).toBe(false)
    const noCookie = Buffer.from(header)
    noCookie[4] = 0
    expect(mayBeStun(noCookie)).toBe(false)
    const topBits = Buffer.from(header)
    topBits[0] = 0x40
    expect(mayBeStun(topBits)).toBe(false)
    // A WireGuard handshake initiation: type 1, three zero bytes, then a random sender index.
    const wireguard = Buffer.alloc(148)
    wireguard[0] = 1
    wireguard.writeUInt32LE(0xdeadbeef, 4)
    expect(mayBeStun(wireguard)).toBe(false)
  })
})

describe('PairDatagrams', () => {
  it('flags data from the connected peer as from the path, and the same bytes from a stranger as foreign', async () => {
    const [ca, cb] = [generateCredentials(), generateCredentials()]
    const a = new IceAgent({ controlling: true, local: ca, remote: cb, ice: { loopback: true } })
    const b = new IceAgent({ controlling: false, local: cb, remote: ca, ice: { loopback: true } })
    const got: { text: string; fromPath: boolean }[] = []
    b.datagrams.setHandler((d, fromPath) => void got.push({ text: String(d), fromPath }))
    const localsOfB: CandidateInfo[] = []
    a.localCandidates.on((c) => void b.addRemoteCandidate(c))
    b.localCandidates.on((c) => (localsOfB.push(c), void a.addRemoteCandidate(c)))
    const stranger = createSocket('udp4')
    try {
      await Promise.all([a.gather(), b.gather()])
      await Promise.all([a.connect({ timeoutMs: 10_000 }), b.connect({ timeoutMs: 10_000 })])
      expect(a.send(Buffer.from('from a'))).toBe(true)
      await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.1', resolve))
      const port = localsOfB[0]!.port
      await new Promise<void>((resolve, reject) => stranger.send(Buffer.from('from a stranger'), port, '127.0.0.1', (e) => (e ? reject(e) : resolve())))
      const deadline = Date.now() + 5000
      while (got.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      expect(got.sort((x, y) => x.text.localeCompare(y.text))).toEqual([
        { text: 'from a', fromPath: true },
        { text: 'from a stranger', fromPath: false },
      ])
      expect(b.datagrams.foreign).toBe(1)
    } finally {
      await new Promise<void>((resolve) => stranger.close(() => resolve()))
      await Promise.all([a.close(), b.close()])
    }
    // Closed: nothing more is sent.
    expect(a.send(Buffer.from('late'))).toBe(false)
  })
})
