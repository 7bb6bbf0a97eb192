// RelayRegistry.GetRelays: `signal --relay` URLs, TURN REST credentials (checked against HMAC-SHA1 values
// computed independently with `openssl dgst -sha1 -hmac SECRET -binary | base64`), and the gRPC service.
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { parseDuration, parseRelayConfig, RelayRegistry, relayInfoFor, turnRestCredentials } from '../src/core/server/relay-registry.js'
import { SignalingServer } from '../src/core/server/signaling-server.js'
import { parseIceServerUrl } from '../src/core/ice-server-url.js'
import { iceServersFromRelays, parseTurnServer } from '../src/core/session/ice-servers.js'
import { fetchRelays } from '../src/core/session/relays.js'
import { RelayRegistryClient, type GetRelaysResp } from '../src/gen/signaling/relay.js'
import { killAll, runCli } from './helpers/cli.js'
import { listServices } from './helpers/reflection.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await killAll()
})

// printf '%s' '1700003600:HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=' | openssl dgst -sha1 -hmac coturn-shared-secret -binary | base64
const PEER_KEY = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='
const VECTOR_KEY_PASSWORD = 'TR3VYyu4EONf+AzpVJ1VZOwMyw8='
// printf '%s' '1700000090:alice' | openssl dgst -sha1 -hmac s3cret -binary | base64
const VECTOR_ALICE_PASSWORD = 'Q2/AHUzzr8Gsrp/USCBIvroCEbU='

describe('TURN REST credentials', () => {
  it('match HMAC-SHA1 values computed with openssl', () => {
    expect(turnRestCredentials('coturn-shared-secret', PEER_KEY, 1700003600)).toEqual({
      username: `1700003600:${PEER_KEY}`,
      password: VECTOR_KEY_PASSWORD,
    })
    expect(turnRestCredentials('s3cret', 'alice', 1700000090)).toEqual({ username: '1700000090:alice', password: VECTOR_ALICE_PASSWORD })
  })

  it('a secret relay gives EXPIRY:PEER_KEY with expiry now + ttl; a username replaces the key (as cunīcu)', () => {
    const now = 1700000000_000
    const info = relayInfoFor(parseRelayConfig('turn:10.0.0.1:3478?secret=coturn-shared-secret&ttl=1h'), PEER_KEY, now)
    expect(info).toEqual({
      url: 'turn:10.0.0.1:3478?transport=udp',
      username: `1700003600:${PEER_KEY}`,
      password: VECTOR_KEY_PASSWORD,
      expires: { seconds: 1700003600, nanos: 0 },
    })
    const named = relayInfoFor(parseRelayConfig('turn:10.0.0.1?secret=s3cret&ttl=90s&username=alice'), PEER_KEY, now)
    expect(named).toMatchObject({ username: '1700000090:alice', password: VECTOR_ALICE_PASSWORD })
  })

  it('static credentials pass through without expiry; stun: without credentials', () => {
    expect(relayInfoFor(parseRelayConfig('turn:relay.example.net:3479?username=u&password=p%20w'), PEER_KEY)).toEqual({
      url: 'turn:relay.example.net:3479?transport=udp',
      username: 'u',
      password: 'p w',
      expires: undefined,
    })
    expect(relayInfoFor(parseRelayConfig('turn:u1:p1@relay.example.net?transport=tcp'), PEER_KEY)).toMatchObject({
      url: 'turn:relay.example.net:3478?transport=tcp',
      username: 'u1',
      password: 'p1',
    })
    expect(relayInfoFor(parseRelayConfig('stun:stun.example.net'), PEER_KEY)).toEqual({
      url: 'stun:stun.example.net:3478',
      username: '',
      password: '',
      expires: undefined,
    })
  })
})

