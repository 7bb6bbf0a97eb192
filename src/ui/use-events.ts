// Collects an emitter's events into React state: components stay pure functions of the event list.
// The list only grows, which is what Ink's <Static> needs (it renders items past the last count).
import { useEffect, useState } from 'react'
import type { Emitter } from '../core/emitter.js'

export function useEvents<E>(emitter: Emitter<E>): E[] {
  const [events, setEvents] = useState<E[]>([])
  useEffect(() => emitter.on((event) => setEvents((list) => [...list, event])), [emitter])
  return events
}
