// Folds a session's events into what the live panel shows: one event at a time (reduceSummary), so the live
// view keeps no history and its work per frame does not grow with the session's age; pure, so the panel is
// a function of the events.
import type { CandidateInfo, SessionEvent, SessionState } from '../core/session/events.js'

/** The panel shows this many state changes (and the session's start); older ones fall off. */
export const TIMELINE_MAX = 12
/** Candidates kept per side (the counts go on): a peer cannot grow the panel without bound. */
export const CANDIDATES_MAX = 32

export type ForwardEvent = Extract<SessionEvent, { type: 'forward' }>

export interface SessionSummary {
  ours?: string
  theirs?: string
  role?: string
  roleReason?: string
  state: SessionState
  /** When the session started (its first event), for the timeline's offsets. */
  startedAt?: string
  /** The latest TIMELINE_MAX states. */
  timeline: { state: SessionState; at: string }[]
  envelopesIn: number
  envelopesOut: number
  localCandidates: CandidateInfo[]
  remoteCandidates: CandidateInfo[]
  localCandidateCount: number
  remoteCandidateCount: number
  pair?: { local: CandidateInfo; remote: CandidateInfo }
  rttMs?: number
  unverified?: string
  errors: number
  lastError?: string
  backend?: string
  /** The latest forwarding counters. */
  forward?: ForwardEvent
}

export const EMPTY_SUMMARY: SessionSummary = Object.freeze({
  state: 'idle',
  timeline: [],
  envelopesIn: 0,
  envelopesOut: 0,
  localCandidates: [],
  remoteCandidates: [],
  localCandidateCount: 0,
  remoteCandidateCount: 0,
  errors: 0,
}) as SessionSummary

const withTimeline = (timeline: SessionSummary['timeline'], entry: SessionSummary['timeline'][number]) => [...timeline.slice(-(TIMELINE_MAX - 1)), entry]

/** The summary after one more event; never mutates `prev`. */
export function reduceSummary(prev: SessionSummary, e: SessionEvent): SessionSummary {
  const s: SessionSummary = { ...prev, startedAt: prev.startedAt ?? e.at }
  switch (e.type) {
    case 'role':
      Object.assign(s, { ours: e.ours, theirs: e.theirs, role: e.role, roleReason: e.reason })
      // A session starts idle without an event for it; the timeline starts there.
      if (s.timeline.length === 0) s.timeline = [{ state: 'idle', at: e.at }]
      break
    case 'state':
      s.state = e.state
      s.timeline = withTimeline(s.timeline, { state: e.state, at: e.at })
      // The path is gone (the peer left, went silent for good, or restarted): its pair and RTT with it.
      if (e.state === 'restarting' || e.state === 'failed' || e.state === 'idle') {
        Object.assign(s, { localCandidates: [], remoteCandidates: [], localCandidateCount: 0, remoteCandidateCount: 0 })
        delete s.pair
        delete s.rttMs
        delete s.unverified
      }
      break
    case 'envelope':
      if (e.direction === 'in') s.envelopesIn++
      else s.envelopesOut++
      break
    case 'candidate':
      if (e.side === 'local') {
        s.localCandidateCount++
        if (s.localCandidates.length < CANDIDATES_MAX) s.localCandidates = [...s.localCandidates, e.candidate]
      } else {
        s.remoteCandidateCount++
        if (s.remoteCandidates.length < CANDIDATES_MAX) s.remoteCandidates = [...s.remoteCandidates, e.candidate]
      }
      break
    case 'pair':
      s.pair = { local: e.local, remote: e.remote }
      break
    case 'verified':
      s.rttMs = e.rttMs
      delete s.unverified
      break
    case 'unverified':
      s.unverified = e.reason
      break
    case 'backend':
      s.backend = e.status.state === 'reconnecting' ? `reconnecting: ${e.status.reason}` : e.status.state
      break
    case 'error':
      s.errors++
      s.lastError = `${e.source}: ${e.message}`
      break
    case 'subscribed':
      s.backend = `subscribed via ${e.backend}`
      break
    case 'forward':
      s.forward = e
      break
  }
  return s
}

export function summarize(events: readonly SessionEvent[]): SessionSummary {
  return events.reduce(reduceSummary, EMPTY_SUMMARY)
}
