// What both HTTP/2 transports (node:http2's in h2-transport.ts, ours in ../h2js/) announce and keep alike:
// the SETTINGS they send and the server keepalive.
import type { TransportOptions } from '../transport.js'

/** Server keepalive (as grpc-js's defaults): a PING every 2 h to each connection, which must answer in 20 s. */
export const KEEPALIVE_INTERVAL_MS = 2 * 60 * 60 * 1000
export const KEEPALIVE_TIMEOUT_MS = 20_000

export interface ServerSettings {
  maxConcurrentStreams: number
  initialWindowSize: number
  maxHeaderListSize: number
}

/**
 * HTTP/2 settings sized for many idle peers (measured in BENCHMARKS.md, "Idle peers"): a subscriber
 * receives envelopes of ≤ 64 KiB and sends one small request per call, so the server needs neither a large
 * receive window nor a large header table.
 */
export function sessionSettings(options: TransportOptions): ServerSettings {
  return {
    maxConcurrentStreams: options.maxConcurrentStreams,
    // Requests are ≤ maxReceiveBytes; a window of that (≥ 64 KiB, the protocol's default) never stalls one.
    initialWindowSize: Math.min(Math.max(65_535, options.maxReceiveBytes + 16), 2 ** 31 - 1),
    maxHeaderListSize: 16 * 1024,
  }
}
