// When time-limited TURN credentials are fetched again (relay-renewal.ts), and what the allocation refresh
// loop does when a TURN server refuses a refresh (turn-refresh.ts), on fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { expiringCredentials, RelayRenewal, renewalDelayMs } from '../src/core/session/relay-renewal.js'
import type { ResolvedIceServers } from '../src/core/session/relays.js'
import { attachTurnHooks, startRefreshing, stopRefreshing } from '../src/core/session/turn-refresh.js'

const T0 = Date.parse('2026-01-01T00:00:00Z')

/** What resolveIceServers returns for one server-issued TURN credential expiring at `expiresAt`. */
function servers(expiresAt: number, username = `${Math.floor(expiresAt / 1000)}:key`): ResolvedIceServers {
  const url = 'turn:10.0.0.1:3478?transport=udp'
  return {
    stunServers: [],
    turnServers: [{ url, host: '10.0.0.1', port: 3478, transport: 'udp', username, password: 'pw', expires: new Date(expiresAt) }],
    turnInfo: [{ url, username, source: 'server', expires: new Date(expiresAt).toISOString() }],
    skipped: [],
    errors: [],
  }
}

describe('renewal schedule', () => {
  it('renews at half the remaining lifetime, at most 10 min before the expiry, never sooner than 1 s', () => {
    expect(renewalDelayMs([new Date(T0 + 20_000)], T0)).toBe(10_000)
    expect(renewalDelayMs([new Date(T0 + 3_600_000)], T0)).toBe(50 * 60_000)
    expect(renewalDelayMs([new Date(T0 + 86_400_000)], T0)).toBe(86_400_000 - 10 * 60_000)
    // The earliest of several expiries decides.
    expect(renewalDelayMs([new Date(T0 + 3_600_000), new Date(T0 + 60_000)], T0)).toBe(30_000)
    // Already expired (or about to): renew soon, but not in a tight loop.
    expect(renewalDelayMs([new Date(T0 - 5_000)], T0)).toBe(1_000)
    expect(renewalDelayMs([], T0)).toBeUndefined()
  })

  it('only credentials a server issued expire for renewal; --turn credentials are the user\'s own', () => {
    const s = servers(T0 + 20_000)
    expect(expiringCredentials(s)).toEqual([new Date(T0 + 20_000)])
    expect(expiringCredentials({ ...s, turnInfo: [{ ...s.turnInfo[0]!, source: 'flag' }] })).toEqual([])
  })
})

