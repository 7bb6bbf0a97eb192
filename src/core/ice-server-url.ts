// The one parser for STUN/TURN server URLs (RFC 7064 stun:/stuns:, RFC 7065 turn:/turns:, plus cunīcu's
// `turn:USER:PASS@HOST` credential form). Used by the session's --stun/--turn flags, the relays a server hands
// out (GetRelays) and the server's own `signal --relay` configuration, so all three accept the same text.
// What each user may do with a URL (a session refuses turns:, a registry wants a secret) is decided by them.

export class IceServerUrlError extends Error {
  override name = 'IceServerUrlError'
}

export type IceServerScheme = 'stun' | 'stuns' | 'turn' | 'turns'

export interface IceServerUrl {
  scheme: IceServerScheme
  /** Hostname or IP literal, without IPv6 brackets. */
  host: string
  port: number
  /** TURN only: the transport to the TURN server (?transport=); default udp for turn:, tcp for turns:. */
  transport?: 'udp' | 'tcp'
  /** Credentials written as `turn:USER:PASS@HOST` (cunīcu's form) or `?username=U&password=P`. */
  username?: string
  password?: string
  /** Every query parameter, for options only some users accept (secret=, ttl= on the server side). */
  query: ReadonlyMap<string, string>
}

const URL_PATTERN = /^(stuns?|turns?):(?:([^@/?#]*)@)?(\[[^\]]*\]|[^:/?#@[\]]*)(?::([^/?#]*))?(?:\?(.*))?$/s
/** RFC 1123 host names: letters, digits and inner hyphens per label. */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/

export const DEFAULT_PORTS: Record<IceServerScheme, number> = { stun: 3478, turn: 3478, stuns: 5349, turns: 5349 }

/** Parses "stun:HOST[:PORT]", "turn:HOST[:PORT][?transport=udp&username=U&password=P]", "turn:U:P@HOST:PORT". */
export function parseIceServerUrl(text: string): IceServerUrl {
  const trimmed = text.trim()
  const match = URL_PATTERN.exec(trimmed)
  if (!match || match[1] === undefined || match[3] === undefined) {
    throw new IceServerUrlError(`"${text}" is not a STUN/TURN URL: expected e.g. stun:HOST:3478 or turn:HOST:3478?username=U&password=P`)
  }
  const scheme = match[1] as IceServerScheme
  const host = parseHost(match[3], text)
  const port = match[4] === undefined ? DEFAULT_PORTS[scheme] : parsePort(match[4], text)
  const query = parseQuery(match[5] ?? '', text)
  const url: IceServerUrl = { scheme, host, port, query }
  if (scheme === 'turn' || scheme === 'turns') {
    // RFC 7065: turns: defaults to TCP (TLS), turn: to UDP.
    const transport = query.get('transport') ?? (scheme === 'turns' ? 'tcp' : 'udp')
    if (transport !== 'udp' && transport !== 'tcp') throw new IceServerUrlError(`"${text}": transport=${transport} is not udp or tcp`)
    url.transport = transport
  } else if (query.has('transport')) {
    throw new IceServerUrlError(`"${text}": transport= is for TURN servers only`)
  }
  let username = query.get('username')
  let password = query.get('password')
  if (match[2] !== undefined) {
    const at = match[2].indexOf(':')
    username = decode(at < 0 ? match[2] : match[2].slice(0, at), text, false)
    if (at >= 0) password = decode(match[2].slice(at + 1), text, false)
  }
  if (username !== undefined) url.username = username
  if (password !== undefined) url.password = password
  return url
}

/** The URL without credentials or options, as servers hand it out: "turn:HOST:PORT?transport=udp", "stun:HOST:PORT". */
export function formatIceServerUrl(url: Pick<IceServerUrl, 'scheme' | 'host' | 'port' | 'transport'>): string {
  const host = url.host.includes(':') ? `[${url.host}]` : url.host
  return `${url.scheme}:${host}:${url.port}${url.transport ? `?transport=${url.transport}` : ''}`
}

/** Refuses query parameters the caller does not use, naming the first one (a typo must not pass silently). */
export function assertOnlyParams(url: IceServerUrl, allowed: readonly string[], text: string): void {
  for (const name of url.query.keys()) {
    if (!allowed.includes(name)) {
      const expected = allowed.length ? `expected ${allowed.map((a) => `${a}=`).join(', ')}` : 'it takes none'
      throw new IceServerUrlError(`"${text}": unknown parameter ${name}= (${expected})`)
    }
  }
}

function parseHost(raw: string, text: string): string {
  if (raw.startsWith('[')) {
    const inner = raw.slice(1, -1)
    if (!isIpv6(inner)) throw new IceServerUrlError(`"${text}": [${inner}] is not an IPv6 address`)
    return inner
  }
  if (raw === '') throw new IceServerUrlError(`"${text}" has no host: expected e.g. stun:HOST:3478`)
  if (IPV4.test(raw)) return raw
  // Dotted numbers are an IPv4 address gone wrong (256.1.1.1, 10.0.0), not a host name: no top-level domain
  // is numeric (RFC 3696 §2), and a resolver would read them as an address anyway.
  if (/^\d+(?:\.\d+)*$/.test(raw)) throw new IceServerUrlError(`"${text}": "${raw}" is not an IPv4 address`)
  if (HOSTNAME.test(raw)) return raw
  throw new IceServerUrlError(`"${text}": "${raw}" is not a host name or IP address`)
}

function parsePort(raw: string, text: string): number {
  if (!/^\d{1,5}$/.test(raw)) throw new IceServerUrlError(`"${text}": port "${raw}" is not a number`)
  const port = Number(raw)
  if (port < 1 || port > 65535) throw new IceServerUrlError(`"${text}": port ${port} is out of range`)
  return port
}

function parseQuery(raw: string, text: string): Map<string, string> {
  const query = new Map<string, string>()
  if (raw === '') return query
  for (const part of raw.split('&')) {
    const eq = part.indexOf('=')
    const name = decode(eq < 0 ? part : part.slice(0, eq), text, true)
    if (name === '') throw new IceServerUrlError(`"${text}": empty query parameter`)
    if (query.has(name)) throw new IceServerUrlError(`"${text}": ${name}= is given twice`)
    query.set(name, eq < 0 ? '' : decode(part.slice(eq + 1), text, true))
  }
  return query
}

function decode(raw: string, text: string, inQuery: boolean): string {
  try {
    // As URLSearchParams, "+" is a space in a query (so base64 passwords there must be percent-encoded).
    return decodeURIComponent(inQuery ? raw.replace(/\+/g, ' ') : raw)
  } catch {
    throw new IceServerUrlError(`"${text}": bad percent-encoding in "${raw}"`)
  }
}

function isIpv6(text: string): boolean {
  // Enough to refuse typos; the socket layer has the final word on exotic forms.
  return /^[0-9a-fA-F:.]+$/.test(text) && text.includes(':') && !/:::/.test(text) && (text.match(/::/g)?.length ?? 0) <= 1
}
