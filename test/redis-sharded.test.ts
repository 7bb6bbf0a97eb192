// signal --cluster redis-cluster://: two SignalingServer instances (and two signal processes) on a real
// Redis Cluster — 3 masters with a replica each, Debian's redis-server on loopback (helpers/redis-cluster.ts),
// every node killed by PID at the end. Subscribers sit on instance A, publishers on instance B, with keys
// spread over all three shards. A master killed (SIGKILL) and restarted at once comes back as the same
// shard's master; a master killed for good is replaced by its replica: either way every subscriber on that
// shard gets envelopes again within RESUME_BOUND_MS. The old master restarted rejoins as a replica and takes
// over again when the new master is killed. No envelope is ever delivered twice (counted per envelope id).
// A slot moved to another master (CLUSTER SETSLOT): what the old master refuses with MOVED is sent again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Backend } from '../src/core/backend.js'
import { PrivateKey } from '../src/core/keys.js'
import { channelName } from '../src/core/server/cluster/channel.js'
import { keySlot } from '../src/core/server/cluster/key-slot.js'
import { Message } from '../src/gen/signaling/signaling.js'
import { runCli } from './helpers/cli.js'
import { clusterKit, recorder, twoSignalProcesses, waitFor, type Instance } from './helpers/cluster-kit.js'
import { scrape } from './helpers/metrics.js'
import { unusedPort } from './helpers/net.js'
import { RedisServer } from './helpers/redis.js'
import { RedisClusterBed } from './helpers/redis-cluster.js'
import { selfSignedCert } from './helpers/tls.js'

/**
 * From SIGKILL of a master to the first envelope delivered again to each subscriber on its shard:
 * cluster-node-timeout (1 s) + the replica's election (~1 s) + our rediscovery (every 250 ms) + resubscribe.
 */
const RESUME_BOUND_MS = 8000
const KEYS_PER_SHARD = 5

let bed: RedisClusterBed
beforeAll(async () => {
  bed = await RedisClusterBed.start()
}, 60_000)
afterAll(async () => {
  await bed?.kill()
})

const { instance, backend } = clusterKit()

interface Subscriber {
  key: PrivateKey
  channel: string
  slot: number
  handler: ReturnType<typeof recorder>
}

/** Subscribers on `a` for keys spread so that each of the three shards holds KEYS_PER_SHARD of them. */
async function subscribersOnAllShards(
  a: Pick<Instance, 'url'>,
  sender: PrivateKey,
  on: RedisClusterBed = bed,
): Promise<{ subscribers: Subscriber[]; byMaster: Map<number, Subscriber[]> }> {
  const topology = await on.topology()
  const masterOf = (slot: number) => topology.find((n) => n.master && n.slots.some(([from, to]) => slot >= from && slot <= to))!.port
  const byMaster = new Map<number, Subscriber[]>()
  const onA = await backend(a.url)
  const subscribers: Subscriber[] = []
  for (let tries = 0; tries < 1000 && subscribers.length < 3 * KEYS_PER_SHARD; tries++) {
    const key = PrivateKey.generate()
    const channel = channelName(key.publicKey.bytes)
    const slot = keySlot(channel)
    const shard = byMaster.get(masterOf(slot)) ?? []
    if (shard.length >= KEYS_PER_SHARD) continue
    const subscriber = { key, channel, slot, handler: recorder() }
    await onA.subscribe({ ours: key, theirs: sender.publicKey }, subscriber.handler)
    shard.push(subscriber)
    byMaster.set(masterOf(slot), shard)
    subscribers.push(subscriber)
  }
  expect(byMaster.size).toBe(3)
  return { subscribers, byMaster }
}

/** Every port a subscriber received, at most once each: the "nothing delivered twice" check. */
function expectNoDuplicates(subscribers: Subscriber[]): void {
  for (const s of subscribers) expect(s.handler.ports.length, `${s.channel}: ${s.handler.ports.join(',')}`).toBe(new Set(s.handler.ports).size)
}

