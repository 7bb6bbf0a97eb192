// The README's shell examples that need no other host are marked `# (tested: …)` as their first line; this
// runs each such block as it is, with bash, in an empty directory with only `cunicu-ts` (the build) added
// to the PATH, and checks that it exits 0, prints its result and no error.
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ROOT, RUN } from './helpers/cli.js'

const MARK = '# (tested: runs as is in test/readme-examples.test.ts)'
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.startsWith(MARK))

const groups = new Set<number>()
afterEach(() => {
  // Each block ran in its own process group: whatever it left in the background goes with it.
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  groups.clear()
})

function runBlock(block: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-readme-'))
  const bin = mkdtempSync(join(tmpdir(), 'cunicu-ts-readme-bin-')) // the PATH entry, outside the work dir
  const shim = join(bin, 'cunicu-ts')
  writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${RUN}" "$@"\n`)
  chmodSync(shim, 0o755)
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}`, NODE_ENV: 'production' }
  for (const name of ['CUNICU_BACKEND', 'CUNICU_KEY_FILE', 'CUNICU_PRIVATE_KEY', 'NO_COLOR']) delete env[name]
  const child = spawn('bash', ['-euo', 'pipefail', '-c', block], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  groups.add(child.pid!)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 60_000)
  return new Promise((resolve) => child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr }))))
}

describe('README shell examples', () => {
  it('marks at least the quick start, keys, publish/subscribe and demo blocks', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4)
  })

  it.each(blocks.map((block, i) => [i + 1, block.split('\n')[1]!, block] as const))('block %i (%s) runs and exits 0', async (_i, _first, block) => {
    const { code, stdout, stderr } = await runBlock(block)
    expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0)
    expect(stderr).not.toMatch(/Error:/)
    expect(stdout.trim()).not.toBe('') // each block shows its result
  }, 90_000)
})
