// Collects an emitter's events into React state: components stay pure functions of the event list.
// The list only grows, which is what Ink's <Static> needs (it renders items past the last count).
// Events are batched into one render per frame, so a burst of envelopes does not re-render per event
// and the renderer does not stall the engine it displays (e.g. the path probe's RTT).
import { useEffect, useState } from 'react'
import type { Emitter } from '../core/emitter.js'

export const FRAME_MS = 40

export function useEvents<E>(emitter: Emitter<E>): E[] {
  const [events, setEvents] = useState<E[]>([])
  useEffect(() => {
    let pending: E[] = []
    let timer: NodeJS.Timeout | undefined
    const flush = () => {
      timer = undefined
      const batch = pending
      pending = []
      setEvents((list) => [...list, ...batch])
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
  return events
}
