// The edges of strict Message JSON (message-json.ts) that mutation testing showed untested: number bounds
// and forms, base64 in both alphabets, lists and maps, null as the default, and the exact errors.
import { describe, expect, it } from 'vitest'
import { MessageJsonError, messageFromJson, parseMessageJson } from '../../src/core/message-json.js'

const port = (value: unknown) => messageFromJson({ candidate: { port: value } }).candidate!.port
const rejects = (value: unknown, text: string) => expect(() => messageFromJson(value)).toThrow(new MessageJsonError(text))

describe('strict Message JSON, edges', () => {
  it('int32: the whole range, as numbers or decimal strings, and nothing beyond', () => {
    expect(port(2 ** 31 - 1)).toBe(2 ** 31 - 1)
    expect(port(-(2 ** 31))).toBe(-(2 ** 31))
    expect(port('-12')).toBe(-12)
    expect(port(0)).toBe(0)
    rejects({ candidate: { port: 2 ** 31 } }, 'candidate.port: expected an int32 number, got 2147483648')
    rejects({ candidate: { port: -(2 ** 31) - 1 } }, 'candidate.port: expected an int32 number, got -2147483649')
    rejects({ candidate: { port: 1.5 } }, 'candidate.port: expected an int32 number, got 1.5')
    rejects({ candidate: { port: '1.5' } }, 'candidate.port: expected an int32 number, got "1.5"')
    rejects({ candidate: { port: '12a' } }, 'candidate.port: expected an int32 number, got "12a"')
    rejects({ candidate: { port: 'a12' } }, 'candidate.port: expected an int32 number, got "a12"')
    rejects({ candidate: { port: true } }, 'candidate.port: expected an int32 number, got true')
  })

  it('strings, booleans and enums by type, with the field path and the value in the error', () => {
    rejects({ credentials: { ufrag: 7 } }, 'credentials.ufrag: expected a string, got 7')
    rejects({ credentials: { needCreds: 1 } }, 'credentials.needCreds: expected true or false, got 1')
    expect(messageFromJson({ credentials: { needCreds: false } }).credentials!.needCreds).toBe(false)
    expect(messageFromJson({ candidate: { type: 1 } }).candidate!.type).toBe(1)
    expect(() => messageFromJson({ candidate: { type: 99 } })).toThrow(/^candidate\.type: expected one of .*, got 99$/)
    expect(() => messageFromJson({ candidate: { type: true } })).toThrow(/^candidate\.type: expected one of .*HOST.*, got true$/)
  })

  it('bytes: standard and URL-safe base64, padded or not; never a mix or other characters', () => {
    const key = (value: string) => messageFromJson({ pske: { publicKey: value } }).pske!.publicKey
    expect(key('+/8=')).toEqual(Uint8Array.of(0xfb, 0xff))
    expect(key('-_8')).toEqual(Uint8Array.of(0xfb, 0xff))
    expect(key('')).toEqual(new Uint8Array(0))
    rejects({ pske: { publicKey: '+_8=' } }, 'pske.publicKey: expected base64 bytes, got "+_8="')
    rejects({ pske: { publicKey: 'AQ==x' } }, 'pske.publicKey: expected base64 bytes, got "AQ==x"')
    rejects({ pske: { publicKey: '!AQ' } }, 'pske.publicKey: expected base64 bytes, got "!AQ"')
    rejects({ pske: { publicKey: 5 } }, 'pske.publicKey: expected base64 bytes, got 5')
  })

  it('lists and maps must be a list and an object; each item is checked with its index or key', () => {
    rejects({ peer: { allowedIps: '10.0.0.0/8' } }, 'peer.allowedIps: expected a list, got "10.0.0.0/8"')
    rejects({ peer: { allowedIps: ['a', 2] } }, 'peer.allowedIps[1]: expected a string, got 2')
    rejects({ peer: { hosts: [] } }, 'peer.hosts: expected an object, got []')
    rejects({ peer: { hosts: { h: 'x' } } }, 'peer.hosts.h: expected an object, got "x"')
    rejects({ peer: { hosts: { h: null } } }, 'peer.hosts.h: expected an object, got null')
    rejects({ credentials: [] }, 'credentials: expected an object, got []')
    expect(messageFromJson({ peer: { allowedIps: ['a', 'b'], hosts: {} } }).peer!.allowedIps).toEqual(['a', 'b'])
  })

  it('null stands for the default, for any field, and does not count as setting a oneof', () => {
    expect(messageFromJson({ credentials: null, candidate: { port: null } }).candidate!.port).toBe(0)
    expect(messageFromJson({ credentials: { ufrag: 'u' }, candidate: null }).credentials!.ufrag).toBe('u')
  })

  it('the message itself must be an object; unknown fields list the known ones at that level', () => {
    for (const value of [null, 'x', 3, []]) rejects(value, 'a Message must be a JSON object such as {"credentials":{"ufrag":"…","pwd":"…"}}')
    rejects({ credentials: { ufragg: 'u' } }, 'unknown field "credentials.ufragg" (known here: ufrag, pwd, needCreds)')
    expect(() => parseMessageJson('{"x":1}')).toThrow(/^unknown field "x" \(known here: [a-zA-Z, ]+\)$/)
  })
})
