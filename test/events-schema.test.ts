// schema/events.schema.json: it tells valid event lines from invalid ones, its examples and the README's
// are valid and cover every type, and the CLI test helper fails a test on a line that is not an event.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { CliProcess, ROOT, takeEventViolations } from './helpers/cli.js'
import { EVENT_TYPES, eventViolation, eventsSchema, lineViolation } from './helpers/events-schema.js'

const at = '2026-11-30T09:00:00.000Z'
const verified = { type: 'verified', at, rttMs: 0.4 }

describe('the events schema', () => {
  it('is draft 2020-12 and lists the types every command prints', () => {
    expect((eventsSchema as Record<string, unknown>)['$schema']).toBe('https://json-schema.org/draft/2020-12/schema')
    for (const t of ['role', 'state', 'verified', 'message', 'published', 'listening', 'stopped', 'peer', 'done', 'key', 'status', 'error', 'forward']) {
      expect(EVENT_TYPES).toContain(t)
    }
  })

  it('accepts a valid line, with properties it does not list', () => {
    expect(eventViolation(verified)).toBeUndefined()
    expect(eventViolation({ ...verified, peerKey: 'added by a later change' })).toBeUndefined()
  })

  it('refuses a line without type, without at, with an unknown type, or with an at that is not RFC 3339', () => {
    const { type: _t, ...noType } = verified
    const { at: _a, ...noAt } = verified
    expect(eventViolation(noType)).toMatch(/type/)
    expect(eventViolation(noAt)).toMatch(/at/)
    expect(eventViolation({ ...verified, type: 'verifed' })).toMatch(/allowed values/)
    expect(eventViolation({ ...verified, at: '30.11.2026 09:00' })).toMatch(/date-time/)
    expect(eventViolation({ ...verified, at: '2026-11-30T09:00:00' })).toMatch(/date-time/) // no zone
    expect(lineViolation('{"error":{"message":"x","exit":4}}')).toMatch(/type/) // the old error shape
    expect(lineViolation('{not json')).toBe('not JSON')
    expect(lineViolation('cunicu-ts signal listening on 127.0.0.1:8080')).toBeUndefined() // text mode
  })

  it('refuses a line that lacks a field its type needs', () => {
    expect(eventViolation({ type: 'verified', at })).toMatch(/rttMs/)
    expect(eventViolation({ type: 'error', at })).toMatch(/message/)
    expect(eventViolation({ type: 'state', at, state: 'connected' })).toMatch(/previous/)
    expect(eventViolation({ type: 'state', at, state: 'sleeping', previous: 'idle' })).toMatch(/allowed values/)
    expect(eventViolation({ type: 'peer', at, peer: 'A', event: { type: 'listening', at, address: 'x', tls: false } })).toMatch(/allowed values/)
  })

  it('has one valid example per type', () => {
    for (const type of EVENT_TYPES) {
      const examples = eventsSchema.$defs[type]?.examples ?? []
      expect(examples, type).toHaveLength(1)
      expect(eventViolation(examples[0]), type).toBeUndefined()
      expect((examples[0] as { type: string }).type).toBe(type)
    }
  })

  it('the README links it and shows one valid example line per type', () => {
    const readme = readFileSync(new URL('README.md', `file://${ROOT}`), 'utf8')
    expect(readme).toContain('(schema/events.schema.json)')
    const section = readme.slice(readme.indexOf('### Events'))
    const lines = section.split('\n').filter((l) => l.startsWith('{"type":'))
    const seen = new Set<string>()
    for (const line of lines) {
      expect(lineViolation(line), line).toBeUndefined()
      seen.add((JSON.parse(line) as { type: string }).type)
    }
    expect([...seen].sort()).toEqual([...EVENT_TYPES].sort())
  })
})

describe('the CLI test helper', () => {
  it('reports a printed line that is not an event (so the test that spawned it fails)', async () => {
    const fake = new CliProcess(spawn(process.execPath, ['-e', 'console.log(JSON.stringify({ type: "verified", at: new Date().toISOString(), rttMs: 1 })); console.log(\'{"state":"connected"}\')']), true)
    expect(await fake.exit()).toBe(0)
    const violations = takeEventViolations()
    expect(violations).toHaveLength(1)
    expect(violations[0]).toContain('{"state":"connected"}')
  })
})
