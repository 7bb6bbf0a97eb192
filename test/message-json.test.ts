import { describe, expect, it } from 'vitest'
import protobuf from 'protobufjs'
import { MessageJsonError, messageSchema, parseMessageJson } from '../src/core/message-json.js'
import { messageKind } from '../src/core/message-kind.js'
import { Message } from '../src/gen/signaling/signaling.js'
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

  it('takes its schema from proto/: every field there is accepted and survives the generated code both ways', () => {
    const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
    const sample = (field: protobuf.Field, depth: number): unknown => {
      const one = (): unknown => {
        const t = field.resolvedType
        if (t instanceof protobuf.Enum) return Object.keys(t.values).at(-1)
        if (t instanceof protobuf.Type) return depth > 4 ? {} : fill(t, depth + 1)
        return { string: 'text', bool: true, bytes: 'AQID', int32: 7, uint32: 7 }[field.type] ?? 1
      }
      if (field instanceof protobuf.MapField) return { key: one() }
      return field.repeated ? [one()] : one()
    }
    const fill = (type: protobuf.Type, depth: number): Record<string, unknown> =>
      Object.fromEntries(type.fieldsArray.map((f) => [camel(f.name), sample(f, depth)]))
    const schema = messageSchema()
    expect(schema.fieldsArray.map((f) => f.name).sort()).toEqual(['candidate', 'credentials', 'peer', 'pske'])
    for (const field of schema.fieldsArray) {
      const json = { [field.name]: sample(field, 0) }
      const message = parseMessageJson(JSON.stringify(json))
      // What the schema accepted, ts-proto's generated code carries: nothing is dropped on the way.
      expect(Message.toJSON(message)).toEqual(json)
    }
  })
})