describe('RelayRenewal', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.setSystemTime(T0)
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('fetches again before each expiry and hands out the new credentials', async () => {
    const fetch = vi.fn(async () => servers(Date.now() + 20_000))
    const renewed: ResolvedIceServers[] = []
    const renewal = new RelayRenewal({ initial: servers(T0 + 20_000), fetch, onRenewed: (s) => renewed.push(s) })
    renewal.start()
    await vi.advanceTimersByTimeAsync(9_999)
    expect(fetch).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    expect(fetch).toHaveBeenCalledTimes(1)
    expect(renewal.current.turnServers[0]!.expires).toEqual(new Date(T0 + 30_000))
    expect(renewed).toHaveLength(1)
    // The new credentials expire at T0 + 30 s: the next fetch is at T0 + 20 s, and so on for as long as it runs.
    await vi.advanceTimersByTimeAsync(10_000)
    expect(fetch).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(fetch).toHaveBeenCalledTimes(8)
    expect(renewal.current.turnServers[0]!.expires!.getTime()).toBeGreaterThan(Date.now())
    renewal.close()
    await vi.advanceTimersByTimeAsync(600_000)
    expect(fetch).toHaveBeenCalledTimes(8)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a failed fetch keeps the old servers and is retried after 2 s, 4 s, …; success resumes the schedule', async () => {
    let failures = 2
    const fetch = vi.fn(async () => {
      if (failures-- > 0) throw new Error('backend grpc://10.0.0.9:1 unreachable')
      return servers(Date.now() + 20_000)
    })
    const errors: string[] = []
    const initial = servers(T0 + 20_000)
    const renewal = new RelayRenewal({ initial, fetch, onError: (m) => errors.push(m), random: () => 0.5 })
    renewal.start()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(fetch).toHaveBeenCalledTimes(1)
    expect(errors).toEqual(['could not renew TURN credentials: backend grpc://10.0.0.9:1 unreachable; retrying in 2.0 s'])
    expect(renewal.current).toBe(initial)
    await vi.advanceTimersByTimeAsync(2_000)
    expect(fetch).toHaveBeenCalledTimes(2)
    expect(errors[1]).toMatch(/retrying in 4\.0 s$/)
    await vi.advanceTimersByTimeAsync(4_000)
    expect(fetch).toHaveBeenCalledTimes(3)
    expect(renewal.current.turnServers[0]!.expires).toEqual(new Date(T0 + 36_000))
    renewal.close()
  })

  it('an answer without time-limited credentials (the server lost its --relay) is a failure, not a renewal', async () => {
    const fetch = vi.fn(async (): Promise<ResolvedIceServers> => ({ stunServers: [], turnServers: [], turnInfo: [], skipped: [], errors: ['could not get relays from grpc://x:1: no answer within 5000 ms'] }))
    const errors: string[] = []
    const initial = servers(T0 + 20_000)
    const renewal = new RelayRenewal({ initial, fetch, onError: (m) => errors.push(m), random: () => 0.5 })
    renewal.start()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(renewal.current).toBe(initial)
    expect(errors).toEqual(['could not renew TURN credentials: could not get relays from grpc://x:1: no answer within 5000 ms; retrying in 2.0 s'])
    renewal.close()
  })

  it('nothing to renew without expiring credentials; close() aborts a fetch in flight', async () => {
    const idle = vi.fn(async () => servers(Date.now() + 20_000))
    const flagsOnly = new RelayRenewal({ initial: { stunServers: [], turnServers: [], turnInfo: [], skipped: [], errors: [] }, fetch: idle })
    flagsOnly.start()
    expect(vi.getTimerCount()).toBe(0)
    flagsOnly.close()

    let seen: AbortSignal | undefined
    const renewal = new RelayRenewal({ initial: servers(T0 + 20_000), fetch: (signal) => ((seen = signal), new Promise<never>(() => {})) })
    renewal.start()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(seen?.aborted).toBe(false)
    renewal.close()
    renewal.close()
    expect(seen?.aborted).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('TURN allocation refresh (turn-refresh.ts)', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.setSystemTime(T0)
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  const refused = (code: number, reason: string) => Object.assign(new Error('refused'), { response: { getAttributeValue: () => [code, reason] } })
  const granted = (lifetime: number) => [{ getAttributeValue: (name: string) => (name === 'LIFETIME' ? lifetime : undefined) }]

  /** A stand-in for werift's TurnProtocol: the fields and the one method the refresh loop uses. */
  function allocation(answers: (() => unknown)[]) {
    const requests: { username: string }[] = []
    const turn = {
      server: ['10.0.0.1', 3478] as const,
      username: 'old-user',
      password: 'old-pass',
      realm: 'example.org',
      integrityKey: undefined as Buffer | undefined,
      refresh: (_exp: number) => {},
      requestWithRetry: vi.fn(async () => {
        requests.push({ username: turn.username })
        const next = answers.shift()
        if (!next) throw new Error('no more answers')
        return next()
      }),
    }
    return { turn, requests }
  }

  it('refreshes at 5/6 of the lifetime with the allocation\'s own credentials while the server accepts them', async () => {
    const { turn, requests } = allocation([() => granted(60), () => granted(60)])
    const lost = vi.fn()
    attachTurnHooks(turn, { renewedCredentials: () => ({ username: 'new-user', password: 'new-pass' }), onLost: lost })
    startRefreshing(turn, 60)
    await vi.advanceTimersByTimeAsync(49_999)
    expect(requests).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    await vi.advanceTimersByTimeAsync(50_000)
    expect(requests).toEqual([{ username: 'old-user' }, { username: 'old-user' }])
    expect(lost).not.toHaveBeenCalled()
    stopRefreshing(turn)
  })

  it('a refused refresh is tried again with renewed credentials; if those work, the allocation lives on', async () => {
    const { turn, requests } = allocation([() => Promise.reject(refused(401, 'Unauthorized')), () => granted(60)])
    const lost = vi.fn()
    attachTurnHooks(turn, { renewedCredentials: () => ({ username: 'new-user', password: 'new-pass' }), onLost: lost })
    startRefreshing(turn, 60)
    await vi.advanceTimersByTimeAsync(50_000)
    expect(requests).toEqual([{ username: 'old-user' }, { username: 'new-user' }])
    expect(turn.password).toBe('new-pass')
    expect(turn.integrityKey).toBeInstanceOf(Buffer)
    expect(lost).not.toHaveBeenCalled()
    stopRefreshing(turn)
  })

  it('refused with the renewed credentials too (coturn pins the username: 441), the allocation is lost, once', async () => {
    const { turn } = allocation([() => Promise.reject(refused(401, 'Unauthorized')), () => Promise.reject(refused(441, 'Wrong Credentials'))])
    const lost = vi.fn()
    attachTurnHooks(turn, { renewedCredentials: () => ({ username: 'new-user', password: 'new-pass' }), onLost: lost })
    startRefreshing(turn, 60)
    await vi.advanceTimersByTimeAsync(600_000)
    expect(lost.mock.calls).toEqual([['the TURN server refused to refresh the allocation (401 Unauthorized; with renewed credentials: 441 Wrong Credentials)']])
    expect(turn.requestWithRetry).toHaveBeenCalledTimes(2)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('no answer with its own credentials (werift drops a 401 without integrity): renewed ones are tried and kept if they work', async () => {
    const timeout = () => Promise.reject(new Error('timeout'))
    const { turn, requests } = allocation([timeout, () => granted(60), () => granted(60)])
    const lost = vi.fn()
    attachTurnHooks(turn, { renewedCredentials: () => ({ username: 'new-user', password: 'new-pass' }), onLost: lost })
    startRefreshing(turn, 60)
    await vi.advanceTimersByTimeAsync(100_000)
    expect(requests).toEqual([{ username: 'old-user' }, { username: 'new-user' }, { username: 'new-user' }])
    expect(lost).not.toHaveBeenCalled()
    stopRefreshing(turn)
  })

  it('renewed credentials that fail too are dropped again: the allocation keeps the ones it was made with', async () => {
    const timeout = () => Promise.reject(new Error('timeout'))
    const { turn, requests } = allocation([timeout, timeout, () => granted(60)])
    attachTurnHooks(turn, { renewedCredentials: () => ({ username: 'new-user', password: 'new-pass' }), onLost: vi.fn() })
    startRefreshing(turn, 60)
    await vi.advanceTimersByTimeAsync(50_000)
    expect(requests).toEqual([{ username: 'old-user' }, { username: 'new-user' }])
    expect(turn).toMatchObject({ username: 'old-user', password: 'old-pass', integrityKey: undefined })
    // Retried sooner (half of the 10 s left), with the allocation's own credentials first again.
    await vi.advanceTimersByTimeAsync(5_000)
    expect(requests).toEqual([{ username: 'old-user' }, { username: 'new-user' }, { username: 'old-user' }])
    stopRefreshing(turn)
  })

  it('no answer: retried sooner while the allocation lives, lost once it has expired', async () => {
    const timeout = () => Promise.reject(new Error('timeout'))
    const { turn } = allocation([timeout, timeout, timeout, timeout, timeout, timeout, timeout, timeout])
    const lost = vi.fn()
    attachTurnHooks(turn, { renewedCredentials: () => undefined, onLost: lost })
    startRefreshing(turn, 60)
    await vi.advanceTimersByTimeAsync(59_000)
    expect(lost).not.toHaveBeenCalled()
    expect(turn.requestWithRetry.mock.calls.length).toBeGreaterThanOrEqual(3)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(lost.mock.calls).toEqual([['the TURN server did not answer refreshes before the allocation expired']])
    expect(vi.getTimerCount()).toBe(0)
  })
})
