// The one STUN/TURN URL parser (src/core/ice-server-url.ts) and its two users' rules: what a session can use
// (session/ice-servers.ts) and what `signal --relay` accepts (server/relay-registry.ts); plus the one
// grpc:// URL parser the backend and the relay fetch share (backends/grpc-target.ts).
import { describe, expect, it } from 'vitest'
import { BackendError } from '../src/core/backend.js'
import { parseGrpcTarget } from '../src/core/backends/grpc-target.js'
import { formatIceServerUrl, IceServerUrlError, parseIceServerUrl } from '../src/core/ice-server-url.js'
import { parseRelayConfig, RelayConfigError } from '../src/core/server/relay-registry.js'
import { parseStunServer, parseTurnServer } from '../src/core/session/ice-servers.js'

describe('parseIceServerUrl', () => {
  it('reads every scheme with its default port, IPv6 in brackets, and both credential forms', () => {
    expect(parseIceServerUrl('stun:10.0.0.1')).toMatchObject({ scheme: 'stun', host: '10.0.0.1', port: 3478 })
    expect(parseIceServerUrl('stuns:stun.example.org')).toMatchObject({ scheme: 'stuns', host: 'stun.example.org', port: 5349 })
    expect(parseIceServerUrl('turns:[fd00::1]')).toMatchObject({ scheme: 'turns', host: 'fd00::1', port: 5349, transport: 'tcp' })
    expect(parseIceServerUrl('turn:10.0.0.1:3479?transport=tcp&username=u%3Ax&password=p%2B%3D')).toMatchObject({
      scheme: 'turn',
      port: 3479,
      transport: 'tcp',
      username: 'u:x',
      password: 'p+=',
    })
    // cunīcu's form: the password may contain ':' and base64's '+' stays a '+' outside the query.
    expect(parseIceServerUrl('turn:1700000000:key:ab+c%2Fd=@turn.example.net:3478')).toMatchObject({ username: '1700000000', password: 'key:ab+c/d=' })
    expect(parseIceServerUrl('turn:10.0.0.1?secret=s&ttl=20s').query.get('ttl')).toBe('20s')
    expect(formatIceServerUrl(parseIceServerUrl('turn:[::1]:3478?username=u&password=p'))).toBe('turn:[::1]:3478?transport=udp')
  })

  it('host names with digits still pass where a label is not all digits', () => {
    expect(parseIceServerUrl('stun:1e100.net').host).toBe('1e100.net')
    expect(parseIceServerUrl('stun:stun1.example.net:3479').host).toBe('stun1.example.net')
    expect(parseIceServerUrl('stun:10.0.0.255').host).toBe('10.0.0.255')
  })

  it('refuses hosts, ports and queries a typo would produce, naming the bad part', () => {
    const cases: [string, RegExp][] = [
      ['stun:bad host', /"bad host" is not a host name or IP address/],
      ['stun:', /has no host/],
      ['stun:host_name', /"host_name" is not a host name/],
      ['stun:256.1.1.1', /"256\.1\.1\.1" is not an IPv4 address/],
      ['stun:10.0.0', /"10\.0\.0" is not an IPv4 address/],
      ['stun:[zz::1]', /\[zz::1\] is not an IPv6 address/],
      ['stun:10.0.0.1:0', /port 0 is out of range/],
      ['stun:10.0.0.1:34x', /port "34x" is not a number/],
      ['stun:10.0.0.1:99999', /port 99999 is out of range/],
      ['http://10.0.0.1', /is not a STUN\/TURN URL/],
      ['turn:10.0.0.1?transport=sctp', /transport=sctp is not udp or tcp/],
      ['stun:10.0.0.1?transport=udp', /transport= is for TURN servers only/],
      ['turn:10.0.0.1?username=a&username=b', /username= is given twice/],
      ['turn:10.0.0.1?username=%zz', /bad percent-encoding/],
    ]
    for (const [text, reason] of cases) {
      expect(() => parseIceServerUrl(text), text).toThrow(IceServerUrlError)
      expect(() => parseIceServerUrl(text), text).toThrow(reason)
    }
  })
})

