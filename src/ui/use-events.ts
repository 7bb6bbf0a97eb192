// Live views fold an emitter's events into React state. They keep no history: each frame holds the events
// that arrived since the last one (for the log, which Ink's <Static> writes once, above the live panel)
// and a fold of every event so far (for the panel), so a session that runs for days costs the same memory
// and the same work per frame as one that just started.
// Events are batched into one render per frame, so a burst of envelopes does not re-render per event
// and the renderer does not stall the engine it displays (e.g. the path probe's RTT).
import { useEffect, useRef, useState } from 'react'
import type { Emitter } from '../core/emitter.js'

export const FRAME_MS = 40

export interface EventLog<E, S> {
  /** The events of the latest frame, in order: what the log has not shown yet. */
  fresh: readonly E[]
  /** Counts frames: a new <Static key={frame}> per frame writes just `fresh`. */
  frame: number
  /** Every event so far, folded by the view's reducer (which must not mutate its input). */
  state: S
}

export function useEventLog<E, S>(emitter: Emitter<E>, reduce: (state: S, event: E) => S, initial: S): EventLog<E, S> {
  const [log, setLog] = useState<EventLog<E, S>>({ fresh: [], frame: 0, state: initial })
  const reducer = useRef(reduce) // the latest one, without resubscribing when a caller passes a new function
  reducer.current = reduce
  useEffect(() => {
    let pending: E[] = []
    let timer: NodeJS.Timeout | undefined
    const flush = () => {
      timer = undefined
      const batch = pending
      pending = []
      if (batch.length) setLog((prev) => ({ fresh: batch, frame: prev.frame + 1, state: batch.reduce(reducer.current, prev.state) }))
    }
    const off = emitter.on((event) => {
      pending.push(event)
      timer ??= setTimeout(flush, FRAME_MS)
    })
    return () => {
      off()
      if (timer) clearTimeout(timer)
      flush()
    }
  }, [emitter])
  return log
}

/** The latest `keep` events, oldest first (a window: not for <Static>, which needs a list that only grows). */
export function useEvents<E>(emitter: Emitter<E>, keep = 1000): E[] {
  return useEventLog(emitter, (window: E[], event: E) => [...window.slice(-(keep - 1)), event], [] as E[]).state
}
