// Strict protobuf-JSON input for Message (WIRE.md §3): ts-proto's fromJSON silently drops unknown fields
// and maps unknown enum names to -1, so a typo in a script would be published as a different message.
// Every key, enum name, number and base64 string is checked against the schema before converting, and
// the schema is read from the shipped .proto files (protobufjs reflection), not copied by hand: a change
// in proto/ reaches `publish` with the next `npm run gen`, and cannot be left behind.
import { join } from 'node:path'
import protobuf from 'protobufjs'
import { Message } from '../gen/signaling/signaling.js'
import { protoDir } from './package-root.js'

export class MessageJsonError extends Error {
  override name = 'MessageJsonError'
}

const MESSAGE_TYPE = 'cunicu.signaling.Message'
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$|^[A-Za-z0-9_-]*={0,2}$/
const INT_RANGES: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
}
const INT64 = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64'])

let messageType: protobuf.Type | undefined

/** The Message type as the .proto files declare it, loaded once (field names as written: keepCase). */
export function messageSchema(): protobuf.Type {
  if (messageType) return messageType
  const dir = protoDir()
  const root = new protobuf.Root()
  // Imports in proto/ are relative to proto/ ("feature/epdisc.proto"), as buf resolves them.
  root.resolvePath = (_origin, target) => join(dir, target)
  root.loadSync('signaling/signaling.proto', { keepCase: true })
  root.resolveAll()
  return (messageType = root.lookupType(MESSAGE_TYPE))
}

const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())

function checkScalar(value: unknown, type: string, path: string): void {
  const fail = (expected: string) => {
    throw new MessageJsonError(`${path}: expected ${expected}, got ${JSON.stringify(value)}`)
  }
  if (type === 'string') return void (typeof value === 'string' || fail('a string'))
  if (type === 'bool') return void (typeof value === 'boolean' || fail('true or false'))
  if (type === 'bytes') return void ((typeof value === 'string' && BASE64.test(value)) || fail('base64 bytes'))
  const range = INT_RANGES[type]
  if (range) {
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value
    return void ((typeof n === 'number' && Number.isInteger(n) && n >= range[0] && n <= range[1]) || fail(`an ${type} number`))
  }
  if (INT64.has(type)) {
    const ok = (typeof value === 'string' && /^-?\d+$/.test(value)) || (typeof value === 'number' && Number.isSafeInteger(value))
    return void (ok || fail(`an ${type} number`))
  }
  if (type === 'double' || type === 'float') {
    const ok = typeof value === 'number' || value === 'NaN' || value === 'Infinity' || value === '-Infinity'
    return void (ok || fail(`a ${type}`))
  }
  fail(`a value of type ${type}`)
}

function checkValue(value: unknown, field: protobuf.Field, path: string): void {
  const resolved = field.resolvedType
  if (resolved instanceof protobuf.Enum) {
    const names = Object.keys(resolved.values)
    const numbers = Object.values(resolved.values)
    const ok = (typeof value === 'string' && names.includes(value)) || (typeof value === 'number' && numbers.includes(value))
    if (!ok) throw new MessageJsonError(`${path}: expected one of ${names.join(', ')}, got ${JSON.stringify(value)}`)
    return
  }
  if (resolved instanceof protobuf.Type) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new MessageJsonError(`${path}: expected an object, got ${JSON.stringify(value)}`)
    }
    checkObject(value as Record<string, unknown>, resolved, path)
    return
  }
  checkScalar(value, field.type, path)
}

function checkField(value: unknown, field: protobuf.Field, path: string): void {
  if (value === null) return // proto3 JSON: null means the default value
  if (field instanceof protobuf.MapField) {
    if (typeof value !== 'object' || Array.isArray(value)) throw new MessageJsonError(`${path}: expected an object, got ${JSON.stringify(value)}`)
    for (const [key, item] of Object.entries(value)) checkValue(item, field, `${path}.${key}`)
    return
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw new MessageJsonError(`${path}: expected a list, got ${JSON.stringify(value)}`)
    value.forEach((item, i) => checkValue(item, field, `${path}[${i}]`))
    return
  }
  checkValue(value, field, path)
}

function checkObject(object: Record<string, unknown>, type: protobuf.Type, path: string): void {
  const byJsonName = new Map<string, protobuf.Field>()
  for (const field of type.fieldsArray) {
    byJsonName.set(field.name, field)
    byJsonName.set(camel(field.name), field)
  }
  const oneofSet = new Map<string, string>()
  for (const [key, value] of Object.entries(object)) {
    const field = byJsonName.get(key)
    const where = path ? `${path}.${key}` : key
    if (field === undefined) {
      const known = type.fieldsArray.map((f) => camel(f.name)).join(', ')
      throw new MessageJsonError(`unknown field "${where}" (known here: ${known})`)
    }
    const oneof = field.partOf
    if (oneof && value !== null && !oneof.name.startsWith('_')) {
      const other = oneofSet.get(oneof.name)
      if (other !== undefined) throw new MessageJsonError(`"${where}" and "${other}" are both set, but only one of ${oneof.name} may be`)
      oneofSet.set(oneof.name, where)
    }
    checkField(value, field, where)
  }
}

/** Parses one Message from protobuf JSON text, rejecting anything the schema does not know. */
export function parseMessageJson(text: string): Message {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new MessageJsonError(`not valid JSON: ${(err as Error).message}`)
  }
  return messageFromJson(value)
}

export function messageFromJson(value: unknown): Message {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MessageJsonError(`a Message must be a JSON object such as {"credentials":{"ufrag":"…","pwd":"…"}}`)
  }
  checkObject(value as Record<string, unknown>, messageSchema(), '')
  return Message.fromJSON(value)
}

export function messageToJson(message: Message): unknown {
  return Message.toJSON(message)
}
