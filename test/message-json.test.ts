import { describe, expect, it } from 'vitest'
import { MessageJsonError, messageKind, parseMessageJson } from '../src/core/message-json.js'
import { CandidateType } from '../src/gen/feature/epdisc_candidate.js'

describe('strict Message JSON', () => {
  it('accepts camelCase and proto field names, enum names and numbers', () => {
    const m = parseMessageJson('{"candidate":{"type":"HOST","network_type":1,"port":51820,"relatedAddress":{"address":"1.2.3.4","port":"7"}}}')
    expect(m.candidate?.type).toBe(CandidateType.HOST)
    expect(m.candidate?.port).toBe(51820)
    expect(m.candidate?.relatedAddress?.port).toBe(7)
    expect(messageKind(m)).toBe('candidate')
  })

  it.each([
    ['{"credential":{}}', /unknown field "credential"/],
    ['{"credentials":{"ufrag":"a","pwdd":"b"}}', /unknown field "credentials.pwdd"/],
    ['{"candidate":{"type":"HOTS"}}', /candidate.type: expected one of .*HOST/],
    ['{"candidate":{"port":"x"}}', /candidate.port: expected an int32/],
    ['{"candidate":{"port":4294967296}}', /candidate.port: expected an int32/],
    ['{"credentials":{"needCreds":"yes"}}', /needCreds: expected true or false/],
    ['{"pske":{"publicKey":"***"}}', /pske.publicKey: expected base64/],
    ['[1]', /must be a JSON object/],
    ['{"credentials":', /not valid JSON/],
  ])('rejects %s', (text, error) => {
    expect(() => parseMessageJson(text)).toThrow(MessageJsonError)
    expect(() => parseMessageJson(text)).toThrow(error)
  })

  it('knows the kinds', () => {
    expect(messageKind(parseMessageJson('{}'))).toBe('empty')
    expect(messageKind(parseMessageJson('{"credentials":{"ufrag":"a"}}'))).toBe('credentials')
    expect(messageKind(parseMessageJson('{"peer":{"name":"n","hosts":{"h":{"addresses":[{"addr":"fwAAAQ=="}]}}}}'))).toBe('peer')
  })
})
