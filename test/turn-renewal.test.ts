// Long-lived relayed sessions (issue 9, item 3): TURN REST credentials from `signal --relay ...&ttl=20s`
// expire long before a `--forward` session ends. A relayed session (one peer behind a symmetric NAT, so
// only coturn gets through) must still carry datagrams 60 s after it connected.
// coturn keeps accepting refreshes of an existing allocation after its credentials expired (it caches the
// key per 5-tuple; measured: a session that only waits passes without renewal), so what expired credentials
// break is the next allocation. The test makes one necessary the way it happens in practice: the TURN
// server restarts (allocations lost) after the first credentials expired. The session notices the lost
// path (ICE consent) and builds a new relayed one with renewed credentials; with the first ones, coturn
// refuses the new ALLOCATE (401), no relay is left, and behind the symmetric NAT no path either.
// Needs root (network namespaces): describeNetns skips it only outside CI (test/netns/bed.ts).
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, expect, it } from 'vitest'
import { CliProcess } from './helpers/cli.js'
import { describeNetns, tearDownBeds, NetnsBed, removeStaleNamespaces, requireTools } from './netns/bed.js'
import { startCoturn, type Coturn } from './netns/coturn.js'
import { describePair, lastPair, makePeers, startSession, startSignal, type Pair } from './netns/peers.js'

const SECRET = 'cunicu-ts-renewal-test-secret'
const TTL_S = 20
/** How long after connecting the path must still carry datagrams. */
const HOLD_MS = 60_000
const UDP_TOOL = fileURLToPath(new URL('./netns/udp-tool.mjs', import.meta.url))
const PORTS = { forwardA: 40001, forwardB: 40002, appB: 40003 }
const LOAD = { count: 500, size: 200, rate: 100 }

const hasRelay = (pair: Pair) => pair.local.type === 'relay' || pair.remote.type === 'relay'

let bed: NetnsBed | undefined
let coturn: Coturn | undefined

afterEach(tearDownBeds)

describeNetns('TURN credential renewal in network namespaces', () => {
  beforeAll(() => {
    requireTools({ nft: 'nftables', turnserver: 'coturn', ss: 'iproute2' })
    removeStaleNamespaces()
  })

  it(`credentials with a ${TTL_S} s TTL: a relayed --forward session still carries datagrams ${HOLD_MS / 1000} s later`, async () => {
    bed = new NetnsBed('ttl').create({ nat: { a: 'symmetric', b: 'endpoint-independent' } })
    coturn = await startCoturn(bed, { secret: SECRET })
    const ip = bed.addresses.publicIp
    const { backend } = await startSignal(bed, [`turn:${ip}:3478?secret=${SECRET}&ttl=${TTL_S}s`])
    const { a, b } = makePeers()
    const pa = startSession(bed, bed.ns.peerA, a, b, backend, ['--forward', `127.0.0.1:${PORTS.forwardA}`])
    const pb = startSession(bed, bed.ns.peerB, b, a, backend, ['--forward', `127.0.0.1:${PORTS.forwardB}`, '--forward-to', `127.0.0.1:${PORTS.appB}`])
    const context = () => `A:\n${pa.lines.join('\n')}\n${pa.stderr}\nB:\n${pb.lines.join('\n')}\n${pb.stderr}\ncoturn:\n${coturn!.log().split('\n').filter((l) => /REFRESH|ALLOCATE|error/i.test(l)).slice(-40).join('\n')}`
    await Promise.all([pa, pb].map((p) => p.waitForEvent((e) => e.type === 'verified', 60_000))).catch((err: Error) => {
      throw new Error(`${err.message.split('\n')[0]}\n${context()}`)
    })
    const connectedAt = Date.now()
    for (const p of [pa, pb]) expect(p.events.find((e) => e.type === 'relays'), context()).toMatchObject({ turn: [{ source: 'server' }] })
    const first = lastPair(pa)!
    expect(hasRelay(first), describePair(first)).toBe(true)

    // Time itself is what this test is about: wait until the first credentials have expired.
    const expires = Date.parse(pa.events.find((e) => e.type === 'relays')!.turn[0].expires)
    await sleep(Math.max(0, expires - Date.now() + 2_000))
    coturn.stop()
    const restartedAt = Date.now()
    coturn = await startCoturn(bed, { secret: SECRET })
    // The old relayed path is dead now; a new one needs new allocations, which only renewed credentials get.
    const pairs = (p: CliProcess) => p.events.filter((e) => e.type === 'pair')
    const pairsBefore = pairs(pa).length
    const newRelayPair = () => pairs(pa).length > pairsBefore && hasRelay(pairs(pa).at(-1) as Pair)
    await pa
      .waitForEvent(newRelayPair, 90_000)
      .catch((err: Error) => {
        throw new Error(`no new relayed pair after the TURN server restarted: ${err.message.split('\n')[0]}\n${context()}`)
      })
    const replaced = pairs(pa).at(-1) as Pair
    console.log(
      `[turn-renewal] TURN server restarted ${Math.round((restartedAt - expires) / 1000)} s after the first credentials expired; ` +
        `a new relayed pair ${((Date.now() - restartedAt) / 1000).toFixed(1)} s later: ${describePair(replaced)}`,
    )
    // Both ends verified the new path.
    const verified = (p: CliProcess) => p.events.filter((e) => e.type === 'verified').length
    await Promise.all([pa, pb].map((p) => p.waitForEvent(() => verified(p) >= 2, 30_000)))
    await sleep(Math.max(0, connectedAt + HOLD_MS - Date.now()))

    const receiver = new CliProcess(bed.spawn(bed.ns.peerB, [process.execPath, UDP_TOOL, 'recv', `127.0.0.1:${PORTS.appB}`, String(LOAD.count)]))
    await receiver.waitForEvent((e) => e.type === 'listening')
    const sender = new CliProcess(
      bed.spawn(bed.ns.peerA, [process.execPath, UDP_TOOL, 'send', `127.0.0.1:${PORTS.forwardA}`, String(LOAD.count), String(LOAD.size), String(LOAD.rate)]),
    )
    await sender.waitForEvent((e) => e.type === 'sent', 60_000)
    const received = await receiver.waitForEvent((e) => e.type === 'received', 60_000)
    const pair = lastPair(pa)!
    console.log(
      `[turn-renewal] ${Math.round((Date.now() - connectedAt) / 1000)} s after connecting: ${received.distinct}/${LOAD.count} datagrams arrived; A's pair ${describePair(pair)}`,
    )
    expect(received.distinct, context()).toBeGreaterThanOrEqual(LOAD.count * 0.95)
    // Both sessions renewed their credentials (each renewal is a 'relays' event with renewed: true).
    for (const p of [pa, pb]) expect(p.events.filter((e) => e.type === 'relays' && e.renewed === true).length, context()).toBeGreaterThanOrEqual(2)
    expect(hasRelay(pair), describePair(pair)).toBe(true)
  }, 240_000)
})
