// Strict protobuf-JSON input for Message (WIRE.md §3): ts-proto's fromJSON silently drops unknown fields
// and maps unknown enum names to -1, so a typo in a script would be published as a different message.
// This checks every key, enum name, number and base64 string against the schema before converting.
import { Message } from '../gen/signaling/signaling.js'

export class MessageJsonError extends Error {
  override name = 'MessageJsonError'
}

type FieldType =
  | 'string'
  | 'bool'
  | 'int32'
  | 'uint32'
  | 'bytes'
  | { enum: readonly string[] }
  | { message: Schema }
  | { repeated: FieldType }
  | { map: FieldType }
type Schema = Readonly<Record<string, FieldType>>

const timestamp: Schema = { seconds: 'int32', nanos: 'int32' }
const buildInfo: Schema = {
  version: 'string', date: { message: timestamp }, commit: 'string', tag: 'string', branch: 'string',
  built_by: 'string', os: 'string', arch: 'string', dirty: 'bool',
}
const ipAddress: Schema = { addr: 'bytes' }
const relatedAddress: Schema = { address: 'string', port: 'int32' }
const candidate: Schema = {
  type: { enum: ['UNSPECIFIED_CANDIDATE_TYPE', 'HOST', 'SERVER_REFLEXIVE', 'PEER_REFLEXIVE', 'RELAY'] },
  network_type: { enum: ['UNSPECIFIED_NETWORK_TYPE', 'UDP4', 'UDP6', 'TCP4', 'TCP6'] },
  tcp_type: { enum: ['UNSPECIFIED_TCP_TYPE', 'ACTIVE', 'PASSIVE', 'SIMULTANEOUS_OPEN'] },
  foundation: 'string', component: 'int32', priority: 'int32', address: 'string', port: 'int32',
  related_address: { message: relatedAddress },
  relay_protocol: { enum: ['UNSPECIFIED_RELAY_PROTOCOL', 'UDP', 'TCP', 'TLS', 'DTLS'] },
}
const messageSchema: Schema = {
  credentials: { message: { ufrag: 'string', pwd: 'string', need_creds: 'bool' } },
  candidate: { message: candidate },
  peer: {
    message: {
      change: { enum: ['ADD', 'REMOVE', 'UPDATE'] }, name: 'string', public_key: 'bytes', public_key_new: 'bytes',
      allowed_ips: { repeated: 'string' }, build_info: { message: buildInfo },
      hosts: { map: { message: { addresses: { repeated: { message: ipAddress } } } } },
    },
  },
  pske: { message: { public_key: 'bytes', cipher_text: 'bytes' } },
}

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$|^[A-Za-z0-9_-]*={0,2}$/

function check(value: unknown, type: FieldType, path: string): void {
  if (value === null) return // proto3 JSON: null means the default value
  const fail = (expected: string) => {
    throw new MessageJsonError(`${path}: expected ${expected}, got ${JSON.stringify(value)}`)
  }
  if (type === 'string') return void (typeof value === 'string' || fail('a string'))
  if (type === 'bool') return void (typeof value === 'boolean' || fail('true or false'))
  if (type === 'int32' || type === 'uint32') {
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value
    const [min, max] = type === 'int32' ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** 32 - 1]
    return void ((typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max) || fail(`an ${type} number`))
  }
  if (type === 'bytes') return void ((typeof value === 'string' && BASE64.test(value)) || fail('base64 bytes'))
  if ('enum' in type) {
    const ok = (typeof value === 'string' && type.enum.includes(value)) || (typeof value === 'number' && value >= 0 && value < type.enum.length && Number.isInteger(value))
    return void (ok || fail(`one of ${type.enum.join(', ')}`))
  }
  if ('repeated' in type) {
    if (!Array.isArray(value)) return fail('a list')
    value.forEach((item, i) => check(item, type.repeated, `${path}[${i}]`))
    return
  }
  if (typeof value !== 'object' || Array.isArray(value)) return fail('an object')
  if ('map' in type) {
    for (const [key, item] of Object.entries(value)) check(item, type.map, `${path}.${key}`)
    return
  }
  checkObject(value as Record<string, unknown>, type.message, path)
}

function checkObject(object: Record<string, unknown>, schema: Schema, path: string): void {
  const byJsonName = new Map<string, string>()
  for (const field of Object.keys(schema)) {
    byJsonName.set(field, field)
    byJsonName.set(camel(field), field)
  }
  for (const [key, value] of Object.entries(object)) {
    const field = byJsonName.get(key)
    const where = path ? `${path}.${key}` : key
    if (field === undefined) {
      const known = Object.keys(schema).map(camel).join(', ')
      throw new MessageJsonError(`unknown field "${where}" (known here: ${known})`)
    }
    check(value, schema[field]!, where)
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
  checkObject(value as Record<string, unknown>, messageSchema, '')
  return Message.fromJSON(value)
}

export function messageToJson(message: Message): unknown {
  return Message.toJSON(message)
}

export type MessageKind = 'credentials' | 'candidate' | 'peer' | 'pske' | 'empty'

export function messageKind(message: Message): MessageKind {
  if (message.credentials) return 'credentials'
  if (message.candidate) return 'candidate'
  if (message.peer) return 'peer'
  if (message.pske) return 'pske'
  return 'empty'
}
