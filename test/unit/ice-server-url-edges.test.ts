// The edges of the one STUN/TURN URL parser (ice-server-url.ts) that mutation testing showed untested: host
// and port bounds, the two credential forms, query decoding, IPv6 typos, and the exact error texts.
import { describe, expect, it } from 'vitest'
import { assertOnlyParams, IceServerUrlError, parseIceServerUrl } from '../../src/core/ice-server-url.js'

const host = (text: string) => parseIceServerUrl(`stun:${text}`).host
const refuses = (text: string, message: string) => expect(() => parseIceServerUrl(text)).toThrow(new IceServerUrlError(message))

describe('parseIceServerUrl, edges', () => {
  it.each(['0.0.0.0', '9.9.9.9', '10.199.249.255', '255.255.255.255', '192.0.2.1'])('IPv4 %s is a host', (ip) => {
    expect(host(`${ip}:1`)).toBe(ip)
  })

  it.each(['1.2.3.4.', '-1.2.3.4', 'a_b.example', 'x..example', '-x.example', `${'a'.repeat(64)}.example`])(
    '"%s" is neither a host name nor an IPv4 address',
    (bad) => refuses(`stun:${bad}:1`, `"stun:${bad}:1": "${bad}" is not a host name or IP address`),
  )

  it('IPv6 in brackets; typos refused', () => {
    expect(host('[::1]:1')).toBe('::1')
    expect(host('[2001:db8::1]')).toBe('2001:db8::1')
    refuses('stun:[:::1]:1', '"stun:[:::1]:1": [:::1] is not an IPv6 address')
    refuses('stun:[1::2::3]:1', '"stun:[1::2::3]:1": [1::2::3] is not an IPv6 address')
    refuses('stun:[12345]:1', '"stun:[12345]:1": [12345] is not an IPv6 address')
    refuses('stun:[g::1]:1', '"stun:[g::1]:1": [g::1] is not an IPv6 address')
  })

  it('ports 1 to 65535, decimal only; the default per scheme', () => {
    expect(parseIceServerUrl('stun:h:1').port).toBe(1)
    expect(parseIceServerUrl('stun:h:65535').port).toBe(65535)
    expect(parseIceServerUrl('stuns:h').port).toBe(5349)
    expect(parseIceServerUrl('turn:h').port).toBe(3478)
    refuses('stun:h:0', '"stun:h:0": port 0 is out of range')
    refuses('stun:h:65536', '"stun:h:65536": port 65536 is out of range')
    refuses('stun:h:123456', '"stun:h:123456": port "123456" is not a number')
    refuses('stun:h:1a', '"stun:h:1a": port "1a" is not a number')
    refuses('stun:h:a1', '"stun:h:a1": port "a1" is not a number')
  })

  it('surrounding white space is ignored; anything else is not a STUN/TURN URL', () => {
    expect(parseIceServerUrl('  stun:h:1\n').host).toBe('h')
    refuses('http://h:1', '"http://h:1" is not a STUN/TURN URL: expected e.g. stun:HOST:3478 or turn:HOST:3478?username=U&password=P')
    refuses('xstun:h', '"xstun:h" is not a STUN/TURN URL: expected e.g. stun:HOST:3478 or turn:HOST:3478?username=U&password=P')
  })

  it('credentials before the host: user alone, user:password, and a password with a colon', () => {
    expect(parseIceServerUrl('turn:alice@h:1')).toMatchObject({ username: 'alice' })
    expect(parseIceServerUrl('turn:alice@h:1')).not.toHaveProperty('password')
    expect(parseIceServerUrl('turn:alice:s%40cret@h:1')).toMatchObject({ username: 'alice', password: 's@cret' })
    expect(parseIceServerUrl('turn::p@h:1')).toMatchObject({ username: '', password: 'p' })
    expect(parseIceServerUrl('turn:a:b:c@h:1')).toMatchObject({ username: 'a', password: 'b:c' })
    expect(parseIceServerUrl('turn:h:1')).not.toHaveProperty('username')
  })

  it('query: "+" is a space, percent-encoding decoded, a name without "=" is empty; empty names and repeats refused', () => {
    const url = parseIceServerUrl('turn:h:1?username=a+b&password=x%2By&flag')
    expect(url.username).toBe('a b')
    expect(url.password).toBe('x+y')
    expect(url.query.get('flag')).toBe('')
    refuses('turn:h:1?=x', '"turn:h:1?=x": empty query parameter')
    refuses('turn:h:1?a=1&&b=2', '"turn:h:1?a=1&&b=2": empty query parameter')
    refuses('turn:h:1?a=1&a=2', '"turn:h:1?a=1&a=2": a= is given twice')
    refuses('turn:h:1?a=%zz', '"turn:h:1?a=%zz": bad percent-encoding in "%zz"')
  })

  it('transport: TURN only, udp or tcp', () => {
    expect(parseIceServerUrl('turns:h').transport).toBe('tcp')
    expect(parseIceServerUrl('turn:h').transport).toBe('udp')
    refuses('turn:h?transport=sctp', '"turn:h?transport=sctp": transport=sctp is not udp or tcp')
    refuses('stun:h?transport=udp', '"stun:h?transport=udp": transport= is for TURN servers only')
  })

  it('assertOnlyParams names the first unknown parameter and what is allowed', () => {
    const url = parseIceServerUrl('stun:h?x=1')
    expect(() => assertOnlyParams(url, [], 'T')).toThrow(new IceServerUrlError('"T": unknown parameter x= (it takes none)'))
    expect(() => assertOnlyParams(url, ['a', 'b'], 'T')).toThrow(new IceServerUrlError('"T": unknown parameter x= (expected a=, b=)'))
    expect(() => assertOnlyParams(url, ['x'], 'T')).not.toThrow()
    expect(new IceServerUrlError('m').name).toBe('IceServerUrlError')
  })
})
