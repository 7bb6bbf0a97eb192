// Live view of `subscribe`: a growing log of messages and errors, a status line below it.
import { Box, Static, Text } from 'ink'
import type { Emitter } from '../core/emitter.js'
import type { InboxEvent } from '../core/inbox.js'
import { bytes, clock, shortKey } from './format.js'
import { mount } from './mount.js'
import { useEventLog } from './use-events.js'

export function InboxLine({ event }: { event: InboxEvent }) {
  switch (event.type) {
    case 'subscribed':
      return (
        <Text>
          <Text color="green">●</Text> subscribed as {shortKey(event.key)} to {event.from === 'any' ? 'any sender' : event.from.map(shortKey).join(', ')} via {event.backend}
        </Text>
      )
    case 'message':
      return (
        <Text>
          <Text dimColor>{clock(event.at)}</Text> <Text color="cyan">⇐ {event.kind}</Text> from {shortKey(event.from)} ({bytes(event.size)}){' '}
          <Text dimColor>{JSON.stringify(event.message)}</Text>
        </Text>
      )
    case 'error':
      return (
        <Text color="red">
          {clock(event.at)} ✗ dropped envelope ({event.reason}): {event.message}
        </Text>
      )
    case 'backend':
      return (
        <Text color={event.status.state === 'connected' ? 'green' : 'yellow'}>
          {clock(event.at)} backend {event.status.backend}: {event.status.state}
          {event.status.state === 'reconnecting' ? ` (${event.status.reason}; retry in ${event.status.retryInMs} ms)` : ''}
        </Text>
      )
  }
}

interface InboxCounts {
  messages: number
  errors: number
  live: boolean
}
const NO_COUNTS: InboxCounts = { messages: 0, errors: 0, live: false }
const count = (c: InboxCounts, e: InboxEvent): InboxCounts => ({
  messages: c.messages + Number(e.type === 'message'),
  errors: c.errors + Number(e.type === 'error'),
  live: c.live || e.type === 'subscribed',
})

function InboxScreen({ log, frame, counts: { messages, errors, live } }: { log: readonly InboxEvent[]; frame: number; counts: InboxCounts }) {
  return (
    <>
      <Static key={frame} items={log.map((event, i) => ({ event, i }))}>{({ event, i }) => <InboxLine key={i} event={event} />}</Static>
      <Box borderStyle="round" paddingX={1}>
        <Text>
          {live ? <Text color="green">live</Text> : <Text color="yellow">subscribing…</Text>} · {messages} messages · {errors} dropped · Ctrl-C to stop
        </Text>
      </Box>
    </>
  )
}

export function InboxView({ events }: { events: readonly InboxEvent[] }) {
  return <InboxScreen log={events} frame={0} counts={events.reduce(count, NO_COUNTS)} />
}

function LiveInbox({ emitter }: { emitter: Emitter<InboxEvent> }) {
  const log = useEventLog(emitter, count, NO_COUNTS)
  return <InboxScreen log={log.fresh} frame={log.frame} counts={log.state} />
}

/** Mounts the live view; the returned function unmounts it (call before the process exits). */
export function showInbox(emitter: Emitter<InboxEvent>): () => Promise<void> {
  return mount(<LiveInbox emitter={emitter} />)
}
