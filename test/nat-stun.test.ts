// Issue 11: one `signal` gives peers both signaling and their server-reflexive candidates. In the netns
// NAT test bed (test/netns/bed.ts) there is no coturn here: `signal --stun-listen` is the only STUN server,
// the sessions get it from GetRelays alone (no --stun flag), gather a server-reflexive candidate on their
// router's public address, and connect directly through their endpoint-independent NATs.
// Needs root (network namespaces): describeNetns skips it only outside CI (test/netns/bed.ts).
import { afterEach, beforeAll, expect, it } from 'vitest'
import { describeNetns, tearDownBeds, NetnsBed, removeStaleNamespaces, requireTools } from './netns/bed.js'
import { cliIn, describePair, lastPair, makePeers, type Peer } from './netns/peers.js'

const STUN_PORT = 3479

let bed: NetnsBed | undefined

afterEach(tearDownBeds)

describeNetns('built-in STUN in the NAT test bed', () => {
  beforeAll(() => {
    requireTools({ nft: 'nftables', ss: 'iproute2' })
    removeStaleNamespaces()
  })

  it("sessions that use only signal's own STUN server get server-reflexive candidates and connect without a relay", async () => {
    bed = new NetnsBed('stun').create({ nat: { a: 'endpoint-independent', b: 'endpoint-independent' } })
    const ip = bed.addresses.publicIp
    const signal = cliIn(bed, bed.ns.pub, ['signal', '--listen', `${ip}:0`, '--stun-listen', `${ip}:${STUN_PORT}`, '--json'])
    const { address, stun } = await signal.waitForEvent((e) => e.type === 'listening', 20_000)
    expect(stun).toBe(`${ip}:${STUN_PORT}`)
    const { a, b } = makePeers()
    const session = (ns: string, self: Peer, other: Peer) =>
      cliIn(bed!, ns, ['session', other.key.publicKey.toString(), '-k', self.file, '-b', `grpc://${address}?insecure=true`, '--interface', 'eth0', '--timeout', '60', '--json'])
    const pa = session(bed.ns.peerA, a, b)
    const pb = session(bed.ns.peerB, b, a)
    const context = () => `A:\n${pa.lines.join('\n')}\n${pa.stderr}\nB:\n${pb.lines.join('\n')}\n${pb.stderr}\nsignal:\n${signal.stderr}`
    await Promise.all([pa, pb].map((p) => p.waitForEvent((e) => e.type === 'verified', 60_000))).catch((err: Error) => {
      throw new Error(`${err.message.split('\n')[0]}\n${context()}`)
    })
    const routers = bed.addresses.routers
    for (const [p, wan] of [[pa, routers.a.wan], [pb, routers.b.wan]] as const) {
      // The STUN server came from the signaling server's GetRelays, and it is the only one.
      expect(p.events.find((e) => e.type === 'relays'), context()).toMatchObject({ stun: [`stun:${ip}:${STUN_PORT}`], turn: [] })
      const srflx = p.events.filter((e) => e.type === 'candidate' && e.side === 'local' && e.candidate.type === 'srflx')
      expect(srflx.length, context()).toBeGreaterThan(0)
      // The reflexive address is the peer's NAT mapping on its router's public side.
      expect(srflx[0]!.candidate.address).toBe(wan)
      const pair = lastPair(p)!
      expect(pair.local.type === 'relay' || pair.remote.type === 'relay', describePair(pair)).toBe(false)
    }
    console.log(`[nat stun] A: ${describePair(lastPair(pa))} | B: ${describePair(lastPair(pb))}`)
    for (const p of [pa, pb]) process.kill(p.child.pid!, 'SIGTERM')
    await Promise.all([pa.exit(15_000), pb.exit(15_000)])
    process.kill(signal.child.pid!, 'SIGTERM')
    expect(await signal.exit(20_000)).toBe(143)
    const stopped = signal.events.find((e) => e.type === 'stopped')!
    expect(stopped.stun.answered, context()).toBeGreaterThanOrEqual(2)
    expect(stopped.stun.rate_limited).toBe(0)
  }, 120_000)
})
