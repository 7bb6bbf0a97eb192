// cunīcu's RelayRegistry service (WIRE.md §3): hands peers the STUN/TURN servers configured with
// `signal --relay`, each TURN server with credentials for the asking peer. With a shared secret these are
// TURN REST-style time-limited credentials (username "EXPIRY_UNIX:PEER_PUBLIC_KEY", password
// base64(HMAC-SHA1(secret, username))), which coturn checks with use-auth-secret / static-auth-secret.
import { createHmac } from 'node:crypto'
import { status, type sendUnaryData, type Server, type ServerUnaryCall } from '@grpc/grpc-js'
import { GetRelaysResp, RelayInfo, RelayRegistryService, type GetRelaysParams, type RelayRegistryServer } from '../../gen/signaling/relay.js'
import { KEY_LENGTH } from '../keys.js'
import { assertOnlyParams, formatIceServerUrl, parseIceServerUrl } from '../ice-server-url.js'

export const RELAY_REGISTRY_SERVICE_NAME = 'cunicu.signaling.RelayRegistry'
export const RELAY_PROTO = 'signaling/relay.proto'

/** cunīcu's default lifetime of time-limited credentials. */
export const DEFAULT_RELAY_TTL_MS = 60 * 60 * 1000

export class RelayConfigError extends Error {
  override name = 'RelayConfigError'
}

export interface RelayConfig {
  /** As handed out: no credentials, no options ("turn:HOST:PORT?transport=udp", "stun:HOST:PORT"). */
  url: string
  /** Shared secret for time-limited credentials. */
  secret?: string
  /** Lifetime of time-limited credentials. */
  ttlMs: number
  /** Static credentials; with a secret, the username replaces the peer's key in "EXPIRY:USER" (as cunīcu). */
  username?: string
  password?: string
}

/**
 * `--relay` values: "turn:HOST:PORT?secret=S&ttl=1h", "turn:HOST:PORT?username=U&password=P",
 * "turn:U:P@HOST:PORT" (cunīcu's form), "stun:HOST:PORT".
 */
export function parseRelayConfig(text: string): RelayConfig {
  let url
  try {
    url = parseIceServerUrl(text)
    assertOnlyParams(url, ['secret', 'ttl', 'username', 'password', 'transport'], text)
  } catch (err) {
    throw new RelayConfigError(`relay ${(err as Error).message}`)
  }
  const secret = url.query.get('secret') ?? undefined
  const ttl = url.query.get('ttl')
  const config: RelayConfig = { url: formatIceServerUrl(url), ttlMs: ttl === undefined ? DEFAULT_RELAY_TTL_MS : parseDuration(ttl, text) }
  const isTurn = url.scheme === 'turn' || url.scheme === 'turns'
  if (!isTurn && (secret !== undefined || url.username !== undefined)) {
    throw new RelayConfigError(`relay "${text}": a STUN server takes no credentials`)
  }
  if (secret !== undefined) {
    if (secret === '') throw new RelayConfigError(`relay "${text}": secret= is empty`)
    config.secret = secret
  }
  if (url.username !== undefined) config.username = url.username
  if (url.password !== undefined) config.password = url.password
  if (isTurn && config.secret === undefined && (!config.username || config.password === undefined)) {
    throw new RelayConfigError(`relay "${text}": a TURN server needs ?secret=S (time-limited credentials) or ?username=U&password=P`)
  }
  if (config.ttlMs < 1000) throw new RelayConfigError(`relay "${text}": ttl must be at least 1s`)
  return config
}

/** "1h", "30m", "90s", "1h30m", "1.5h", "500ms" (Go durations, as cunīcu's ttl=), or plain seconds. */
export function parseDuration(text: string, context = text): number {
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy
  let total = 0
  let at = 0
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * unit[m[2]!]!
    at = re.lastIndex
  }
  if (text === '' || at !== text.length) throw new RelayConfigError(`relay "${context}": ttl=${text} is not a duration such as 1h, 30m or 90s`)
  return Math.round(total)
}

/** TURN REST credentials (draft-uberti-behave-turn-rest, coturn's use-auth-secret). */
export function turnRestCredentials(secret: string, user: string, expiresUnix: number): { username: string; password: string } {
  const username = `${expiresUnix}:${user}`
  const password = createHmac('sha1', secret).update(username).digest('base64')
  return { username, password }
}

/** The RelayInfo a peer gets for one configured relay. */
export function relayInfoFor(config: RelayConfig, publicKeyBase64: string, now = Date.now()): RelayInfo {
  if (config.secret !== undefined) {
    const expiresUnix = Math.floor((now + config.ttlMs) / 1000)
    const { username, password } = turnRestCredentials(config.secret, config.username || publicKeyBase64, expiresUnix)
    return RelayInfo.create({ url: config.url, username, password, expires: { seconds: expiresUnix, nanos: 0 } })
  }
  return RelayInfo.create({ url: config.url, username: config.username ?? '', password: config.password ?? '' })
}

export class RelayRegistry {
  readonly relays: readonly RelayConfig[]

  /** Throws RelayConfigError naming the first unusable entry. */
  constructor(urls: readonly string[]) {
    this.relays = urls.map(parseRelayConfig)
  }

  getRelays(publicKey: Uint8Array, now = Date.now()): GetRelaysResp {
    const key = Buffer.from(publicKey).toString('base64')
    return GetRelaysResp.create({ relays: this.relays.map((r) => relayInfoFor(r, key, now)) })
  }

  addToServer(server: Pick<Server, 'addService'>): void {
    const implementation: RelayRegistryServer = {
      getRelays: (call: ServerUnaryCall<GetRelaysParams, GetRelaysResp>, callback: sendUnaryData<GetRelaysResp>) => {
        const key = call.request.publicKey
        if (key.length !== KEY_LENGTH) {
          callback({ code: status.INVALID_ARGUMENT, details: `public_key is ${key.length} bytes, but a public key is ${KEY_LENGTH} bytes` })
          return
        }
        callback(null, this.getRelays(key))
      },
    }
    server.addService(RelayRegistryService, implementation)
  }
}