describe("a session's STUN/TURN servers", () => {
  it('--stun: stun: only, no parameters; stuns: is refused with the reason', () => {
    expect(parseStunServer('stun:[::1]:19302')).toEqual({ url: 'stun:[::1]:19302', host: '::1', port: 19302 })
    expect(() => parseStunServer('stuns:10.0.0.1')).toThrow(/stuns: \(STUN over TLS\) is not supported \(a mapping learnt over TLS is a TCP one, useless for our UDP candidates\); use stun:/)
    expect(() => parseStunServer('turn:10.0.0.1')).toThrow(/not a STUN URL.*--turn/)
    expect(() => parseStunServer('stun:10.0.0.1?usename=x')).toThrow(/unknown parameter usename=/)
    expect(() => parseStunServer('stun:u:p@10.0.0.1')).toThrow(/takes no credentials/)
  })

  it('--turn: credentials required; turns: is TLS (not over udp); unknown parameters are named', () => {
    expect(parseTurnServer('turn:u:p@10.0.0.1?transport=tcp')).toEqual({
      url: 'turn:10.0.0.1:3478?transport=tcp',
      host: '10.0.0.1',
      port: 3478,
      transport: 'tcp',
      username: 'u',
      password: 'p',
    })
    expect(parseTurnServer('turns:turn.example.net?username=u&password=p')).toEqual({
      url: 'turns:turn.example.net:5349?transport=tcp',
      host: 'turn.example.net',
      port: 5349,
      transport: 'tls',
      username: 'u',
      password: 'p',
    })
    expect(() => parseTurnServer('turns:10.0.0.1?transport=udp&username=u&password=p')).toThrow(/turns: with transport=udp \(TURN over DTLS\) is not supported/)
    expect(() => parseTurnServer('turn:10.0.0.1?username=u&pasword=p')).toThrow(/unknown parameter pasword= \(expected transport=, username=, password=\)/)
    expect(() => parseTurnServer('turn:10.0.0.1')).toThrow(/has no credentials/)
  })

  it("signal --relay reads the same URLs (and its own secret=/ttl=)", () => {
    expect(parseRelayConfig('turn:10.0.0.1:3478?secret=s&ttl=20s')).toMatchObject({ url: 'turn:10.0.0.1:3478?transport=udp', secret: 's', ttlMs: 20_000 })
    expect(() => parseRelayConfig('turn:bad host?secret=s')).toThrow(RelayConfigError)
    expect(() => parseRelayConfig('turn:bad host?secret=s')).toThrow(/"bad host" is not a host name/)
    expect(() => parseRelayConfig('turn:10.0.0.1?secret=s&tll=1h')).toThrow(/unknown parameter tll=/)
  })
})

describe('grpc:// targets (backend and relay fetch)', () => {
  it("booleans as Go's strconv.ParseBool: insecure=1 is plain text, like insecure=true", () => {
    for (const value of ['1', 't', 'T', 'TRUE', 'true', 'True']) expect(parseGrpcTarget(new URL(`grpc://127.0.0.1:1?insecure=${value}`)).tls).toBe('insecure')
    for (const value of ['0', 'f', 'F', 'FALSE', 'false', 'False']) expect(parseGrpcTarget(new URL(`grpc://127.0.0.1:1?insecure=${value}`)).tls).toBe('verify')
    expect(parseGrpcTarget(new URL('grpc://h:1?skip_verify=1'))).toEqual({ name: 'grpc://h:1', address: 'h:1', tls: 'skip-verify' })
    expect(() => parseGrpcTarget(new URL('grpc://h:1?insecure=yes'))).toThrow(/insecure=yes is not true or false/)
    expect(() => parseGrpcTarget(new URL('grpc://h:1?insecur=true'))).toThrow(BackendError)
    expect(() => parseGrpcTarget(new URL('grpc://h:1?insecur=true'))).toThrow(/unknown parameter insecur=/)
  })
})
