// Live view of a session: a log of envelopes, candidates and state changes (Ink <Static>, written once), and
// a panel below it with keys, role and why, the state timeline, the selected pair and the RTT. The live
// view holds no history (use-events.ts): the log gets each frame's events, the panel a running summary.
import { Box, Static, Text } from 'ink'
import type { Emitter } from '../core/emitter.js'
import type { CandidateInfo, SessionEvent, SessionState } from '../core/session/events.js'
import { bytes, clock, shortKey } from './format.js'
import { EMPTY_SUMMARY, reduceSummary, summarize, type ForwardEvent, type SessionSummary } from './session-summary.js'
import { mount } from './mount.js'
import { useEventLog } from './use-events.js'

const stateColor: Record<SessionState, string> = {
  idle: 'gray',
  gathering: 'blue',
  connecting: 'blue',
  checking: 'yellow',
  connected: 'green',
  disconnected: 'yellow',
  restarting: 'magenta',
  failed: 'red',
  closed: 'gray',
}

const candidate = (c: CandidateInfo) => `${c.type} ${c.protocol} ${c.address}:${c.port}`

export function SessionLogLine({ event, label }: { event: SessionEvent; label?: string }) {
  const prefix = (
    <Text dimColor>
      {clock(event.at)}
      {label ? ` ${label}` : ''}{' '}
    </Text>
  )
  switch (event.type) {
    case 'envelope':
      return (
        <Text>
          {prefix}
          <Text color={event.direction === 'in' ? 'cyan' : 'blue'}>{event.direction === 'in' ? '⇐ in ' : '⇒ out'}</Text> {event.kind} ({bytes(event.size)})
          {event.detail ? <Text dimColor> {event.detail}</Text> : null}
        </Text>
      )
    case 'candidate':
      return (
        <Text>
          {prefix}
          {event.side === 'local' ? 'local ' : 'remote'} candidate {candidate(event.candidate)}
        </Text>
      )
    case 'state':
      return (
        <Text>
          {prefix}
          state <Text color={stateColor[event.state]}>{event.state}</Text>
          {event.reason ? <Text dimColor> ({event.reason})</Text> : null}
        </Text>
      )
    case 'pair':
      return (
        <Text color="green">
          {prefix}selected pair {candidate(event.local)} ⇄ {candidate(event.remote)}
        </Text>
      )
    case 'verified':
      return (
        <Text color="green">
          {prefix}path verified, RTT {event.rttMs.toFixed(2)} ms
        </Text>
      )
    case 'unverified':
      return (
        <Text color="yellow">
          {prefix}path unverified: {event.reason}
        </Text>
      )
    case 'error':
      return (
        <Text color="red">
          {prefix}✗ {event.source}: {event.message}
        </Text>
      )
    case 'backend':
      return (
        <Text color={event.status.state === 'connected' ? 'green' : 'yellow'}>
          {prefix}backend {event.status.state}
          {event.status.state === 'reconnecting' ? ` (${event.status.reason})` : ''}
        </Text>
      )
    case 'role':
      return (
        <Text>
          {prefix}role <Text bold>{event.role}</Text> <Text dimColor>({event.reason})</Text>
        </Text>
      )
    case 'forward':
      // Counters every second: the panel shows the latest; the log only when a path stops carrying them.
      return event.active ? null : (
        <Text>
          {prefix}forward {event.local} paused: {forwardLine(event)}
        </Text>
      )
    case 'relays':
      return (
        <Text>
          {prefix}relays {[...event.stun.map((u) => `stun ${u}`), ...event.turn.map((t) => `turn ${t.url} (${t.source})`)].join(' · ') || 'none'}
          {event.skipped.length ? <Text dimColor> (skipped: {event.skipped.join('; ')})</Text> : null}
        </Text>
      )
    case 'subscribed':
      return (
        <Text>
          {prefix}subscribed to {shortKey(event.peer)} via {event.backend}
        </Text>
      )
  }
}

