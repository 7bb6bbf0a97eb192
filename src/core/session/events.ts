// The one event union a session emits; the Ink view and the NDJSON writer both render exactly these.
import type { BackendStatus } from '../backend.js'
import type { IceRole } from '../keys.js'
import type { MessageKind } from '../message-kind.js'
import type { ForwardStats } from './forwarder.js'

export type SessionState =
  | 'idle' // subscribed, waiting for the peer's credentials
  | 'gathering' // remote credentials known, gathering local candidates
  | 'connecting' // a local and a remote candidate exist, connect() called
  | 'checking' // connectivity checks on the wire
  | 'connected' // ICE nominated a pair, and the peer is heard on it
  | 'disconnected' // connected, but nothing heard from the peer on the pair for 5 s (back to 'connected' if it is)
  | 'restarting' // the peer restarted (new credentials): a new local agent
  | 'failed'
  | 'closed'

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay'

export interface CandidateInfo {
  type: CandidateType
  protocol: 'udp' | 'tcp'
  address: string
  port: number
  priority: number
  foundation: string
  relatedAddress?: string
  relatedPort?: number
  /** Relay candidates: the transport to the TURN server. */
  relayProtocol?: 'udp' | 'tcp' | 'tls' | 'dtls'
  /** TCP candidates: active, passive or simultaneous-open. */
  tcpType?: 'active' | 'passive' | 'so'
}

/** A TURN server the session uses (never its password). */
export interface RelayServerInfo {
  url: string
  username: string
  /** 'flag': --turn; 'server': the signaling server's RelayRegistry. */
  source: 'flag' | 'server'
  /** ISO 8601, for time-limited credentials. */
  expires?: string
}

interface At {
  /** ISO 8601 time the event happened. */
  at: string
}

export type SessionEvent = At &
  (
    | { type: 'role'; ours: string; theirs: string; role: IceRole; reason: string }
    | { type: 'subscribed'; key: string; peer: string; backend: string }
    | { type: 'state'; state: SessionState; previous: SessionState; reason?: string }
    | { type: 'envelope'; direction: 'in' | 'out'; kind: MessageKind; size: number; backend: string; detail?: string }
    | { type: 'candidate'; side: 'local' | 'remote'; candidate: CandidateInfo }
    | { type: 'pair'; local: CandidateInfo; remote: CandidateInfo }
    | { type: 'verified'; rttMs: number }
    | { type: 'unverified'; reason: string }
    | { type: 'backend'; status: BackendStatus }
    | { type: 'error'; source: 'envelope' | 'ice' | 'backend' | 'publish' | 'probe' | 'forward'; message: string }
    | { type: 'relays'; stun: string[]; turn: RelayServerInfo[]; skipped: string[]; /** Credentials fetched again before they expired. */ renewed?: true }
    | ({ type: 'forward' } & ForwardStats)
  )

export type SessionEventType = SessionEvent['type']

/** An event before its time stamp: what the session's parts hand to the session to emit. Omit per variant. */
export type SessionEventBody = SessionEvent extends infer E ? (E extends unknown ? Omit<E, 'at'> : never) : never
