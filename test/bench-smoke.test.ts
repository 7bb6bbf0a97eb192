// The benchmark harness in its tiny mode: proves every row is produced and every spawned process goes away.
// Speed targets live in `npm run bench` and BENCHMARKS.md, never here.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'

const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Row {
  id: string
  value: number
  reference: number
  ratio: number
}

const ROWS = [
  'cluster',
  'relay',
  'relay-cpu',
  'latency-p50-1000',
  'latency-p99-1000',
  'latency-p50-5000',
  'latency-p99-5000',
  'memory',
  'crypto-cache',
  'crypto-nocache',
  'cli-keygen',
  'cli-help',
  'session',
  'auth-subscribe-cpu',
  'forward',
  'cli-session',
  'transport-cpu',
  'transport-cpu-grpc-js',
  'transport-idle-peer',
]

test('node bench/run.js --quick produces every figure as a finite positive number', async () => {
  const out = join(dir, 'results.json')
  const child = spawn(process.execPath, ['bench/run.js', '--quick', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  expect(code, output).toBe(0)
  const result = JSON.parse(readFileSync(out, 'utf8')) as { rows: Row[]; notes: string[] }
  expect(result.rows.map((r) => r.id).sort()).toEqual([...ROWS].sort())
  for (const row of result.rows) {
    for (const field of ['value', 'reference', 'ratio'] as const) {
      expect(Number.isFinite(row[field]) && row[field] > 0, `${row.id}.${field} = ${row[field]}\n${output}`).toBe(true)
    }
  }
  expect(output).toMatch(/\| row +\| figure/)
}, 180_000)
