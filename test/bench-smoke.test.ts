// The benchmark harness in its tiny mode: proves every row is produced and every spawned process goes away.
// Speed targets live in `npm run bench` and BENCHMARKS.md, never here.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import type { LatencyRow } from '../bench/latency.js'

const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Row {
  id: string
  name: string
  value: number
  reference: number
  ratio: number | string
}

const ROWS = [
  'cluster',
  'cluster-cpu-redis',
  'cluster-cpu-redis-cluster',
  'relay',
  'relay-cpu',
  'latency-p50-1000',
  'latency-p99-1000',
  'latency-p999-1000',
  'latency-p50-5000',
  'latency-p99-5000',
  'latency-p999-5000',
  'memory-10k',
  'memory-100k',
  'crypto-cache',
  'crypto-nocache',
  'cli-keygen',
  'cli-help',
  'session',
  'auth-subscribe-cpu',
  'forward',
  'cli-session',
  'transport-cpu',
  'transport-cpu-h2',
  'transport-cpu-grpc-js',
  'transport-idle-peer',
  'transport-idle-peer-h2',
  // A side row, only where the machine sets NODE_EXTRA_CA_CERTS (bench/cli-session.js).
  ...(process.env.NODE_EXTRA_CA_CERTS ? ['cli-session-no-extra-ca'] : []),
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
    for (const field of ['value', 'reference'] as const) {
      expect(Number.isFinite(row[field]) && row[field] > 0, `${row.id}.${field} = ${row[field]}\n${output}`).toBe(true)
    }
    // A reference with a worse tail than ours must never turn into a flattering ratio (issue 12).
    if (row.id.startsWith('latency-') && row.reference > row.value) expect(row.ratio, row.id).toBe('reference noisy')
    if (row.ratio === 'reference noisy') {
      // Only where the reference really is worse: a latency row whose reference percentile exceeds ours.
      expect(row.id.startsWith('latency-') && row.reference > row.value, `${row.id}: "reference noisy" with reference ${row.reference} ≤ value ${row.value}`).toBe(true)
    } else {
      expect(typeof row.ratio === 'number' && Number.isFinite(row.ratio) && row.ratio > 0, `${row.id}.ratio = ${row.ratio}\n${output}`).toBe(true)
    }
    // A latency row that hides refused or lost publishes would be the old, misleading bench (issue 12).
    if (row.id.startsWith('latency-')) expect(row.name, row.id).toMatch(/\d+ refused, \d+ lost( \([^)]*\))?, \d+ late/)
  }
  expect(output).toMatch(/\| row +\| figure/)
}, 180_000)

test('a latency run whose publishes the server refuses fails, naming the rows and the count', async () => {
  // The default per-connection publish limit (200/s, burst 400) is what the old bench measured unknowingly.
  // latency() stops every process it started, by PID, also when it throws.
  const { latency } = await import('../bench/latency.js')
  const rows: LatencyRow[] = []
  const run = latency({
    cfg: { lateMs: 100, messageBytes: 200, limitFlags: ['--publish-rate', '50', '--publish-burst', '10'], runs: [{ rate: 1000, warmupMs: 50, measureMs: 300 }] },
    row: (r) => rows.push(r),
    log: () => {},
    notes: [],
  })
  await expect(run).rejects.toThrow(/latency-\*-1000 \(signal\): \d+ refused/)
  const p99 = rows.find((r) => r.id === 'latency-p99-1000')
  expect(p99?.name).toMatch(/--publish-rate 50 --publish-burst 10 .*: [1-9]\d* refused/)
}, 60_000)
