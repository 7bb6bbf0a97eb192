// cunīcu's backend acceptance scenario (pkg/signaling/backend_test.go, in test/helpers/acceptance.ts), run
// against the inprocess backend and a real gRPC server: n peers, each with its own backend instance, two
// handlers per (peer, other peer) plus two any-sender handlers per peer; every peer sends one candidate to
// every other, and every handler must see exactly the messages meant for it, once each.
import { afterEach, describe, expect, it } from 'vitest'
import { SignalingServer } from '../src/core/server/signaling-server.js'
import { PEERS, runScenario } from './helpers/acceptance.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

describe('backend acceptance (cunīcu scenario)', () => {
  it('inprocess:', async () => {
    await runScenario('inprocess:', (b) => closers.push(() => b.close()))
  })

  it('grpc:// against a real SignalingServer', async () => {
    const server = await SignalingServer.start({ listen: '127.0.0.1:0' })
    closers.push(() => server.close(500))
    await runScenario(`grpc://${server.address}?insecure=true`, (b) => closers.push(() => b.close()))
    const stats = server.stats()
    expect(stats.subscribers).toBe(PEERS)
    expect(stats.published).toBe(2 * PEERS * (PEERS - 1))
    expect(stats.delivered).toBe(stats.published)
    expect(stats.dropped).toBe(0)
  })
})