export function SessionPanel({ summary: s, title }: { summary: SessionSummary; title?: string }) {
  const start = s.startedAt
  const since = (at: string) => (start ? `+${Date.parse(at) - Date.parse(start)}ms` : '')
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={stateColor[s.state]} paddingX={1} flexGrow={1}>
      {title ? <Text bold>{title}</Text> : null}
      <Text>
        us {s.ours ? shortKey(s.ours) : '…'} ⇄ peer {s.theirs ? shortKey(s.theirs) : '…'}
      </Text>
      <Text>
        role <Text bold>{s.role ?? '…'}</Text> {s.roleReason ? <Text dimColor>({s.roleReason})</Text> : null}
      </Text>
      <Text>
        state <Text color={stateColor[s.state]} bold>{s.state}</Text>{' '}
        <Text dimColor>{s.timeline.map((t) => `${t.state} ${since(t.at)}`).join(' → ')}</Text>
      </Text>
      <Text>
        envelopes ⇐ {s.envelopesIn} ⇒ {s.envelopesOut} · candidates local {s.localCandidateCount} remote {s.remoteCandidateCount}
        {s.errors ? <Text color="red"> · {s.errors} errors</Text> : null}
      </Text>
      <Text>
        pair {s.pair ? `${candidate(s.pair.local)} ⇄ ${candidate(s.pair.remote)}` : '—'}
      </Text>
      <Text>
        path{' '}
        {s.state === 'disconnected' ? (
          <Text color="yellow">silent, waiting for the peer</Text>
        ) : s.state === 'idle' ? (
          'waiting for the peer'
        ) : s.rttMs !== undefined ? (
          <Text color="green">verified, RTT {s.rttMs.toFixed(2)} ms</Text>
        ) : s.unverified ? (
          <Text color="yellow">connected but unverified</Text>
        ) : (
          '—'
        )}
      </Text>
      {s.forward ? <ForwardLine last={s.forward} /> : null}
      {s.backend ? <Text dimColor>backend {s.backend}</Text> : null}
      {s.lastError ? <Text color="red">last error {s.lastError}</Text> : null}
    </Box>
  )
}

const rate = (bitsPerSecond: number) =>
  bitsPerSecond >= 1e6 ? `${(bitsPerSecond / 1e6).toFixed(1)} Mbit/s` : `${(bitsPerSecond / 1e3).toFixed(1)} kbit/s`

function forwardLine(f: ForwardEvent): string {
  const counts = `⇒ ${f.sent.datagrams} (${bytes(f.sent.bytes)}, ${rate(f.rate.sentBitsPerSecond)}) ⇐ ${f.received.datagrams} (${bytes(f.received.bytes)}, ${rate(f.rate.receivedBitsPerSecond)})`
  // Only sealed datagrams carry a counter to see gaps in; raw ones are WireGuard's to count.
  return f.mode === 'sealed' ? `${counts} · sealed · lost ${f.lost} (${f.lossPercent}%)` : counts
}

function ForwardLine({ last }: { last: ForwardEvent }) {
  return (
    <Text>
      forward {last.local}
      {last.app ? ` ⇄ ${last.app}` : ''} <Text color={last.active ? 'green' : 'gray'}>{last.active ? 'active' : 'idle'}</Text> {forwardLine(last)}
      {last.invalid + last.replayed ? <Text color="yellow"> · refused {last.invalid + last.replayed}</Text> : null}
      {last.foreign ? <Text color="yellow"> · foreign {last.foreign}</Text> : null}
    </Text>
  )
}

/** The view of a whole list of events (tests, replays); the live view below keeps none. */
export function SessionView({ events }: { events: readonly SessionEvent[] }) {
  return (
    <>
      <Static items={events.map((event, i) => ({ event, i }))}>{({ event, i }) => <SessionLogLine key={i} event={event} />}</Static>
      <SessionPanel summary={summarize(events)} />
    </>
  )
}

export function LiveSession({ emitter }: { emitter: Emitter<SessionEvent> }) {
  const log = useEventLog(emitter, reduceSummary, EMPTY_SUMMARY)
  return (
    <>
      {/* A fresh <Static> per frame writes that frame's events once; nothing of it is kept. */}
      <Static key={log.frame} items={log.fresh.map((event, i) => ({ event, i }))}>
        {({ event, i }) => <SessionLogLine key={i} event={event} />}
      </Static>
      <SessionPanel summary={log.state} />
    </>
  )
}

/** Mounts the live view; the returned function unmounts it. */
export function showSession(emitter: Emitter<SessionEvent>): () => Promise<void> {
  return mount(<LiveSession emitter={emitter} />)
}
