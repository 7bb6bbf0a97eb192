// Long-lived relayed sessions (issue 9, item 3): TURN REST credentials from `signal --relay ...&ttl=20s`
// expire long before a `--forward` session ends. A relayed session (one peer behind a symmetric NAT, so
// only coturn gets through) must still carry datagrams 60 s after it connected. coturn runs with a short
// max-allocate-lifetime so the allocation has to be refreshed several times within the test, after the
// first credentials expired.
// Needs root (network namespaces); skipped only without that privilege, like nat.test.ts.
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CliProcess, killAll } from './helpers/cli.js'
import { netnsPrivilege, NetnsBed, removeStaleNamespaces, requireTools } from './netns/bed.js'
import { startCoturn, type Coturn } from './netns/coturn.js'
import { describePair, lastPair, makePeers, startSession, startSignal } from './netns/peers.js'

const privilege = netnsPrivilege()
const SECRET = 'cunicu-ts-renewal-test-secret'
const TTL_S = 20
/** How long after connecting the path must still carry datagrams. */
const HOLD_MS = 60_000
const UDP_TOOL = fileURLToPath(new URL('./netns/udp-tool.mjs', import.meta.url))
const PORTS = { forwardA: 40001, forwardB: 40002, appB: 40003 }
const LOAD = { count: 500, size: 200, rate: 100 }

let bed: NetnsBed | undefined
let coturn: Coturn | undefined

afterEach(async () => {
  await killAll()
  coturn?.stop()
  coturn = undefined
  const current = bed
  bed = undefined
  if (current) {
    current.destroy()
    expect(current.leftovers()).toEqual([])
  }
})

describe.skipIf(!privilege.ok)(`TURN credential renewal in network namespaces${privilege.ok ? '' : ` — skipped: ${privilege.reason}`}`, () => {
  beforeAll(() => {
    requireTools({ nft: 'nftables', turnserver: 'coturn', ss: 'iproute2' })
    removeStaleNamespaces()
  })

  it(`credentials with a ${TTL_S} s TTL: a relayed --forward session still carries datagrams ${HOLD_MS / 1000} s later`, async () => {
    bed = new NetnsBed('ttl').create({ nat: { a: 'symmetric', b: 'endpoint-independent' } })
    // Allocations live 15 s at most: refreshed every ~12 s, so most refreshes come after the TTL.
    coturn = await startCoturn(bed, { secret: SECRET, extraConfig: ['max-allocate-lifetime=15'] })
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
    expect(first.local.type === 'relay' || first.remote.type === 'relay', describePair(first)).toBe(true)

    // Time itself is what this test is about: the first credentials expire 20 s after they were issued.
    await sleep(HOLD_MS)

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
    expect(pair.local.type === 'relay' || pair.remote.type === 'relay', describePair(pair)).toBe(true)
  }, 240_000)
})
