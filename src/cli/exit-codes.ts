// Exit codes, documented in the README: scripts branch on them.
export const ExitCode = {
  Ok: 0,
  /** Unexpected failure. */
  Error: 1,
  /** Bad flags, arguments or input (key, JSON line). */
  Usage: 2,
  /** The backend could not be reached, or a publish failed. */
  Backend: 3,
  /** --timeout passed before the goal (count, connection) was reached. */
  Timeout: 4,
  /** The ICE session failed for good. */
  SessionFailed: 5,
} as const