describe('relay URLs', () => {
  it('rejects what cannot work, naming the relay', () => {
    expect(() => parseRelayConfig('turn:10.0.0.1:3478')).toThrow(/needs \?secret=S .* or \?username=U&password=P/)
    expect(() => parseRelayConfig('stun:10.0.0.1?secret=x')).toThrow(/STUN server takes no credentials/)
    expect(() => parseRelayConfig('turn:10.0.0.1?secret=x&ttl=soon')).toThrow(/ttl=soon is not a duration/)
    expect(() => parseRelayConfig('http://10.0.0.1')).toThrow(/not a STUN\/TURN URL/)
    expect(() => parseRelayConfig('turn:10.0.0.1:99999?secret=x')).toThrow(/out of range/)
    expect(() => parseRelayConfig('turn:10.0.0.1?secret=')).toThrow(/secret= is empty/)
  })

  it('parses Go durations and plain seconds', () => {
    expect(parseDuration('1h')).toBe(3_600_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('1.5h')).toBe(5_400_000)
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration('600')).toBe(600_000)
    expect(() => parseDuration('1d')).toThrow(/not a duration/)
  })

  it('session side: --turn needs credentials; IPv6 hosts; what GetRelays answers becomes STUN and TURN servers', () => {
    expect(parseTurnServer('turn:10.0.0.1:3478?username=u&password=p')).toEqual({
      url: 'turn:10.0.0.1:3478?transport=udp',
      host: '10.0.0.1',
      port: 3478,
      transport: 'udp',
      username: 'u',
      password: 'p',
    })
    expect(() => parseTurnServer('turn:10.0.0.1')).toThrow(/no credentials/)
    expect(() => parseTurnServer('stun:10.0.0.1')).toThrow(/not a TURN URL/)
    expect(parseIceServerUrl('stun:[fd00::1]:3479')).toMatchObject({ scheme: 'stun', host: 'fd00::1', port: 3479 })
    const servers = iceServersFromRelays([
      { url: 'stun:10.0.0.1:3478', username: '', password: '', expires: undefined },
      { url: 'turn:10.0.0.1:3478?transport=udp', username: '1700003600:k', password: 'pw', expires: { seconds: 1700003600, nanos: 0 } },
      { url: 'turn:10.0.0.2:3478', username: '', password: '', expires: undefined },
      { url: 'turns:10.0.0.3', username: 'u', password: 'p', expires: undefined },
    ])
    expect(servers.stunServers).toEqual([{ url: 'stun:10.0.0.1:3478', host: '10.0.0.1', port: 3478 }])
    expect(servers.turnServers).toEqual([
      {
        url: 'turn:10.0.0.1:3478?transport=udp',
        host: '10.0.0.1',
        port: 3478,
        transport: 'udp',
        username: '1700003600:k',
        password: 'pw',
        expires: new Date(1700003600_000),
      },
      // turns: is TURN over TLS (to port 5349 by default); a TURN server without credentials cannot be used.
      { url: 'turns:10.0.0.3:5349?transport=tcp', host: '10.0.0.3', port: 5349, transport: 'tls', username: 'u', password: 'p' },
    ])
    expect(servers.skipped).toEqual(['turn:10.0.0.2:3478: no credentials'])
  })
})

describe('RelayRegistry over gRPC', () => {
  async function start(relays?: string[]): Promise<SignalingServer> {
    const server = await SignalingServer.start({ listen: '127.0.0.1:0', ...(relays ? { relays } : {}) })
    closers.push(() => server.close(500))
    return server
  }

  it('GetRelays answers every configured relay with credentials for the asking key', async () => {
    const server = await start(['turn:10.0.0.1:3478?secret=coturn-shared-secret&ttl=1h', 'turn:10.0.0.2?username=u&password=p', 'stun:10.0.0.1:3478'])
    const key = PrivateKey.generate().publicKey
    const before = Math.floor(Date.now() / 1000)
    const relays = await fetchRelays(`grpc://${server.address}?insecure=true`, { publicKey: key.bytes })
    const after = Math.floor(Date.now() / 1000)
    expect(relays.map((r) => r.url)).toEqual(['turn:10.0.0.1:3478?transport=udp', 'turn:10.0.0.2:3478?transport=udp', 'stun:10.0.0.1:3478'])
    const [turn] = relays
    const [expiry, user] = turn!.username.split(':')
    expect(user).toBe(key.toString())
    expect(Number(expiry)).toBeGreaterThanOrEqual(before + 3600)
    expect(Number(expiry)).toBeLessThanOrEqual(after + 3600)
    expect(turn!.expires).toEqual({ seconds: Number(expiry), nanos: 0 })
    expect(turn!.password).toBe(turnRestCredentials('coturn-shared-secret', key.toString(), Number(expiry)).password)
    expect(relays[1]).toMatchObject({ username: 'u', password: 'p' })
  })

  it('refuses a key that is not 32 bytes with INVALID_ARGUMENT', async () => {
    const server = await start(['stun:10.0.0.1'])
    const client = new RelayRegistryClient(server.address, credentials.createInsecure())
    closers.push(() => client.close())
    const err = await new Promise<ServiceError>((resolve) =>
      client.getRelays({ publicKey: new Uint8Array(31) }, new Metadata(), { deadline: Date.now() + 5000 }, (e: ServiceError | null, _r: GetRelaysResp) => resolve(e!)),
    )
    expect(err.code).toBe(status.INVALID_ARGUMENT)
    expect(err.details).toMatch(/31 bytes/)
  })

  it('a server without relays does not offer the service: the session side sees no relays', async () => {
    const server = await start()
    expect(await fetchRelays(`grpc://${server.address}?insecure=true`, { publicKey: new Uint8Array(32).fill(1) })).toEqual([])
    expect(new RelayRegistry([]).getRelays(new Uint8Array(32)).relays).toEqual([])
  })

  it('is listed by server reflection when relays are configured', async () => {
    const server = await start(['stun:10.0.0.1'])
    const names = await listServices(server.address)
    expect(names).toContain('cunicu.signaling.Signaling')
    expect(names).toContain('cunicu.signaling.RelayRegistry')
  })

  it('signal --relay with a bad URL exits 2 naming it', async () => {
    const result = await runCli(['signal', '--listen', '127.0.0.1:0', '--relay', 'turn:10.0.0.1:3478', '--json'])
    expect(result.code).toBe(2)
    expect(result.stdout).toMatch(/turn:10\.0\.0\.1:3478.*needs \?secret=S/)
  })
})
