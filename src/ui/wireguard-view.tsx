// Live view of `session --wg`: one table row per WireGuard peer (short key, role, state, pair, RTT, bytes
// each way through our proxy, WireGuard's latest handshake), folded from the same events --json prints.
import { useEffect, useState } from 'react'
import { Box, Text } from 'ink'
import type { Emitter } from '../core/emitter.js'
import type { WireguardEvent } from '../core/wireguard/events.js'
import { bytes, shortKey } from './format.js'
import { mount } from './mount.js'
import { FRAME_MS } from './use-events.js'
import { age, emptySummary, foldWireguardEvent, type PeerRow, type WireguardSummary } from './wireguard-summary.js'

const stateColor: Record<string, string> = { connected: 'green', failed: 'red', checking: 'yellow', restarting: 'magenta', closed: 'gray' }

/** Fixed widths, except the pair, which takes what the terminal has left (and is truncated in narrow ones). */
const COLUMNS: { title: string; width?: number; cell: (r: PeerRow, now: number) => string }[] = [
  { title: 'peer', width: 10, cell: (r) => shortKey(r.peer) },
  { title: 'role', width: 12, cell: (r) => r.role ?? '…' },
  { title: 'state', width: 11, cell: (r) => r.state },
  { title: 'pair', cell: (r) => r.pair ?? '—' },
  { title: 'RTT', width: 9, cell: (r) => (r.rttMs !== undefined ? `${r.rttMs.toFixed(1)} ms` : r.unverified ? 'unverif.' : '—') },
  { title: '⇒ sent', width: 10, cell: (r) => bytes(r.sentBytes) },
  { title: '⇐ recv', width: 10, cell: (r) => bytes(r.receivedBytes) },
  { title: 'handshake', width: 10, cell: (r, now) => age(r.latestHandshake, now) },
]

const cellBox = (c: (typeof COLUMNS)[number]) => (c.width ? { width: c.width, flexShrink: 0 } : { flexGrow: 1, flexShrink: 1, flexBasis: 0, marginRight: 1 })

export function WireguardTable({ summary, now }: { summary: WireguardSummary; now: number }) {
  const rows = [...summary.rows.values()]
  const errors = rows.filter((r) => r.lastError)
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text bold>
        {summary.iface ?? 'wireguard'} {summary.publicKey ? <Text dimColor>{shortKey(summary.publicKey)} listen {summary.listenPort}</Text> : null}
      </Text>
      <Box>
        {COLUMNS.map((c) => (
          <Box key={c.title} {...cellBox(c)}>
            <Text bold>{c.title}</Text>
          </Box>
        ))}
      </Box>
      {rows.map((r) => (
        <Box key={r.peer}>
          {COLUMNS.map((c) => (
            <Box key={c.title} {...cellBox(c)}>
              <Text color={c.title === 'state' ? stateColor[r.state] : undefined} wrap="truncate">
                {c.cell(r, now)}
              </Text>
            </Box>
          ))}
        </Box>
      ))}
      {errors.map((r) => (
        <Text key={r.peer} color="red" wrap="truncate">
          {shortKey(r.peer)} {r.lastError}
        </Text>
      ))}
    </Box>
  )
}

function LiveWireguard({ emitter }: { emitter: Emitter<WireguardEvent> }) {
  const [view, setView] = useState({ summary: emptySummary(), now: Date.now() })
  useEffect(() => {
    const summary = emptySummary()
    let timer: NodeJS.Timeout | undefined
    const flush = () => {
      timer = undefined
      setView({ summary: { ...summary, rows: new Map(summary.rows) }, now: Date.now() })
    }
    const off = emitter.on((event) => {
      foldWireguardEvent(summary, event)
      timer ??= setTimeout(flush, FRAME_MS)
    })
    // Handshake ages move on even when no event arrives.
    const tick = setInterval(flush, 1000)
    return () => {
      off()
      clearInterval(tick)
      clearTimeout(timer)
    }
  }, [emitter])
  return <WireguardTable summary={view.summary} now={view.now} />
}

/** Mounts the table; the returned function unmounts it. */
export function showWireguard(emitter: Emitter<WireguardEvent>): () => Promise<void> {
  return mount(<LiveWireguard emitter={emitter} />)
}
