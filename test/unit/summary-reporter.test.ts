// The closing line CI reads ("N passed, N failed, N skipped") must count what vitest counts as failure:
// failed hooks, modules that do not load, not only failed tests.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CONFIG = 'test/fixtures/reporter/vitest.config.ts'

/** Every fixture test except the one named to be left out (vitest marks a filtered-out test as skipped). */
const LEAVE_OUT = '^(?!.*left out by the name filter)'

async function runFixtures(files: string[]): Promise<{ code: number | null; lastLine: string }> {
  const args = ['node_modules/vitest/vitest.mjs', 'run', '--config', CONFIG, '--testNamePattern', LEAVE_OUT, ...files]
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.resume()
  const timer = setTimeout(() => child.kill('SIGKILL'), 25_000)
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  clearTimeout(timer)
  return { code, lastLine: stdout.trim().split('\n').at(-1) ?? '' }
}

describe('summary reporter', () => {
  it('counts tests kept from running by a failed beforeAll, a failed afterAll and a module that does not load as failed', async () => {
    const run = await runFixtures(['describe-before-all', 'module-before-all', 'after-all', 'load-error'])
    expect(run.code).toBe(1)
    // passed: one beside the failing suite, one before the failing afterAll; failed: 2 + 1 unrun, the
    // afterAll, the module; skipped: only the test the name filter left out.
    expect(run.lastLine).toBe('2 passed, 5 failed, 1 skipped')
  })

  it('says 0 failed when all passed', async () => {
    const run = await runFixtures(['passing'])
    expect(run.code).toBe(0)
    expect(run.lastLine).toBe('1 passed, 0 failed, 0 skipped')
  })
})
