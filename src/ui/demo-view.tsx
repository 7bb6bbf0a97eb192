// The demo on a terminal: one log for both peers (labelled A and B), and their two panels side by side.
import { Box, Static, Text } from 'ink'
import type { DemoEvent } from '../core/demo.js'
import type { Emitter } from '../core/emitter.js'
import { clock } from './format.js'
import { SessionLogLine, SessionPanel } from './session-view.js'
import { mount } from './mount.js'
import { useEvents } from './use-events.js'

function DemoLine({ event }: { event: DemoEvent }) {
  switch (event.type) {
    case 'server':
      return (
        <Text>
          <Text dimColor>{clock(event.at)}</Text> embedded signaling server on <Text bold>{event.address}</Text>
        </Text>
      )
    case 'peer':
      return <SessionLogLine event={event.event} label={event.peer === 'A' ? '[A]' : '[B]'} />
    case 'done':
      return (
        <Text color={event.ok ? 'green' : 'red'} bold>
          {event.ok ? '✓' : '✗'} {event.reason} in {event.elapsedMs} ms
        </Text>
      )
  }
}

export function DemoView({ events }: { events: readonly DemoEvent[] }) {
  const of = (peer: 'A' | 'B') => events.flatMap((e) => (e.type === 'peer' && e.peer === peer ? [e.event] : []))
  return (
    <>
      <Static items={events.map((event, i) => ({ event, i }))}>{({ event, i }) => <DemoLine key={i} event={event} />}</Static>
      <Box>
        <SessionPanel events={of('A')} title="peer A" />
        <SessionPanel events={of('B')} title="peer B" />
      </Box>
    </>
  )
}

function LiveDemo({ emitter }: { emitter: Emitter<DemoEvent> }) {
  return <DemoView events={useEvents(emitter)} />
}

export function showDemo(emitter: Emitter<DemoEvent>): () => Promise<void> {
  return mount(<LiveDemo emitter={emitter} />)
}
