// cunīcu's backend acceptance scenario (pkg/signaling/backend_test.go) as a helper, so multicast and the
// Redis cluster run exactly the scenario of backend-acceptance.test.ts: n peers, each with its own backend
// (peer i opens urls[i % urls.length], which spreads the peers over several server instances), two handlers
// per (peer, other peer) plus two any-sender handlers per peer; every peer sends one candidate to every
// other, then a barrier round; every handler must see exactly the messages meant for it, once each.
import { expect } from 'vitest'
import type { Backend, MessageHandler } from '../../src/core/backend.js'
import { openBackend } from '../../src/core/backends/index.js'
import { PrivateKey, PublicKey } from '../../src/core/keys.js'
import { Message } from '../../src/gen/signaling/signaling.js'
import { deferred, withTimeout } from './wait.js'

export const PEERS = 10
/** A port no test peer uses: the marker of the final barrier round. */
const BARRIER = 65000

/** Records, per sender, the candidate ports a handler saw. */
class CountingHandler implements MessageHandler {
  readonly seen = new Map<string, number[]>()
  errors = 0
  constructor(private readonly onAny: () => void) {}
  onMessage({ from, message }: { from: PublicKey; message: Message }): void {
    const list = this.seen.get(from.toString()) ?? []
    list.push(message.candidate?.port ?? -1)
    this.seen.set(from.toString(), list)
    this.onAny()
  }
  onError(): void {
    this.errors++
  }
  ports(from: PublicKey, excludeBarrier = true): number[] {
    return (this.seen.get(from.toString()) ?? []).filter((p) => !excludeBarrier || p !== BARRIER)
  }
}

export interface ScenarioResult {
  keys: PrivateKey[]
  backends: Backend[]
  /** Handler deliveries in total (both rounds). */
  total: number
}

/** Runs the scenario; every backend it opens is handed to `track` (for the caller's afterEach). */
export async function runScenario(urls: string | readonly string[], track: (backend: Backend) => void): Promise<ScenarioResult> {
  const list = typeof urls === 'string' ? [urls] : urls
  const keys = Array.from({ length: PEERS }, () => PrivateKey.generate())
  const backends: Backend[] = []
  for (let i = 0; i < PEERS; i++) {
    const b = await openBackend(list[i % list.length]!, { connectTimeoutMs: 5000, publishTimeoutMs: 5000 })
    track(b)
    backends.push(b)
  }

  let total = 0
  let waitingFor = 0
  let reached = deferred()
  const onAny = (): void => {
    total++
    if (total === waitingFor) reached.resolve()
  }
  const expectTotal = (n: number): Promise<void> => {
    waitingFor = n
    if (total >= n) reached.resolve()
    return withTimeout(reached.promise, 20_000, `${n} deliveries (have ${total})`)
  }

  // specific[i][j]: the two handlers of peer i for messages from peer j; any[i]: peer i's any-sender pair.
  const specific: CountingHandler[][][] = []
  const any: CountingHandler[][] = []
  for (let i = 0; i < PEERS; i++) {
    specific.push([])
    for (let j = 0; j < PEERS; j++) {
      const pair = i === j ? [] : [new CountingHandler(onAny), new CountingHandler(onAny)]
      specific[i]!.push(pair)
      for (const h of pair) await backends[i]!.subscribe({ ours: keys[i]!, theirs: keys[j]!.publicKey }, h)
    }
    any.push([new CountingHandler(onAny), new CountingHandler(onAny)])
    for (const h of any[i]!) await backends[i]!.subscribe({ ours: keys[i]!, theirs: PublicKey.ANY }, h)
  }

  const sends: Promise<unknown>[] = []
  for (let i = 0; i < PEERS; i++) {
    for (let j = 0; j < PEERS; j++) {
      if (i !== j) sends.push(backends[i]!.publish(keys[i]!, keys[j]!.publicKey, Message.create({ candidate: { port: i } })))
    }
  }
  await Promise.all(sends)
  // Each message reaches 2 specific + 2 any-sender handlers of its recipient.
  const perRound = PEERS * (PEERS - 1) * 4
  await expectTotal(perRound)

  // Barrier: one more round sent after every first-round publish completed. Delivery per subscriber is
  // in order on every backend, so once the barrier arrived, any duplicate of round one would have too.
  reached = deferred()
  await Promise.all(keys.flatMap((k, i) => keys.map((to, j) => (i === j ? undefined : backends[i]!.publish(k, to.publicKey, Message.create({ candidate: { port: BARRIER } }))))))
  await expectTotal(2 * perRound)
  expect(total).toBe(2 * perRound)

  for (let i = 0; i < PEERS; i++) {
    for (let j = 0; j < PEERS; j++) {
      if (i === j) continue
      for (const h of specific[i]![j]!) {
        expect(h.ports(keys[j]!.publicKey), `peer ${i}'s handler for peer ${j}`).toEqual([j])
        expect(h.seen.size).toBe(1)
        expect(h.errors).toBe(0)
      }
    }
    for (const h of any[i]!) {
      expect(h.seen.size, `peer ${i}'s any-sender handler`).toBe(PEERS - 1)
      for (let j = 0; j < PEERS; j++) {
        expect(h.ports(keys[j]!.publicKey), `peer ${i}'s any-sender handler, from peer ${j}`).toEqual(i === j ? [] : [j])
      }
      expect(h.errors).toBe(0)
    }
  }
  return { keys, backends, total }
}
