// Folds a session's event list into what the live panel shows; pure, so the view is a function of events.
import type { CandidateInfo, SessionEvent, SessionState } from '../core/session/events.js'

export interface SessionSummary {
  ours?: string
  theirs?: string
  role?: string
  roleReason?: string
  state: SessionState
  timeline: { state: SessionState; at: string }[]
  envelopesIn: number
  envelopesOut: number
  localCandidates: CandidateInfo[]
  remoteCandidates: CandidateInfo[]
  pair?: { local: CandidateInfo; remote: CandidateInfo }
  rttMs?: number
  unverified?: string
  errors: number
  lastError?: string
  backend?: string
}

export function summarize(events: readonly SessionEvent[]): SessionSummary {
  const s: SessionSummary = { state: 'idle', timeline: [], envelopesIn: 0, envelopesOut: 0, localCandidates: [], remoteCandidates: [], errors: 0 }
  for (const e of events) {
    switch (e.type) {
      case 'role':
        Object.assign(s, { ours: e.ours, theirs: e.theirs, role: e.role, roleReason: e.reason })
        // A session starts idle without an event for it; the timeline starts there.
        if (s.timeline.length === 0) s.timeline.push({ state: 'idle', at: e.at })
        break
      case 'state':
        s.state = e.state
        s.timeline.push({ state: e.state, at: e.at })
        // The path is gone (the peer left, went silent for good, or restarted): its pair and RTT with it.
        if (e.state === 'restarting' || e.state === 'failed' || e.state === 'idle') {
          s.localCandidates = []
          s.remoteCandidates = []
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
        ;(e.side === 'local' ? s.localCandidates : s.remoteCandidates).push(e.candidate)
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
    }
  }
  return s
}
