// grpc://HOST:PORT?insecure=…&skip_verify=…&auth_key=… (WIRE.md §6) read in one place: the signaling
// backend and the relay fetch (GetRelays) on the same URL must agree on TLS, so both use this parser and
// these channel credentials. Booleans follow Go's strconv.ParseBool, as cunīcu reads the same URLs.
import { readFileSync } from 'node:fs'
import { credentials as grpcCredentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js'
import { BackendError } from '../backend.js'

export type GrpcTls = 'insecure' | 'verify' | 'skip-verify'

export interface GrpcTarget {
  /** "grpc://HOST:PORT" without the query, for messages. */
  name: string
  /** "HOST:PORT" for the grpc-js channel. */
  address: string
  tls: GrpcTls
  /** ?auth_key= (base64), unparsed: the backend reads it as a key. */
  authKey?: string
}

const PARAMS = ['insecure', 'skip_verify', 'auth_key']
const GO_TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True']
const GO_FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False']

/** Throws BackendError naming the bad part (missing host, unknown parameter, a boolean Go would refuse). */
export function parseGrpcTarget(url: URL): GrpcTarget {
  if (url.protocol !== 'grpc:') throw new BackendError(`backend ${url}: not a grpc:// URL`)
  if (!url.host) throw new BackendError(`backend ${url}: missing HOST:PORT (expected e.g. grpc://127.0.0.1:8080?insecure=true)`)
  for (const name of url.searchParams.keys()) {
    if (!PARAMS.includes(name)) throw new BackendError(`backend ${url}: unknown parameter ${name}= (expected ${PARAMS.map((p) => `${p}=`).join(', ')})`)
  }
  const insecure = booleanParam(url, 'insecure')
  const skipVerify = booleanParam(url, 'skip_verify')
  const target: GrpcTarget = { name: `${url.protocol}//${url.host}`, address: url.host, tls: insecure ? 'insecure' : skipVerify ? 'skip-verify' : 'verify' }
  const authKey = url.searchParams.get('auth_key')
  if (authKey !== null) target.authKey = authKey
  return target
}

export const RECONNECT_INITIAL_MS = 250
export const RECONNECT_MAX_MS = 5_000

/**
 * The channel options of every client of a signaling server (the backend's streams and calls, the relay
 * fetch). Equal options and credentials let grpc-js's subchannel pool give clients that are open at the same
 * time one connection: `session` asks GetRelays while it subscribes, so both share one TCP and HTTP/2 set-up
 * (GRPC_TRACE=subchannel shows one subchannel).
 */
export function grpcChannelOptions(): ChannelOptions {
  return {
    // grpc-js defaults to 1 s growing to 120 s between connection attempts; match our stream back-off
    // so a restarted server is found again within seconds.
    'grpc.initial_reconnect_backoff_ms': RECONNECT_INITIAL_MS,
    'grpc.max_reconnect_backoff_ms': RECONNECT_MAX_MS,
    // A half-open connection (server host gone, NAT state dropped) never errors by itself: ping while a
    // subscription is open. 5 min is the most frequent ping a Go gRPC server (cunīcu's) accepts by
    // default before answering "too many pings"; 20 s without the pong means the connection is dead.
    'grpc.keepalive_time_ms': 300_000,
    'grpc.keepalive_timeout_ms': 20_000,
  }
}

/** The channel credentials for a target: plain text, TLS with the system roots (or caFile), or unverified TLS. */
export function grpcChannelCredentials(target: GrpcTarget, caFile?: string): ChannelCredentials {
  if (target.tls === 'insecure') return grpcCredentials.createInsecure()
  let roots: Buffer | null = null
  if (caFile) {
    try {
      roots = readFileSync(caFile)
    } catch (err) {
      throw new BackendError(`backend ${target.name}: cannot read CA file ${caFile}: ${(err as Error).message}`)
    }
  }
  if (target.tls === 'skip-verify') {
    return grpcCredentials.createSsl(roots, null, null, { rejectUnauthorized: false, checkServerIdentity: () => undefined })
  }
  return grpcCredentials.createSsl(roots)
}

function booleanParam(url: URL, name: string): boolean {
  const value = url.searchParams.get(name)
  if (value === null) return false
  if (GO_TRUE.includes(value)) return true
  if (GO_FALSE.includes(value)) return false
  throw new BackendError(`backend ${url}: ${name}=${value} is not true or false (1, t, true, 0, f, false)`)
}
