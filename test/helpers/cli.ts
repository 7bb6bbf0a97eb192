// Spawns the built CLI (dist/, never src/: NODE_ENV=production, see TOOLCHAIN-NOTES P17) and keeps track
// of every child so that a test's afterEach can kill them all by PID.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { afterEach, expect } from 'vitest'
import { lineViolation } from './events-schema.js'

export const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

const children = new Set<ChildProcessWithoutNullStreams>()

// Every NDJSON line any spawned command prints is checked against schema/events.schema.json, and the test
// that spawned it fails if one is not an event (no `type`/`at`, an unknown type, a missing field).
const eventViolations: string[] = []
afterEach(() => {
  expect(takeEventViolations(), 'NDJSON lines that do not match schema/events.schema.json').toEqual([])
})

/** The lines that failed the schema since the last call (the test of the check itself takes them). */
export function takeEventViolations(): string[] {
  return eventViolations.splice(0)
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

function cliEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production', CUNICU_PRIVATE_KEY: '', CUNICU_BACKEND: '', CUNICU_KEY_FILE: '' }
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete base[k]
    else base[k] = v
  }
  return base
}

/** A running CLI process with line-wise access to its stdout. */
export class CliProcess {
  readonly lines: string[] = []
  stderr = ''
  readonly exited: Promise<number | null>
  readonly #waiters = new Set<() => void>()

  /** `validateEvents`: this is a cunicu-ts command, so each `{…}` line it prints must be a schema event. */
  constructor(readonly child: ChildProcessWithoutNullStreams, validateEvents = false) {
    children.add(child)
    createInterface({ input: child.stdout }).on('line', (line) => {
      this.lines.push(line)
      const violation = validateEvents ? lineViolation(line) : undefined
      if (violation) eventViolations.push(`${child.spawnargs.slice(2, 4).join(' ')}: ${violation}: ${line.slice(0, 300)}`)
      this.#waiters.forEach((w) => w())
    })
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        children.delete(child)
        this.#waiters.forEach((w) => w())
        resolve(code)
      }),
    )
  }

  /** Parsed NDJSON lines so far (lines that are not JSON are skipped). */
  get events(): Record<string, any>[] {
    return this.lines.flatMap((l) => {
      try {
        return [JSON.parse(l)]
      } catch {
        return []
      }
    })
  }

  /** Waits for an NDJSON event matching `match`, failing after `timeoutMs` with what was seen. */
  waitForEvent(match: (e: Record<string, any>) => boolean, timeoutMs = 15_000): Promise<Record<string, any>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.find(match)
        if (found) {
          done()
          resolve(found)
        } else if (this.child.exitCode !== null) {
          done()
          reject(new Error(`process exited (${this.child.exitCode}) before the event; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`no matching event within ${timeoutMs} ms; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        this.#waiters.delete(check)
      }
      this.#waiters.add(check)
      check()
    })
  }

  /** Waits for exit, killing the process if it takes longer than `timeoutMs`. */
  async exit(timeoutMs = 15_000): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

export function startCli(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): CliProcess {
  const child = spawn(process.execPath, [RUN, ...args], { env: cliEnv(options.env), cwd: options.cwd ?? ROOT, stdio: 'pipe' })
  return new CliProcess(child, true)
}

/** Runs the CLI to completion with optional stdin; killed after `timeoutMs`. */
export async function runCli(args: string[], options: { input?: string; env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const p = startCli(args, options)
  p.child.stdin.end(options.input ?? '')
  const code = await p.exit(options.timeoutMs ?? 15_000)
  return { code, stdout: p.lines.join('\n'), stderr: p.stderr }
}

/** Kills every child still running (afterEach). */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once('exit', () => resolve())
          if (child.pid) process.kill(child.pid, 'SIGKILL')
        }),
    ),
  )
}
