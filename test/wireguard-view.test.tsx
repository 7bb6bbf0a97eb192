// The --wg table: one row per peer with short key, role, state, pair, RTT, bytes each way and WireGuard's
// latest handshake, folded from the same events --json prints; a row per peer, never a growing log.
import { render } from 'ink-testing-library'
import { describe, expect, it } from 'vitest'
import type { WireguardEvent } from '../src/core/wireguard/events.js'
import { WireguardTable } from '../src/ui/wireguard-view.js'
import { age, emptySummary, foldWireguardEvent } from '../src/ui/wireguard-summary.js'

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0)
const at = (msAgo: number) => new Date(NOW - msAgo).toISOString()
const P1 = 'AAAAAAAAbbbbbbbbccccccccddddddddeeeeeeeefff='
const P2 = 'ZZZZZZZZyyyyyyyyxxxxxxxxwwwwwwwwvvvvvvvvuuu='
const host = (address: string, port: number) => ({ type: 'host' as const, protocol: 'udp' as const, address, port, priority: 1, foundation: 'f' })

const events: WireguardEvent[] = [
  { at: at(9000), type: 'interface', iface: 'wg0', publicKey: 'OURSOURSxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=', listenPort: 51820, peers: [P1, P2] },
  { at: at(8000), type: 'role', ours: 'x', theirs: P1, role: 'controlling', reason: 'r', peer: P1 },
  { at: at(8000), type: 'role', ours: 'x', theirs: P2, role: 'controlled', reason: 'r', peer: P2 },
  { at: at(7000), type: 'state', state: 'connected', previous: 'checking', peer: P1 },
  { at: at(7000), type: 'pair', local: host('10.0.0.1', 4000), remote: { ...host('203.0.113.9', 5000), type: 'srflx' }, peer: P1 },
  { at: at(6900), type: 'verified', rttMs: 2.345, peer: P1 },
  { at: at(6000), type: 'state', state: 'failed', previous: 'checking', reason: 'ICE failed: all candidate pairs failed', peer: P2 },
  {
    at: at(1000), type: 'forward', local: '127.0.0.1:40000', app: '127.0.0.1:51820', mode: 'raw', active: true,
    sent: { datagrams: 10, bytes: 20480 }, received: { datagrams: 5, bytes: 3072 }, lost: 0, lossPercent: 0, replayed: 0, invalid: 0, foreign: 0, notConnected: 0, noApp: 0, errors: 0,
    rate: { sentBitsPerSecond: 0, receivedBitsPerSecond: 0, sentPerSecond: 0, receivedPerSecond: 0 }, peer: P1,
  },
  { at: at(500), type: 'handshake', latestHandshake: at(12_000), transferRx: 3072, transferTx: 20480, endpoint: '127.0.0.1:40000', peer: P1 },
]

describe('--wg table', () => {
  it('one row per peer: short key, role, state, pair, RTT, bytes each way, handshake age; failures below', () => {
    const summary = emptySummary()
    events.forEach((e) => foldWireguardEvent(summary, e))
    expect(summary.rows.size).toBe(2)
    const { lastFrame } = render(<WireguardTable summary={summary} now={NOW} />)
    const frame = lastFrame()!
    const lines = frame.split('\n')
    const row1 = lines.find((l) => l.includes('AAAAAAAA…'))!
    const row2 = lines.find((l) => l.includes('ZZZZZZZZ…'))!
    // 100 columns: the pair (the only flexible column) is truncated, every other column stays whole.
    expect(row1).toMatch(/AAAAAAAA… +controlling +connected +host→srflx 203\.0\.113\.9… +2\.3 ms +20\.0 KiB +3\.0 KiB +12 s /)
    expect(summary.rows.get(P1)!.pair).toBe('host→srflx 203.0.113.9:5000')
    expect(row2).toMatch(/ZZZZZZZZ… +controlled +failed +— +— +0 B +0 B +never/)
    expect(frame).toMatch(/wg0 OURSOURS… listen 51820/)
    expect(frame).toMatch(/ZZZZZZZZ… ICE failed: all candidate pairs failed/)
  })

  it('handshake ages read like a person would say them', () => {
    expect(age(undefined, NOW)).toBe('never')
    expect(age(at(3000), NOW)).toBe('3 s')
    expect(age(at(30 * 60_000), NOW)).toBe('30 min')
    expect(age(at(5 * 3600_000), NOW)).toBe('5 h')
  })
})
