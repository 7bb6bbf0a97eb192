// What a signaling server is configured with: its limits (each with a safe default and the `signal` flag
// that sets it) and its listen addresses. One parser for "HOST:PORT" serves --listen, --metrics and the
// STUN flags.

/**
 * Why a server did not start, set where it was raised (the CLI maps kinds to exit codes, never messages):
 * invalid configuration, an address it could not listen on, or a --cluster broker that did not answer.
 */
export type SignalingServerErrorKind = 'invalid' | 'listen' | 'unreachable'

export class SignalingServerError extends Error {
  override name = 'SignalingServerError'
  constructor(
    message: string,
    readonly kind: SignalingServerErrorKind = 'invalid',
  ) {
    super(message)
  }
}

export interface ServerLimits {
  /** Largest serialized Envelope a publisher may send. */
  maxEnvelopeBytes: number
  /** Envelopes waiting for one slow subscriber before the oldest is dropped. */
  queueMaxEnvelopes: number
  /** Bytes waiting for one slow subscriber before the oldest envelope is dropped. */
  queueMaxBytes: number
  /** Open Subscribe streams one HTTP/2 connection may hold. */
  maxSubscriptionsPerConnection: number
  /** Open Subscribe streams on the whole server. */
  maxStreams: number
  /**
   * HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (grpc.max_concurrent_streams): calls past it wait
   * in the client. Must exceed maxSubscriptionsPerConnection, or an extra subscription would wait forever
   * instead of being refused with a status.
   */
  maxConnectionStreams: number
  /** Sustained publishes per second per connection (token bucket rate). */
  publishRatePerSecond: number
  /** Publishes one connection may send at once after being idle (token bucket size). */
  publishBurst: number
  /** Sustained Subscribe calls per second per connection (token bucket rate); refused ones count too. */
  subscribeRatePerSecond: number
  /** Subscribe calls one connection may make at once after being idle (token bucket size). */
  subscribeBurst: number
  /** Open client connections on the whole server; more are closed as soon as they are accepted. */
  maxConnections: number
  /** Open client connections from one IP address. */
  maxConnectionsPerIp: number
  /** A connection must complete the HTTP/2 preface and SETTINGS (after TLS) within this, or it is closed. */
  handshakeTimeoutMs: number
  /** A connection without any open stream (no subscription, no call) is closed (GOAWAY) after this. */
  idleTimeoutMs: number
  /** Failed `--require-auth` proofs after which a connection is shed (GOAWAY ENHANCE_YOUR_CALM, closed). */
  maxAuthFailures: number
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = {
  maxEnvelopeBytes: 65536,
  queueMaxEnvelopes: 1024,
  queueMaxBytes: 4 * 1024 * 1024,
  maxSubscriptionsPerConnection: 64,
  // 20,000: the open-file limit of the machines this runs on; an idle peer costs ~25 KiB (BENCHMARKS.md).
  maxStreams: 20_000,
  maxConnectionStreams: 256,
  publishRatePerSecond: 200,
  publishBurst: 400,
  subscribeRatePerSecond: 20,
  subscribeBurst: 64,
  maxConnections: 20_000,
  maxConnectionsPerIp: 256,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxAuthFailures: 10,
}

export function resolveLimits(partial: Partial<ServerLimits> = {}): ServerLimits {
  const limits = { ...DEFAULT_LIMITS }
  for (const [name, value] of Object.entries(partial) as [keyof ServerLimits, number | undefined][]) {
    if (value === undefined) continue
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new SignalingServerError(`server limit ${name} must be a positive integer, got ${value}`)
    }
    limits[name] = value
  }
  if (limits.maxConnectionStreams <= limits.maxSubscriptionsPerConnection) {
    throw new SignalingServerError(
      `server limit maxConnectionStreams (${limits.maxConnectionStreams}) must exceed maxSubscriptionsPerConnection (${limits.maxSubscriptionsPerConnection}): otherwise a subscription over the limit waits forever instead of being refused`,
    )
  }
  return limits
}

/** "HOST:PORT", "[V6]:PORT" or ":PORT". */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim())
  const port = match ? Number(match[3]) : NaN
  if (!match || port > 65535) {
    throw new SignalingServerError(`listen address "${listen}" is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080 or :8080)`)
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port }
}

export function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** 0.0.0.0 or ::: an address to listen on, never one to tell peers. */
export function isUnspecified(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === ''
}
