// schema/events.schema.json compiled once with ajv (draft 2020-12, formats checked): what every NDJSON line
// a command prints must satisfy. test/helpers/cli.ts runs every line of every spawned CLI through it.
import { readFileSync } from 'node:fs'
import Ajv2020Module from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { ErrorObject } from 'ajv'

export const SCHEMA_PATH = new URL('../../schema/events.schema.json', import.meta.url)
export const eventsSchema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as {
  properties: { type: { enum: string[] } }
  $defs: Record<string, { examples?: unknown[] }>
}

// Both are CommonJS modules whose default export TypeScript sees one level deeper than Node loads it.
type Ctor = typeof import('ajv/dist/2020.js').default
const Ajv2020 = ((Ajv2020Module as unknown as { default?: Ctor }).default ?? Ajv2020Module) as Ctor
type AddFormats = typeof import('ajv-formats').default
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as AddFormats

const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false })
addFormats(ajv)
const validate = ajv.compile(eventsSchema)

/** Every `type` the schema lists. */
export const EVENT_TYPES: readonly string[] = eventsSchema.properties.type.enum

/** Why `event` is not a valid event line, or undefined when it is. */
export function eventViolation(event: unknown): string | undefined {
  if (validate(event)) return undefined
  return (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message}${e.params ? ' ' + JSON.stringify(e.params) : ''}`).join('; ')
}

/** Checks one stdout line: a line that starts with `{` must be an event; other lines are the text renderers'. */
export function lineViolation(line: string): string | undefined {
  if (!line.startsWith('{')) return undefined
  let event: unknown
  try {
    event = JSON.parse(line)
  } catch {
    return 'not JSON'
  }
  return eventViolation(event)
}
