// The STUN/TURN servers a session's ICE agent may use, as typed values: from --stun/--turn (parsed once, at
// the command) and from the relays a signaling server hands out (GetRelays). URLs are read by the one
// parser in ../ice-server-url.ts; this file decides what a session can use: TURN over UDP, TCP and TLS
// (turns:, werift-ice's TLS transport), STUN over UDP. stuns: is refused: a mapping learnt over TLS is a
// TCP mapping, which says nothing about the UDP sockets our candidates are.
import type { RelayInfo } from '../../gen/signaling/relay.js'
import { assertOnlyParams, formatIceServerUrl, IceServerUrlError, parseIceServerUrl, type IceServerUrl } from '../ice-server-url.js'

export { IceServerUrlError } from '../ice-server-url.js'

/** A STUN server for server-reflexive candidates. */
export interface StunServer {
  /** "stun:HOST:PORT", for messages and events. */
  url: string
  host: string
  port: number
}

/** A TURN server the ICE agent can allocate a relayed candidate on. */
export interface TurnServer {
  /** For messages and events: the URL without credentials. */
  url: string
  host: string
  port: number
  /** To the TURN server: turn: is UDP or TCP (?transport=), turns: is TLS over TCP. */
  transport: 'udp' | 'tcp' | 'tls'
  username: string
  password: string
  /** Time-limited credentials (TURN REST): when they stop working. */
  expires?: Date
}

/** Where a session's STUN/TURN servers came from, in the order they are tried. */
export interface IceServers {
  stunServers: StunServer[]
  turnServers: TurnServer[]
}

const STUNS = 'a mapping learnt over TLS is a TCP one, useless for our UDP candidates'

/** `--stun` values: "stun:HOST[:PORT]". Throws IceServerUrlError with the reason. */
export function parseStunServer(text: string): StunServer {
  const url = parseIceServerUrl(text)
  if (url.scheme === 'stuns') throw new IceServerUrlError(`STUN server "${text}": stuns: (STUN over TLS) is not supported (${STUNS}); use stun:`)
  if (url.scheme !== 'stun') throw new IceServerUrlError(`"${text}" is not a STUN URL: expected stun:HOST:PORT (TURN servers go to --turn)`)
  assertOnlyParams(url, [], text)
  if (url.username !== undefined) throw new IceServerUrlError(`STUN server "${text}": a STUN server takes no credentials`)
  return stunServerFrom(url)
}

/** `--turn` values: TURN URLs that carry their credentials. Throws IceServerUrlError with the reason. */
export function parseTurnServer(text: string): TurnServer {
  const url = parseIceServerUrl(text)
  if (url.scheme !== 'turn' && url.scheme !== 'turns') throw new IceServerUrlError(`"${text}" is not a TURN URL: expected turn:HOST:PORT?username=U&password=P`)
  assertOnlyParams(url, ['transport', 'username', 'password'], text)
  const unusable = whyUnusable(url)
  if (unusable) throw new IceServerUrlError(`TURN server "${text}": ${unusable}`)
  if (!url.username || url.password === undefined) {
    throw new IceServerUrlError(`TURN server "${text}" has no credentials: add ?username=U&password=P (or use the server's relay registry)`)
  }
  return turnServerFrom(url, url.username, url.password)
}

/** turns: runs over TCP; turns:…?transport=udp would be DTLS, which werift-ice has no client for. */
function whyUnusable(url: IceServerUrl): string | undefined {
  if (url.scheme === 'turns' && url.query.get('transport') === 'udp') return 'turns: with transport=udp (TURN over DTLS) is not supported; use turns:HOST:PORT (TLS over TCP)'
  return undefined
}

function stunServerFrom(url: IceServerUrl): StunServer {
  return { url: formatIceServerUrl({ scheme: 'stun', host: url.host, port: url.port }), host: url.host, port: url.port }
}

function turnServerFrom(url: IceServerUrl, username: string, password: string): TurnServer {
  if (url.scheme === 'turns') {
    return { url: formatIceServerUrl({ scheme: 'turns', host: url.host, port: url.port, transport: 'tcp' }), host: url.host, port: url.port, transport: 'tls', username, password }
  }
  const transport = url.transport ?? 'udp'
  return { url: formatIceServerUrl({ scheme: 'turn', host: url.host, port: url.port, transport }), host: url.host, port: url.port, transport, username, password }
}

/**
 * What a GetRelays answer means for our agent: stun: URLs become STUN servers, turn:/turns: URLs with
 * credentials TURN servers; the rest (stuns:, TURN without credentials, unreadable URLs) is skipped with a reason.
 */
export function iceServersFromRelays(relays: readonly RelayInfo[]): IceServers & { skipped: string[] } {
  const out: IceServers & { skipped: string[] } = { stunServers: [], turnServers: [], skipped: [] }
  for (const relay of relays) {
    let url: IceServerUrl
    try {
      url = parseIceServerUrl(relay.url)
    } catch (err) {
      out.skipped.push((err as Error).message)
      continue
    }
    if (url.scheme === 'stun') {
      out.stunServers.push(stunServerFrom(url))
    } else if ((url.scheme === 'turn' || url.scheme === 'turns') && relay.username !== '' && relay.password !== '' && !whyUnusable(url)) {
      const server = turnServerFrom(url, relay.username, relay.password)
      if (relay.expires && relay.expires.seconds > 0) server.expires = new Date(relay.expires.seconds * 1000 + Math.floor(relay.expires.nanos / 1e6))
      out.turnServers.push(server)
    } else {
      const why = url.scheme === 'stuns' ? `stuns: is not supported (${STUNS})` : (whyUnusable(url) ?? 'no credentials')
      out.skipped.push(`${relay.url}: ${why}`)
    }
  }
  return out
}
