// STUN/TURN servers for a session: the URLs users type (RFC 7064/7065, plus cunīcu's credential forms) and
// the ones a cunicu-ts or cunīcu signaling server hands out through RelayRegistry.GetRelays (WIRE.md §3).
import { readFileSync } from 'node:fs'
import { credentials as grpcCredentials, Metadata, status as grpcStatus, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js'
import { RelayRegistryClient, type GetRelaysResp, type RelayInfo } from '../../gen/signaling/relay.js'

export class RelayUrlError extends Error {
  override name = 'RelayUrlError'
}

export type IceUrlScheme = 'stun' | 'stuns' | 'turn' | 'turns'

export interface IceUrl {
  scheme: IceUrlScheme
  host: string
  port: number
  /** TURN only: the transport to the TURN server (?transport=); default udp. */
  transport?: 'udp' | 'tcp'
  /** Credentials written as `turn:USER:PASS@HOST` (cunīcu's form) or `?username=U&password=P`. */
  username?: string
  password?: string
  /** The whole query, for options such as secret= and ttl= (server side). */
  query: URLSearchParams
}

const URL_PATTERN = /^(stuns?|turns?):(?:([^@/?#]*)@)?(\[[0-9a-fA-F:.]+\]|[^:/?#@[\]]+)(?::(\d+))?(?:\?(.*))?$/

/** Parses "turn:HOST[:PORT][?transport=udp&username=U&password=P]", "turn:U:P@HOST", "stun:HOST[:PORT]". */
export function parseIceUrl(text: string): IceUrl {
  const match = URL_PATTERN.exec(text.trim())
  if (!match || match[1] === undefined || match[3] === undefined) {
    throw new RelayUrlError(`"${text}" is not a STUN/TURN URL: expected e.g. stun:HOST:3478 or turn:HOST:3478?username=U&password=P`)
  }
  const scheme = match[1] as IceUrlScheme
  const host = match[3].replace(/^\[|\]$/g, '')
  const port = match[4] === undefined ? (scheme.endsWith('s') ? 5349 : 3478) : Number(match[4])
  if (port < 1 || port > 65535) throw new RelayUrlError(`"${text}": port ${port} is out of range`)
  const query = new URLSearchParams(match[5] ?? '')
  const url: IceUrl = { scheme, host, port, query }
  if (scheme.startsWith('turn')) {
    const transport = query.get('transport') ?? 'udp'
    if (transport !== 'udp' && transport !== 'tcp') throw new RelayUrlError(`"${text}": transport=${transport} is not udp or tcp`)
    url.transport = transport
  }
  let username = query.get('username') ?? undefined
  let password = query.get('password') ?? undefined
  if (match[2] !== undefined) {
    const at = match[2].indexOf(':')
    username = decodeURIComponent(at < 0 ? match[2] : match[2].slice(0, at))
    if (at >= 0) password = decodeURIComponent(match[2].slice(at + 1))
  }
  if (username !== undefined) url.username = username
  if (password !== undefined) url.password = password
  return url
}

/** The URL without credentials or options, as servers hand it out: "turn:HOST:PORT?transport=udp", "stun:HOST:PORT". */
export function formatIceUrl(url: Pick<IceUrl, 'scheme' | 'host' | 'port' | 'transport'>): string {
  const host = url.host.includes(':') ? `[${url.host}]` : url.host
  return `${url.scheme}:${host}:${url.port}${url.transport ? `?transport=${url.transport}` : ''}`
}

/** A TURN server the ICE agent can allocate a relayed candidate on. */
export interface TurnServer {
  /** For messages and events: the URL without credentials. */
  url: string
  host: string
  port: number
  transport: 'udp' | 'tcp'
  username: string
  password: string
  /** Time-limited credentials (TURN REST): when they stop working. */
  expires?: Date
}

/** Where a session's STUN/TURN servers came from. */
export interface IceServers {
  stunUrls: string[]
  turnServers: TurnServer[]
}

/** `--turn` values: TURN URLs that carry their credentials. */
export function parseTurnUrl(text: string): TurnServer {
  const url = parseIceUrl(text)
  if (url.scheme === 'turns') throw new RelayUrlError(`TURN server "${text}": turns: (TURN over TLS) is not supported, use turn:`)
  if (url.scheme !== 'turn') throw new RelayUrlError(`"${text}" is not a TURN URL: expected turn:HOST:PORT?username=U&password=P`)
  if (!url.username || url.password === undefined) {
    throw new RelayUrlError(`TURN server "${text}" has no credentials: add ?username=U&password=P (or use the server's relay registry)`)
  }
  return { url: formatIceUrl(url), host: url.host, port: url.port, transport: url.transport ?? 'udp', username: url.username, password: url.password }
}

/**
 * What a GetRelays answer means for our agent: stun: URLs become STUN servers, turn: URLs with credentials
 * TURN servers; the rest (turns:, stuns:, TURN without credentials) is skipped with a reason.
 */
export function iceServersFromRelays(relays: readonly RelayInfo[]): IceServers & { skipped: string[] } {
  const out: IceServers & { skipped: string[] } = { stunUrls: [], turnServers: [], skipped: [] }
  for (const relay of relays) {
    let url: IceUrl
    try {
      url = parseIceUrl(relay.url)
    } catch (err) {
      out.skipped.push((err as Error).message)
      continue
    }
    if (url.scheme === 'stun') {
      out.stunUrls.push(formatIceUrl(url))
    } else if (url.scheme === 'turn' && relay.username !== '' && relay.password !== '') {
      const server: TurnServer = {
        url: formatIceUrl(url),
        host: url.host,
        port: url.port,
        transport: url.transport ?? 'udp',
        username: relay.username,
        password: relay.password,
      }
      if (relay.expires && relay.expires.seconds > 0) server.expires = new Date(relay.expires.seconds * 1000 + Math.floor(relay.expires.nanos / 1e6))
      out.turnServers.push(server)
    } else {
      out.skipped.push(`${relay.url}: ${url.scheme === 'turn' ? 'no credentials' : `${url.scheme}: is not supported`}`)
    }
  }
  return out
}

export interface FetchRelaysOptions {
  /** 32-byte public key the server derives time-limited credentials for. */
  publicKey: Uint8Array
  caFile?: string
  timeoutMs?: number
}

export const DEFAULT_FETCH_RELAYS_TIMEOUT_MS = 5000

/**
 * RelayRegistry.GetRelays on a grpc:// backend URL (same TLS query options as the backend). A server that
 * does not offer the service (UNIMPLEMENTED) has no relays: that is an empty list, not an error.
 */
export async function fetchRelays(backendUrl: string, options: FetchRelaysOptions): Promise<RelayInfo[]> {
  const url = new URL(backendUrl)
  if (url.protocol !== 'grpc:') return []
  const insecure = url.searchParams.get('insecure') === 'true'
  const skipVerify = url.searchParams.get('skip_verify') === 'true'
  const client = new RelayRegistryClient(url.host, channelCredentials(insecure, skipVerify, options.caFile))
  const timeoutMs = options.timeoutMs ?? DEFAULT_FETCH_RELAYS_TIMEOUT_MS
  try {
    const resp = await new Promise<GetRelaysResp>((resolve, reject) =>
      client.getRelays({ publicKey: options.publicKey }, new Metadata(), { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, r: GetRelaysResp) =>
        err ? reject(err) : resolve(r),
      ),
    )
    return resp.relays
  } catch (err) {
    const e = err as ServiceError
    if (e.code === grpcStatus.UNIMPLEMENTED) return []
    const what = e.code === grpcStatus.DEADLINE_EXCEEDED ? `no answer within ${timeoutMs} ms` : (e.details || e.message)
    throw new Error(`could not get relays from ${url.protocol}//${url.host}: ${what}`)
  } finally {
    client.close()
  }
}

function channelCredentials(insecure: boolean, skipVerify: boolean, caFile: string | undefined): ChannelCredentials {
  if (insecure) return grpcCredentials.createInsecure()
  const roots = caFile ? readFileSync(caFile) : null
  if (skipVerify) return grpcCredentials.createSsl(roots, null, null, { rejectUnauthorized: false, checkServerIdentity: () => undefined })
  return grpcCredentials.createSsl(roots)
}

export interface ResolveIceServersOptions {
  /** --stun values, used first. */
  stunUrls?: string[]
  /** --turn values, parsed (parseTurnUrl), used first. */
  turnServers?: TurnServer[]
  /** Backends to ask with GetRelays (only grpc:// ones are asked). */
  backendUrls?: string[]
  publicKey: Uint8Array
  caFile?: string
  timeoutMs?: number
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
  const out: ResolvedIceServers = { stunUrls: [...(options.stunUrls ?? [])], turnServers: [], turnInfo: [], skipped: [], errors: [] }
  const addTurn = (server: TurnServer, source: 'flag' | 'server') => {
    if (out.turnServers.some((t) => t.url === server.url && t.username === server.username)) return
    out.turnServers.push(server)
    out.turnInfo.push({ url: server.url, username: server.username, source, ...(server.expires ? { expires: server.expires.toISOString() } : {}) })
  }
  for (const server of options.turnServers ?? []) addTurn(server, 'flag')
  const asked = await Promise.allSettled(
    (options.backendUrls ?? []).map((url) =>
      fetchRelays(url, { publicKey: options.publicKey, ...(options.caFile ? { caFile: options.caFile } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) }),
    ),
  )
  for (const result of asked) {
    if (result.status === 'rejected') {
      out.errors.push((result.reason as Error).message)
      continue
    }
    const servers = iceServersFromRelays(result.value)
    for (const url of servers.stunUrls) if (!out.stunUrls.includes(url)) out.stunUrls.push(url)
    for (const server of servers.turnServers) addTurn(server, 'server')
    out.skipped.push(...servers.skipped)
  }
  return out
}
