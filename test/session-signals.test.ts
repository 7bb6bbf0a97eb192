// Session against scripted peers and backends: a plain ICE peer that never answers path probes,
// candidates that overtake credentials, backend reconnects, envelope and publish failures.
import { afterEach, describe, expect, it } from 'vitest'
import { Message } from '../src/gen/signaling/signaling.js'
import { InprocessBackend } from '../src/core/backends/inprocess.js'
import { EnvelopeError } from '../src/core/envelope.js'
import { generateCredentials } from '../src/core/session/credentials.js'
import type { SessionEvent } from '../src/core/session/events.js'
import { Session } from '../src/core/session/session.js'
import { ScriptedBackend } from './helpers/session-backends.js'
import { startPlainIcePeer } from './helpers/plain-ice-peer.js'
import { isState, isType, orderedKeys, record, waitFor } from './helpers/session-events.js'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('Session against scripted peers', () => {
  it('reports a plain ICE peer (no path probes) as connected but unverified; forged datagrams do not verify', async () => {
    const [small, large] = orderedKeys()
    const backendA = new InprocessBackend()
    const session = new Session({ backend: backendA, ours: small, theirs: large.publicKey, ice: { loopback: true }, probeTimeoutMs: 600 })
    const log = record(session.events)
    // Its candidate goes out before its credentials: the session must hold it until its agent exists.
    const peer = await startPlainIcePeer(large, small.publicKey, { candidatesFirst: true })
    cleanups.push(async () => {
      await session.close()
      await peer.close()
      await backendA.close()
    })
    await session.start()
    await waitFor(session.events, isState('connected'), 10_000, 'connected', log.events)
    // Datagrams over the ICE path that are not valid probes: plain bytes and a probe-looking prefix.
    peer.agent!.send(Buffer.from('not a probe'))
    peer.agent!.send(Buffer.concat([Buffer.from('cunicuPB'), Buffer.alloc(58)]))
    const unverified = await waitFor(session.events, isType('unverified'), 5000, 'unverified', log.events)
    expect(unverified.reason).toBe(
      'the peer did not answer path probes within 600 ms: it may not be cunicu-ts; the ICE path is connected but unverified',
    )
    expect(log.events.some(isType('verified'))).toBe(false)
    const remote = log.events.filter((e) => e.type === 'candidate' && e.side === 'remote')
    expect(remote.length).toBeGreaterThan(0)
    // It arrived before the credentials, so before the agent existed; the agent still got it and connected.
    expect(log.events.indexOf(remote[0]!)).toBeLessThan(log.events.findIndex(isState('gathering')))
  })

  it('restarts for every new set of peer credentials, ignores late copies of retired ones, and warns about a restart storm', async () => {
    const [small, large] = orderedKeys()
    const backend = new InprocessBackend()
    const session = new Session({ backend, ours: small, theirs: large.publicKey, ice: { loopback: true } })
    const log = record(session.events)
    const fake = new InprocessBackend()
    const handler = { onMessage: () => {} }
    cleanups.push(async () => {
      await session.close()
      await fake.unsubscribe({ ours: large, theirs: small.publicKey }, handler)
      await fake.close()
      await backend.close()
    })
    await fake.subscribe({ ours: large, theirs: small.publicKey }, handler)
    await session.start()
    const send = (creds: { ufrag: string; pwd: string }) =>
      fake.publish(large, small.publicKey, Message.fromPartial({ credentials: { ...creds, needCreds: true } }))
    const all = Array.from({ length: 6 }, () => generateCredentials())
    const restarts = () => log.events.filter(isState('restarting')).length
    await send(all[0]!)
    await waitFor(session.events, isState('gathering'), 2000, 'gathering', log.events)
    for (let i = 1; i < all.length; i++) {
      await send(all[i]!)
      await waitFor(session.events, (e): e is SessionEvent => restarts() === i, 2000, `restart ${i}`, log.events)
    }
    const answers = log.events.filter((e) => e.type === 'envelope' && e.direction === 'out' && e.kind === 'credentials')
    // A late copy of credentials the peer already replaced is not another restart.
    await send(all[2]!)
    await send(all[5]!) // and an identical duplicate is not one either; it is answered
    await waitFor(
      session.events,
      (e): e is SessionEvent => log.events.filter((x) => x.type === 'envelope' && x.direction === 'out' && x.kind === 'credentials').length > answers.length,
      2000,
      'answer to the duplicate',
      log.events,
    )
    expect(restarts()).toBe(5)
    const storm = log.events.filter(isType('error')).filter((e) => /restarted 5 times within 30 s/.test(e.message))
    expect(storm).toHaveLength(1)
  })

  it('forwards backend status, and resends credentials at once when the backend is back', async () => {
    const [small, large] = orderedKeys()
    const backend = new ScriptedBackend(new InprocessBackend())
    // A long back-off: any second credentials message within the test comes from the reconnect.
    const session = new Session({ backend, ours: small, theirs: large.publicKey, ice: { loopback: true }, backoff: { initialMs: 60_000 } })
    const log = record(session.events)
    cleanups.push(async () => {
      await session.close()
      await backend.close()
    })
    const sentCredentials = () => log.events.filter((e) => e.type === 'envelope' && e.direction === 'out' && e.kind === 'credentials')
    await session.start()
    await waitFor(session.events, (e): e is SessionEvent => sentCredentials().length === 1, 2000, 'first credentials', log.events)
    backend.emitStatus({ state: 'reconnecting', backend: backend.url, reason: 'connection refused', retryInMs: 100 })
    backend.emitStatus({ state: 'connected', backend: backend.url })
    await waitFor(session.events, (e): e is SessionEvent => sentCredentials().length === 2, 2000, 'credentials resent', log.events)
    const statuses = log.events.filter(isType('backend')).map((e) => e.status.state)
    expect(statuses).toEqual(['reconnecting', 'connected'])
    expect(session.state).toBe('idle')
  })

  it('reports envelope failures and publish failures as error events and keeps running', async () => {
    const [small, large] = orderedKeys()
    const inner = new InprocessBackend()
    const backend = new ScriptedBackend(inner)
    const session = new Session({
      backend, ours: small, theirs: large.publicKey, ice: { loopback: true }, backoff: { initialMs: 50, factor: 1, jitter: 0 },
    })
    const log = record(session.events)
    cleanups.push(async () => {
      await session.close()
      await backend.close()
    })
    await session.start()
    for (const handler of backend.handlers) {
      handler.onError?.({ error: new EnvelopeError('authentication-failed', 'envelope from X failed authentication'), backend: 'inprocess:' })
    }
    const envelopeError = log.events.find(isType('error'))
    expect(envelopeError).toMatchObject({ source: 'envelope', message: 'inprocess:: envelope from X failed authentication' })
    // The backend goes away under the session: its next resend fails and is reported, not thrown.
    await inner.close()
    const publishError = await waitFor(
      session.events,
      (e): e is Extract<SessionEvent, { type: 'error' }> => e.type === 'error' && e.source === 'publish',
      2000,
      'publish error',
      log.events,
    )
    expect(publishError.message).toMatch(/could not send credentials .* via inprocess:: backend inprocess: is closed/)
    expect(session.state).toBe('idle')
  })
})
