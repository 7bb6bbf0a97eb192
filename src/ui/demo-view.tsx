// The demo on a terminal: one log for both peers (labelled A and B), and their two panels side by side.
import { Box, Static, Text } from 'ink'
import type { DemoEvent } from '../core/demo.js'
import type { Emitter } from '../core/emitter.js'
import { clock } from './format.js'
import { SessionLogLine, SessionPanel } from './session-view.js'
import { EMPTY_SUMMARY, reduceSummary, type SessionSummary } from './session-summary.js'
import { mount } from './mount.js'
import { useEventLog } from './use-events.js'

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

type Panels = Record<'A' | 'B', SessionSummary>
const NO_PANELS: Panels = { A: EMPTY_SUMMARY, B: EMPTY_SUMMARY }
const reducePanels = (panels: Panels, e: DemoEvent): Panels => (e.type === 'peer' ? { ...panels, [e.peer]: reduceSummary(panels[e.peer], e.event) } : panels)

function DemoScreen({ log, frame, panels }: { log: readonly DemoEvent[]; frame: number; panels: Panels }) {
  return (
    <>
      <Static key={frame} items={log.map((event, i) => ({ event, i }))}>{({ event, i }) => <DemoLine key={i} event={event} />}</Static>
      <Box>
        <SessionPanel summary={panels.A} title="peer A" />
        <SessionPanel summary={panels.B} title="peer B" />
      </Box>
    </>
  )
}

export function DemoView({ events }: { events: readonly DemoEvent[] }) {
  return <DemoScreen log={events} frame={0} panels={events.reduce(reducePanels, NO_PANELS)} />
}

function LiveDemo({ emitter }: { emitter: Emitter<DemoEvent> }) {
  const log = useEventLog(emitter, reducePanels, NO_PANELS)
  return <DemoScreen log={log.fresh} frame={log.frame} panels={log.state} />
}

export function showDemo(emitter: Emitter<DemoEvent>): () => Promise<void> {
  return mount(<LiveDemo emitter={emitter} />)
}
