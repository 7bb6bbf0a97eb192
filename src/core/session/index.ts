// The session API the CLI and renderers import.
export { Session, SessionError, roleReason, DEFAULT_PROBE_TIMEOUT_MS, type SessionOptions } from './session.js'
export type { IceOptions } from './ice-options.js'
export { formatCandidate } from './candidate-mapping.js'
export type { CandidateInfo, CandidateType, SessionEvent, SessionEventType, SessionState } from './events.js'
