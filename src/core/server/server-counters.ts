// The server's counters, in one place: stats() (the `stopped` line) and the Prometheus metrics both read
// these numbers, so the two always agree exactly. Every drop and refusal has a reason (the DERP habit):
// an operator sees why, not only how many.
export const DROP_REASONS = ['no_subscriber', 'queue_full', 'subscriber_gone'] as const
export const PUBLISH_REFUSALS = ['rate', 'size', 'invalid', 'auth'] as const
export const SUBSCRIBE_REFUSALS = ['invalid', 'auth', 'rate', 'connection_limit', 'server_limit', 'shutting_down'] as const
export const CONNECTION_REFUSALS = ['max_connections', 'max_connections_per_ip'] as const
export const CONNECTION_CLOSES = ['handshake_timeout', 'idle', 'auth_failures', 'drain', 'client'] as const
export const STUN_RESULTS = ['answered', 'rate_limited', 'malformed'] as const

export type DropReason = (typeof DROP_REASONS)[number]
export type PublishRefusal = (typeof PUBLISH_REFUSALS)[number]
export type SubscribeRefusal = (typeof SUBSCRIBE_REFUSALS)[number]

export type ByReason<R extends string> = Record<R, number>

export function zeroes<R extends string>(reasons: readonly R[]): ByReason<R> {
  return Object.fromEntries(reasons.map((r) => [r, 0])) as ByReason<R>
}

export function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0)
}

export class ServerCounters {
  published = 0
  delivered = 0
  readonly dropped = zeroes(DROP_REASONS)
  readonly refusedPublishes = zeroes(PUBLISH_REFUSALS)
  readonly refusedSubscribes = zeroes(SUBSCRIBE_REFUSALS)
  connectionsAccepted = 0
  readonly connectionsRefused = zeroes(CONNECTION_REFUSALS)
  readonly connectionsClosed = zeroes(CONNECTION_CLOSES)
  readonly stun = zeroes(STUN_RESULTS)
}
