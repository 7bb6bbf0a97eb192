// IceAgent: the werift workarounds of ICE-NOTES hold (no default STUN, loopback-only gathering, our
// credentials on the candidates, a connect() that fails instead of hanging, close() that settles it).
import { createSocket, type Socket } from 'node:dgram'
import { describe, expect, it } from 'vitest'
import { generateCredentials } from '../src/core/session/credentials.js'
import type { CandidateInfo } from '../src/core/session/events.js'
import { IceAgent, IceConnectError } from '../src/core/session/ice-agent.js'

async function silentSocket(): Promise<Socket> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return socket
}

function hostCandidate(port: number): CandidateInfo {
  return { type: 'host', protocol: 'udp', address: '127.0.0.1', port, priority: 2130706431, foundation: 'silent' }
}

describe('IceAgent', () => {
  it('gathers only 127.0.0.1 in loopback mode, with our credentials and no STUN server', async () => {
    const local = generateCredentials()
    const agent = new IceAgent({ controlling: true, local, remote: generateCredentials(), ice: { loopback: true } })
    const seen: CandidateInfo[] = []
    agent.localCandidates.on((c) => void seen.push(c))
    try {
      expect(agent.connection.stunServer).toBeUndefined()
      await agent.gather()
      expect(seen.map((c) => `${c.type} ${c.address}`)).toEqual(['host 127.0.0.1'])
      expect(agent.connection.localCandidates[0]?.ufrag).toBe(local.ufrag)
    } finally {
      await agent.close()
    }
  })

  it('fails instead of hanging when the peer never answers, and closes itself', async () => {
    const silent = await silentSocket()
    const agent = new IceAgent({ controlling: true, local: generateCredentials(), remote: generateCredentials(), ice: { loopback: true } })
    try {
      await agent.gather()
      await agent.addRemoteCandidate(hostCandidate((silent.address() as { port: number }).port))
      let checking = false
      const started = performance.now()
      const error = await agent.connect({ timeoutMs: 8000, quietMs: 200, onChecking: () => (checking = true) }).catch((e: unknown) => e)
      const ms = performance.now() - started
      expect(error).toBeInstanceOf(IceConnectError)
      expect((error as Error).message).toMatch(/all 1 candidate pair failed/)
      expect(checking).toBe(true)
      // One check is 5 sends, failing at ~1.57 s (ICE-NOTES §3): the failed pair ends connect(), not the 8 s
      // deadline, whose error would say "did not connect within".
      expect(agent.closed).toBe(true)
      console.log(`silent peer: connect() failed after ${ms.toFixed(0)} ms`)
    } finally {
      await agent.close()
      silent.close()
    }
  })

  it('fails at the deadline when candidates keep it hoping', async () => {
    const agent = new IceAgent({ controlling: false, local: generateCredentials(), remote: generateCredentials(), ice: { loopback: true } })
    try {
      await agent.gather()
      // A candidate werift cannot pair (IPv6 without a v6 socket): no pair ever fails, so only the deadline ends it.
      await agent.addRemoteCandidate({ ...hostCandidate(9), address: '::1' })
      await expect(agent.connect({ timeoutMs: 500 })).rejects.toThrow('ICE did not connect within 500 ms')
    } finally {
      await agent.close()
    }
  })

  it('close() settles a pending connect()', async () => {
    const silent = await silentSocket()
    const agent = new IceAgent({ controlling: true, local: generateCredentials(), remote: generateCredentials(), ice: { loopback: true } })
    try {
      await agent.gather()
      await agent.addRemoteCandidate(hostCandidate((silent.address() as { port: number }).port))
      const connecting = agent.connect({ timeoutMs: 10_000 })
      await agent.close()
      await expect(connecting).rejects.toThrow(/closed while connecting/)
    } finally {
      await agent.close()
      silent.close()
    }
  })
})

describe('IceAgent nomination', () => {
  it('counts a pair as connected when werift nominates it, with consent to send, not at its next 20 ms tick', async () => {
    const a = generateCredentials()
    const b = generateCredentials()
    const controlling = new IceAgent({ controlling: true, local: a, remote: b, ice: { loopback: true } })
    const controlled = new IceAgent({ controlling: false, local: b, remote: a, ice: { loopback: true } })
    const received: string[] = []
    controlled.datagrams.setHandler((data) => void received.push(Buffer.from(data).toString()))
    try {
      controlling.localCandidates.on((c) => void controlled.addRemoteCandidate(c))
      controlled.localCandidates.on((c) => void controlling.addRemoteCandidate(c))
      await Promise.all([controlling.gather(), controlled.gather()])
      const seenAtConnect = await Promise.all(
        [controlling, controlled].map(async (agent) => {
          await agent.connect({ timeoutMs: 5000 })
          // werift itself moves to 'connected' only at its scheduling loop's next turn, a later macrotask.
          return { weriftState: agent.connection.state, sent: agent === controlling ? agent.send(Buffer.from('first datagram')) : true }
        }),
      )
      for (const seen of seenAtConnect) expect(seen.weriftState).not.toBe('connected')
      expect(seenAtConnect[0]?.sent).toBe(true)
      const deadline = Date.now() + 2000
      while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      expect(received).toEqual(['first datagram'])
    } finally {
      await Promise.all([controlling.close(), controlled.close()])
    }
  })
})