/** One envelope per subscriber from B, each with a fresh id; resolves once every one arrived (10 s at most). */
async function roundTrip(publisher: Backend, sender: PrivateKey, subscribers: Subscriber[], firstId: number): Promise<void> {
  await Promise.all(subscribers.map((s, i) => publisher.publish(sender, s.key.publicKey, Message.create({ candidate: { port: firstId + i } }))))
  const deadline = Date.now() + 10_000
  for (const [i, s] of subscribers.entries()) {
    while (!s.handler.ports.includes(firstId + i)) {
      if (Date.now() > deadline) throw new Error(`envelope ${firstId + i} did not reach ${s.channel} (got ${s.handler.ports.join(',')})`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
}

/**
 * Instances A and B on the bed, subscribers on A spread over all three shards, B's publisher, and one round
 * trip through every shard: the start of each test below.
 */
async function twoInstancesServingAllShards() {
  const [a, b] = [await instance(bed.url), await instance(bed.url)]
  const sender = PrivateKey.generate()
  const { subscribers, byMaster } = await subscribersOnAllShards(a, sender)
  const publisher = await backend(b.url)
  await roundTrip(publisher, sender, subscribers, 1)
  return { a, b, sender, subscribers, byMaster, publisher }
}

/**
 * Kills the master on `port` (and with `restart` starts it again at once); then publishes to every subscriber of that shard every 100 ms until each got
 * one of those envelopes (bounded by 3 × RESUME_BOUND_MS). Returns each subscriber's resume time in ms.
 */
async function killAndMeasureResume(
  port: number,
  publisher: Backend,
  sender: PrivateKey,
  shard: Subscriber[],
  firstId: number,
  restart = false,
  on: RedisClusterBed = bed,
): Promise<number[]> {
  const before = shard.map((s) => s.handler.ports.length)
  await on.node(port).kill()
  const killedAt = Date.now()
  // Back before cluster-node-timeout: the same node serves the shard again, no failover.
  if (restart) await on.node(port).start()
  const resumed = new Map<number, number>()
  let id = firstId
  while (resumed.size < shard.length && Date.now() - killedAt < 3 * RESUME_BOUND_MS) {
    await Promise.all(
      shard.map((s, i) => (resumed.has(i) ? undefined : publisher.publish(sender, s.key.publicKey, Message.create({ candidate: { port: id++ } })))),
    )
    await new Promise((resolve) => setTimeout(resolve, 100))
    for (const [i, s] of shard.entries()) if (!resumed.has(i) && s.handler.ports.length > before[i]!) resumed.set(i, Date.now() - killedAt)
  }
  expect(resumed.size, `subscribers on the failed-over shard that got envelopes again`).toBe(shard.length)
  return [...resumed.values()]
}

describe('signal --cluster redis-cluster:// (sharded Pub/Sub)', () => {
  it('carries envelopes between instances over all three shards, each channel subscribed on its own shard only', async () => {
    const [a, b] = [await instance(bed.url), await instance(bed.url)]
    expect(a.events[0]).toMatchObject({ state: 'connected', url: bed.url })
    const sender = PrivateKey.generate()
    const { subscribers, byMaster } = await subscribersOnAllShards(a, sender)
    const publisher = await backend(b.url)
    await roundTrip(publisher, sender, subscribers, 1)
    await roundTrip(publisher, sender, subscribers, 100)
    expectNoDuplicates(subscribers)
    expect(subscribers.every((s) => s.handler.ports.length === 2)).toBe(true)
    expect(a.server.stats().cluster).toMatchObject({ connected: true, channels: subscribers.length, received: 2 * subscribers.length, duplicates: 0 })
    expect(b.server.stats().cluster).toMatchObject({ connected: true, channels: 0, published: 2 * subscribers.length, publishFailed: 0 })

    for (const [port, shard] of byMaster) {
      const node = bed.node(port)
      // Our slot computation agrees with Redis, and each master holds exactly its shard's channels, sharded.
      for (const s of shard) expect(Number(await node.command('CLUSTER', 'KEYSLOT', s.channel))).toBe(s.slot)
      const sharded = ((await node.command('PUBSUB', 'SHARDCHANNELS', 'cunicu:env:*')) as string[]).map(String).sort()
      expect(sharded).toEqual(shard.map((s) => s.channel).sort())
      expect(await node.channels('cunicu:env:*')).toEqual([]) // no classic Pub/Sub
    }
  }, 60_000)

  it('a master killed and restarted at once (no failover): its subscribers get envelopes again; nothing twice', async () => {
    const { a, b, sender, subscribers, byMaster, publisher } = await twoInstancesServingAllShards()
    const [restarted, shard] = [...byMaster][1]!
    const recovered = a.next('recovered', 3 * RESUME_BOUND_MS)
    const resumeMs = await killAndMeasureResume(restarted, publisher, sender, shard, 1000, true)
    console.log(`redis-cluster master restarted: subscribers on its shard resumed after ${Math.min(...resumeMs)}–${Math.max(...resumeMs)} ms`)
    expect(Math.max(...resumeMs)).toBeLessThanOrEqual(RESUME_BOUND_MS)
    await recovered
    await roundTrip(publisher, sender, subscribers, 2000)
    expectNoDuplicates(subscribers)
    // A publish whose answer died with the connection is sent again; had it arrived, the copy is counted in
    // stats.duplicates and not delivered (expectNoDuplicates above): the count is not asserted.
    expect(a.server.stats().cluster).toMatchObject({ connected: true, outages: 1 })
    await bed.waitHealthy()
  }, 60_000)

  it(`a master killed and failed over: every subscriber on its shard gets envelopes again within ${RESUME_BOUND_MS} ms; restarted, it serves again; nothing twice`, async () => {
    const { a, b, sender, subscribers, byMaster, publisher } = await twoInstancesServingAllShards()

    const [killed, shard] = [...byMaster][0]!
    const recovered = a.next('recovered', 3 * RESUME_BOUND_MS)
    const resumeMs = await killAndMeasureResume(killed, publisher, sender, shard, 1000)
    console.log(`redis-cluster failover: subscribers on the killed shard resumed after ${Math.min(...resumeMs)}–${Math.max(...resumeMs)} ms`)
    expect(Math.max(...resumeMs)).toBeLessThanOrEqual(RESUME_BOUND_MS)
    expect(await recovered).toMatchObject({ state: 'recovered', resubscribed: shard.length })
    expect(a.events.map((e) => e.state)).toEqual(['connected', 'lost', 'recovered'])
    const statsA = a.server.stats().cluster!
    // As above, a copy may arrive and be counted in stats.duplicates; nothing is delivered twice (checked at the end).
    expect(statsA).toMatchObject({ connected: true, outages: 1, resubscribed: shard.length })
    expect(statsA.rediscoveries).toBeGreaterThanOrEqual(1)
    // The other shards were never interrupted, and everyone is served after the failover.
    await roundTrip(publisher, sender, subscribers, 2000)

    // The old master comes back: it rejoins as the replica of the one that took over.
    await bed.node(killed).start()
    await bed.waitHealthy()
    const promoted = await bed.masterOfSlot(shard[0]!.slot)
    expect(promoted).not.toBe(killed)
    await roundTrip(publisher, sender, subscribers, 3000)

    // Kill the promoted master: the restarted node takes the shard back; the subscribers follow it again.
    const again = await killAndMeasureResume(promoted, publisher, sender, shard, 4000)
    console.log(`redis-cluster failover back to the restarted master: resumed after ${Math.min(...again)}–${Math.max(...again)} ms`)
    expect(Math.max(...again)).toBeLessThanOrEqual(RESUME_BOUND_MS)
    expect(await bed.masterOfSlot(shard[0]!.slot)).toBe(killed)
    await roundTrip(publisher, sender, subscribers, 5000)
    expect(a.server.stats().cluster).toMatchObject({ connected: true, outages: 2, resubscribed: 2 * shard.length })
    expectNoDuplicates(subscribers)
  }, 120_000)

  it('a slot moved to another master (CLUSTER SETSLOT): the publishes the old master refuses with MOVED or ASK are sent to the new one, none fails; the subscriber follows; nothing twice', async () => {
    const { a, b, sender, subscribers, byMaster, publisher } = await twoInstancesServingAllShards()

    const [from, shard] = [...byMaster][0]!
    const to = [...byMaster.keys()].find((port) => port !== from)!
    const moved = shard[0]!
    const topology = await bed.topology()
    const idOf = (port: number) => topology.find((n) => n.port === port)!.id
    const masters = topology.filter((n) => n.master && !n.failed).map((n) => n.port)
    /** Moves the slot as redis-cli --cluster reshard does (no keys to migrate: channels are not keys). */
    const moveSlot = async (source: number, target: number) => {
      const slot = String(moved.slot)
      await bed.node(target).command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', idOf(source))
      await bed.node(source).command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', idOf(target))
      // The new owner first (it bumps its config epoch, so the cluster keeps its claim), then the old one, then the rest.
      for (const port of [target, source, ...masters.filter((p) => p !== target && p !== source)]) await bed.node(port).command('CLUSTER', 'SETSLOT', slot, 'NODE', idOf(target))
    }
    // Publish to the moved channel's subscriber every 10 ms, through the move and 1 s past it.
    const sentAt = new Map<number, number>()
    let id = 10_000
    const recovered = a.next('recovered', 10_000).then(() => Date.now())
    let movedAt: number | undefined
    while (movedAt === undefined || Date.now() - movedAt < 1000) {
      const port = id++
      sentAt.set(port, Date.now())
      await publisher.publish(sender, moved.key.publicKey, Message.create({ candidate: { port } }))
      await new Promise((resolve) => setTimeout(resolve, 10))
      if (movedAt === undefined && id >= 10_020) {
        await moveSlot(from, to)
        movedAt = Date.now()
      }
    }
    // Replicas learn the move by gossip: the node that answers CLUSTER NODES may lag a little.
    await waitFor(async () => (await bed.masterOfSlot(moved.slot)) === to, 'the cluster naming the new master', 5000)
    const resubscribedAt = await recovered
    // B: every publish the old master refused with MOVED went to the new master; none counted failed.
    const statsB = b.server.stats().cluster!
    expect(statsB.retried).toBeGreaterThan(0)
    expect(statsB.publishFailed).toBe(0)
    // A: its subscription followed the slot; what was published after that all arrived, and nothing twice.
    const deadline = Date.now() + 5000
    const after = [...sentAt].filter(([, at]) => at > resubscribedAt).map(([port]) => port)
    const missingAfter = () => after.filter((port) => !moved.handler.ports.includes(port))
    while (missingAfter().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(missingAfter(), 'published after the subscriber followed the slot, never arrived').toEqual([])
    expect(a.server.stats().cluster).toMatchObject({ resubscribed: 1 })
    // A followed the slot on the old master's MOVED answer, without waiting for a discovery.
    expect(a.server.stats().cluster!.followed).toBeGreaterThanOrEqual(1)
    expectNoDuplicates(subscribers)
    const lost = [...sentAt.keys()].filter((port) => !moved.handler.ports.includes(port))
    console.log(`redis-cluster slot moved: ${sentAt.size} envelopes, ${statsB.retried} sent again after MOVED/ASK, ${lost.length} lost while the subscriber moved (${resubscribedAt - movedAt!} ms)`)
    // Back to its first master; once A follows it, B's first publish there is refused and sent again.
    const back = a.next('recovered', 10_000)
    await moveSlot(to, from)
    await back
    await roundTrip(publisher, sender, subscribers, 50_000)
  }, 60_000)

  it('a planned failover (CLUSTER FAILOVER on a replica): the subscribers follow the shard to its new master on its MOVED answer and get envelopes again; nothing twice (what the move cost is printed)', async () => {
    const { a, b, sender, subscribers, byMaster, publisher } = await twoInstancesServingAllShards()
    // A shard whose replica is up (an earlier test leaves one shard without its replica).
    const topology = await bed.topology()
    const replicaOf = (port: number) => topology.find((n) => !n.master && !n.failed && n.masterId === topology.find((m) => m.port === port)!.id)
    const [oldMaster, shard] = [...byMaster].find(([port]) => replicaOf(port) !== undefined)!
    const replica = replicaOf(oldMaster)!.port
    // Every 10 ms one envelope to each subscriber of the shard, through the failover and 500 ms past it.
    const sent: number[][] = shard.map(() => [])
    let id = 10_000
    let promotedAt: number | undefined
    const followed = a.next('recovered', 10_000).then(() => Date.now())
    const failover = bed.node(replica).command('CLUSTER', 'FAILOVER')
    const startedAt = Date.now()
    while (Date.now() - startedAt < 10_000 && (promotedAt === undefined || Date.now() - promotedAt < 500)) {
      await Promise.all(
        shard.map((s, i) => {
          const port = id++
          sent[i]!.push(port)
          return publisher.publish(sender, s.key.publicKey, Message.create({ candidate: { port } }))
        }),
      )
      await new Promise((resolve) => setTimeout(resolve, 10))
      if (promotedAt === undefined && (await bed.masterOfSlot(shard[0]!.slot)) === replica) promotedAt = Date.now()
    }
    expect(await failover).toBeDefined()
    expect(promotedAt, 'the replica took over the shard').toBeDefined()
    await followed
    const deadline = Date.now() + 3000
    const lost = () => shard.flatMap((s, i) => sent[i]!.filter((port) => !s.handler.ports.includes(port)))
    while (lost().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    // Redis 7 takes SPUBLISH on the demoted master and passes it through the shard, so B sees no error; A
    // follows where the demoted master's MOVED answer points, and what is published until then is lost.
    console.log(`redis-cluster planned failover: ${sent.flat().length} envelopes to the shard, ${lost().length} lost while its subscribers moved`)
    expect(b.server.stats().cluster).toMatchObject({ publishFailed: 0 })
    // Moving on from the demoted master, A subscribes on the new one before it leaves the old: what came on both
    // meanwhile counts in `duplicates` and is delivered once (expectNoDuplicates below).
    expect(a.server.stats().cluster).toMatchObject({ resubscribed: shard.length })
    expect(a.server.stats().cluster!.followed).toBeGreaterThanOrEqual(1)
    expectNoDuplicates(subscribers)
    await roundTrip(publisher, sender, subscribers, 50_000)
  }, 60_000)
})

describe('signal --cluster redis-cluster:// processes', () => {
  it('two signal processes relay to each other through the Redis Cluster', async () => {
    const {
      processes: [one, two],
      listening,
      addresses: [addrOne, addrTwo],
    } = await twoSignalProcesses(bed.url, { extraArgs: ['--metrics', '127.0.0.1:0'] })
    for (const p of [one, two]) expect(p.events[0]).toMatchObject({ type: 'cluster', state: 'connected', url: bed.url })
    const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
    const handler = recorder()
    await (await backend(`grpc://${addrOne}?insecure=true`)).subscribe({ ours: alice, theirs: bob.publicKey }, handler)
    await (await backend(`grpc://${addrTwo}?insecure=true`)).publish(bob, alice.publicKey, Message.create({ candidate: { port: 5 } }))
    await handler.wait(1)
    expect(handler.ports).toEqual([5])
    const metrics = await scrape(listening[0]!.metrics as string)
    expect(metrics.value('cunicu_signal_cluster_messages_in_total')).toBe(1)
    expect(metrics.value('cunicu_signal_cluster_duplicates_total')).toBe(0)
    expect(metrics.value('cunicu_signal_cluster_resubscribed_total')).toBe(0)
    for (const p of [one, two]) process.kill(p.child.pid!, 'SIGTERM')
    for (const p of [one, two]) expect(await p.exit(), p.stderr).toBe(143)
    expect(one.events.find((e) => e.type === 'stopped')?.cluster).toMatchObject({ received: 1, duplicates: 0 })
    expect(two.events.find((e) => e.type === 'stopped')?.cluster).toMatchObject({ published: 1, publishFailed: 0 })
  }, 60_000)

  it('a bad redis-cluster:// URL is bad input: exit 2 with the reason, before anything starts; an unreachable one (or a Redis not in cluster mode) exits 3', async () => {
    const noHosts = await runCli(['signal', '--listen', '127.0.0.1:0', '--cluster', 'redis-cluster://'])
    expect(noHosts.code).toBe(2)
    expect(noHosts.stderr).toMatch(/^Error: cluster "redis-cluster:\/\/": no hosts/)
    const badPort = await runCli(['signal', '--listen', '127.0.0.1:0', '--cluster', 'redis-cluster://127.0.0.1:7000,127.0.0.1:99999'])
    expect(badPort.code).toBe(2)
    expect(badPort.stderr).toContain('bad port "99999" for 127.0.0.1')
    // A well-formed URL where nothing answers is the broker's fault, as with redis://: exit 3.
    const port = await unusedPort()
    const unreachable = await runCli(['signal', '--listen', '127.0.0.1:0', '--cluster', `redis-cluster://127.0.0.1:${port}`])
    expect(unreachable.code).toBe(3)
    expect(unreachable.stderr).toContain(`cluster redis-cluster://127.0.0.1:${port} unreachable`)
    // A plain Redis named as a cluster: the same exit, and the message says why.
    const plain = await RedisServer.start()
    try {
      const notCluster = await runCli(['signal', '--listen', '127.0.0.1:0', '--cluster', `redis-cluster://127.0.0.1:${plain.port}`])
      expect(notCluster.code).toBe(3)
      expect(notCluster.stderr).toContain('cluster support disabled')
    } finally {
      await plain.kill()
    }
  })
})

describe('signal --cluster rediss-cluster:// (TLS)', () => {
  it('two signal processes relay over every shard of a Redis Cluster that speaks only TLS (to clients, on its bus, for replication); a master killed fails over and its subscribers get envelopes again; nothing twice', async () => {
    const tls = selfSignedCert()
    let tlsBed: RedisClusterBed | undefined
    try {
      tlsBed = await RedisClusterBed.start(3, tls)
      // The test's own CA, the way an operator would add one to Node's trust store (README).
      const trusted = { NODE_EXTRA_CA_CERTS: tls.certFile }
      const {
        processes: [one, two],
        addresses: [addrOne, addrTwo],
      } = await twoSignalProcesses(tlsBed.url, { env: trusted })
      for (const p of [one, two]) expect(p.events[0]).toMatchObject({ type: 'cluster', state: 'connected', url: tlsBed.url })

      const sender = PrivateKey.generate()
      const { subscribers, byMaster } = await subscribersOnAllShards({ url: `grpc://${addrOne}?insecure=true` }, sender, tlsBed)
      const publisher = await backend(`grpc://${addrTwo}?insecure=true`)
      await roundTrip(publisher, sender, subscribers, 1)

      // Rediscovery, redirects and reconnects all go over TLS too: the shard's replica takes over.
      const [killed, shard] = [...byMaster][0]!
      const resumeMs = await killAndMeasureResume(killed, publisher, sender, shard, 1000, false, tlsBed)
      console.log(`rediss-cluster failover: subscribers on the killed shard resumed after ${Math.min(...resumeMs)}–${Math.max(...resumeMs)} ms`)
      expect(Math.max(...resumeMs)).toBeLessThanOrEqual(RESUME_BOUND_MS)
      expect(await tlsBed.masterOfSlot(shard[0]!.slot)).not.toBe(killed)
      await one.waitForEvent((e) => e.type === 'cluster' && e.state === 'recovered', 3 * RESUME_BOUND_MS)
      await roundTrip(publisher, sender, subscribers, 2000)
      expectNoDuplicates(subscribers)

      for (const p of [one, two]) process.kill(p.child.pid!, 'SIGTERM')
      for (const p of [one, two]) expect(await p.exit(), p.stderr).toBe(143)
      expect(one.events.filter((e) => e.type === 'cluster').map((e) => e.state)).toEqual(['connected', 'lost', 'recovered', 'closed'])
      expect(one.events.find((e) => e.type === 'stopped')?.cluster).toMatchObject({ outages: 1, resubscribed: shard.length })
    } finally {
      await tlsBed?.kill()
      tls.cleanup()
    }
  }, 120_000)
})
