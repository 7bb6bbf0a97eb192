// The STUN/TURN servers a session starts with: the flags' servers first, then the relays every grpc://
// backend hands out through RelayRegistry.GetRelays (WIRE.md §3), asked on the backend's own URL rules
// (backends/grpc-target.ts), so `?insecure=1` means plain text here exactly as for Subscribe.
import { Metadata, status as grpcStatus, type ServiceError } from '@grpc/grpc-js'
import { RelayRegistryClient, type GetRelaysResp, type RelayInfo } from '../../gen/signaling/relay.js'
import { grpcChannelCredentials, grpcChannelOptions, parseGrpcTarget } from '../backends/grpc-target.js'
import { unaryCall } from '../backends/grpc-unary.js'
import { iceServersFromRelays, type IceServers, type StunServer, type TurnServer } from './ice-servers.js'

export type { IceServers, StunServer, TurnServer } from './ice-servers.js'

export interface FetchRelaysOptions {
  /** 32-byte public key the server derives time-limited credentials for. */
  publicKey: Uint8Array
  caFile?: string
  timeoutMs?: number
  /** Aborting cancels the call at once (Ctrl-C never waits for the deadline). */
  signal?: AbortSignal
}

export const DEFAULT_FETCH_RELAYS_TIMEOUT_MS = 5000

/**
 * RelayRegistry.GetRelays on a grpc:// backend URL (same TLS query options as the backend). A server that
 * does not offer the service (UNIMPLEMENTED) has no relays: that is an empty list, not an error.
 */
export async function fetchRelays(backendUrl: string, options: FetchRelaysOptions): Promise<RelayInfo[]> {
  const url = new URL(backendUrl)
  if (url.protocol !== 'grpc:') return []
  const target = parseGrpcTarget(url)
  const client = new RelayRegistryClient(target.address, grpcChannelCredentials(target, options.caFile), grpcChannelOptions())
  const timeoutMs = options.timeoutMs ?? DEFAULT_FETCH_RELAYS_TIMEOUT_MS
  const { signal } = options
  try {
    const resp = await unaryCall<GetRelaysResp>((deadline, done) => client.getRelays({ publicKey: options.publicKey }, new Metadata(), { deadline }, done), timeoutMs, signal)
    return resp.relays
  } catch (err) {
    const e = err as ServiceError
    if (e.code === grpcStatus.UNIMPLEMENTED) return []
    const what = signal?.aborted ? 'aborted' : e.code === grpcStatus.DEADLINE_EXCEEDED ? `no answer within ${timeoutMs} ms` : e.details || e.message
    throw new Error(`could not get relays from ${target.name}: ${what}`)
  } finally {
    client.close()
  }
}

export interface ResolveIceServersOptions {
  /** --stun values, parsed (parseStunServer), used first. */
  stunServers?: StunServer[]
  /** --turn values, parsed (parseTurnServer), used first. */
  turnServers?: TurnServer[]
  /** Backends to ask with GetRelays (only grpc:// ones are asked). */
  backendUrls?: string[]
  publicKey: Uint8Array
  caFile?: string
  timeoutMs?: number
  signal?: AbortSignal
}

export interface ResolvedIceServers extends IceServers {
  /** For the 'relays' event: what came from where (no passwords). */
  turnInfo: { url: string; username: string; source: 'flag' | 'server'; expires?: string }[]
  /** Relays the servers offered that cannot be used, with the reason. */
  skipped: string[]
  /** Servers that could not be asked (the session goes on without their relays). */
  errors: string[]
}

/** The flags' servers first, then every grpc:// backend's relays (asked in parallel), duplicates dropped. */
export async function resolveIceServers(options: ResolveIceServersOptions): Promise<ResolvedIceServers> {
  const out: ResolvedIceServers = { stunServers: [...(options.stunServers ?? [])], turnServers: [], turnInfo: [], skipped: [], errors: [] }
  const addTurn = (server: TurnServer, source: 'flag' | 'server') => {
    if (out.turnServers.some((t) => t.url === server.url && t.username === server.username)) return
    out.turnServers.push(server)
    out.turnInfo.push({ url: server.url, username: server.username, source, ...(server.expires ? { expires: server.expires.toISOString() } : {}) })
  }
  for (const server of options.turnServers ?? []) addTurn(server, 'flag')
  const asked = await Promise.allSettled(
    (options.backendUrls ?? []).map((url) =>
      fetchRelays(url, {
        publicKey: options.publicKey,
        ...(options.caFile ? { caFile: options.caFile } : {}),
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      }),
    ),
  )
  for (const result of asked) {
    if (result.status === 'rejected') {
      out.errors.push((result.reason as Error).message)
      continue
    }
    const servers = iceServersFromRelays(result.value)
    for (const stun of servers.stunServers) if (!out.stunServers.some((s) => s.url === stun.url)) out.stunServers.push(stun)
    for (const server of servers.turnServers) addTurn(server, 'server')
    out.skipped.push(...servers.skipped)
  }
  return out
}
