// The STUN/TURN servers a session's ICE agent may use, as typed values: from --stun/--turn (parsed once, at
// the command) and from the relays a signaling server hands out (GetRelays). URLs are read by the one
// parser in ../ice-server-url.ts; this file decides what a session can use: werift-ice 0.2.3 speaks STUN
// and TURN over UDP or TCP, not over TLS, so stuns:/turns: are refused with that reason.
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
  transport: 'udp' | 'tcp'
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

const NO_TLS = 'werift-ice, our ICE agent, has no TLS client for STUN/TURN'

/** `--stun` values: "stun:HOST[:PORT]". Throws IceServerUrlError with the reason. */
export function parseStunServer(text: string): StunServer {
  const url = parseIceServerUrl(text)
  if (url.scheme === 'stuns') throw new IceServerUrlError(`STUN server "${text}": stuns: (STUN over TLS) is not supported (${NO_TLS}); use stun:`)
  if (url.scheme !== 'stun') throw new IceServerUrlError(`"${text}" is not a STUN URL: expected stun:HOST:PORT (TURN servers go to --turn)`)
  assertOnlyParams(url, [], text)
  if (url.username !== undefined) throw new IceServerUrlError(`STUN server "${text}": a STUN server takes no credentials`)
  return stunServerFrom(url)
}

/** `--turn` values: TURN URLs that carry their credentials. Throws IceServerUrlError with the reason. */
export function parseTurnServer(text: string): TurnServer {
  const url = parseIceServerUrl(text)
  if (url.scheme === 'turns') {
    throw new IceServerUrlError(`TURN server "${text}": turns: (TURN over TLS) is not supported (${NO_TLS}); use turn:HOST:PORT?transport=tcp or udp`)
  }
  if (url.scheme !== 'turn') throw new IceServerUrlError(`"${text}" is not a TURN URL: expected turn:HOST:PORT?username=U&password=P`)
  assertOnlyParams(url, ['transport', 'username', 'password'], text)
  if (!url.username || url.password === undefined) {
    throw new IceServerUrlError(`TURN server "${text}" has no credentials: add ?username=U&password=P (or use the server's relay registry)`)
  }
  return turnServerFrom(url, url.username, url.password)
}

function stunServerFrom(url: IceServerUrl): StunServer {
  return { url: formatIceServerUrl({ scheme: 'stun', host: url.host, port: url.port }), host: url.host, port: url.port }
}

function turnServerFrom(url: IceServerUrl, username: string, password: string): TurnServer {
  const transport = url.transport ?? 'udp'
  return { url: formatIceServerUrl({ scheme: 'turn', host: url.host, port: url.port, transport }), host: url.host, port: url.port, transport, username, password }
}

/**
 * What a GetRelays answer means for our agent: stun: URLs become STUN servers, turn: URLs with credentials
 * TURN servers; the rest (turns:, stuns:, TURN without credentials, unreadable URLs) is skipped with a reason.
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
    } else if (url.scheme === 'turn' && relay.username !== '' && relay.password !== '') {
      const server = turnServerFrom(url, relay.username, relay.password)
      if (relay.expires && relay.expires.seconds > 0) server.expires = new Date(relay.expires.seconds * 1000 + Math.floor(relay.expires.nanos / 1e6))
      out.turnServers.push(server)
    } else {
      out.skipped.push(`${relay.url}: ${url.scheme === 'turn' ? 'no credentials' : `${url.scheme}: is not supported (${NO_TLS})`}`)
    }
  }
  return out
}
