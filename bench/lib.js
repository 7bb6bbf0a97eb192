// Helpers shared by the benchmark orchestrator (run.js): child processes that are always killed by PID,
// bounded waits, /proc readings and small statistics. No benchmark logic lives here.
import { spawn, fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, totalmem } from 'node:os'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findExecutable } from '../scripts/find-executable.js'

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url))
export const ROOT = join(BENCH_DIR, '..')
export const RUN_JS = join(ROOT, 'bin', 'run.js')
/** NODE_ENV=production: oclif must run dist/, never transpile src/ through tsx (TOOLCHAIN-NOTES P17). */
export const PROD_ENV = { ...process.env, NODE_ENV: 'production' }

// ---- every child we start, so that none outlives us ------------------------------------------------

const children = new Set()

export function track(child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Kills every child still running, by PID; safe to call more than once and from an 'exit' handler. */
export function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, signal)
      } catch {
        // already gone
      }
    }
  }
}

let installed = false
export function installCleanup() {
  if (installed) return
  installed = true
  process.on('exit', () => killAll())
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      killAll()
      process.exit(130)
    })
  }
}

/** The value after `name` in a script's arguments (`--rounds 3`), or `fallback` when it is not given. */
export function argOption(args, name, fallback) {
  const at = args.indexOf(name)
  return at === -1 ? fallback : args[at + 1]
}

/** Rejects after ms unless the promise settles first; the timer never keeps the process alive. */
export function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)
    timer.unref()
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** BENCH_CPU_PROF=DIR: every server and client process writes a CPU profile into DIR when it exits. */
const PROFILE_ARGS = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []

/**
 * A tracked child whose stdout is NDJSON. `next(match, ms, what)` resolves with the first matching line, seen
 * or still to come, as `{ at, event }` (`at`: performance.now() when it arrived); it rejects when the child
 * exits first (with its stderr) or after `ms`. The latest 1,000 lines are kept, so a long run stays small;
 * `stderrTail()` is the last 4,000 characters of its stderr.
 */
export function ndjsonProcess(command, args, env = PROD_ENV) {
  const child = track(spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }))
  let stderr = ''
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)))
  const lines = []
  const waiters = new Set()
  createInterface({ input: child.stdout }).on('line', (line) => {
    let event
    try {
      event = JSON.parse(line)
    } catch {
      return
    }
    const entry = { at: performance.now(), event }
    lines.push(entry)
    if (lines.length > 1000) lines.shift()
    for (const w of [...waiters]) if (w.match(event)) (waiters.delete(w), w.resolve(entry))
  })
  const next = (match, ms, what) =>
    withTimeout(
      new Promise((resolve, reject) => {
        const found = lines.find((l) => match(l.event))
        if (found) return resolve(found)
        const waiter = { match, resolve }
        waiters.add(waiter)
        child.once('exit', (code) => (waiters.delete(waiter), reject(new Error(`${what}: exited with ${code} first: ${stderr.trim().slice(-500)}`))))
      }),
      ms,
      what,
    )
  return { child, pid: child.pid, next, stderrTail: () => stderr }
}

/**
 * Spawns a server that prints {"type":"listening","address":…} (`cunicu-ts signal --json` and
 * bench/echo-server.js both do; `signal --cluster` may print cluster lines first); resolves with the child and
 * the address.
 */
export async function startListeningProcess(args, what) {
  const proc = ndjsonProcess(process.execPath, [...PROFILE_ARGS, ...args])
  const { event } = await proc.next((e) => e.type === 'listening' && e.address, 15_000, `${what} start`)
  // metrics: the --metrics listener's address, when the server has one.
  return { child: proc.child, pid: proc.pid, address: event.address, metrics: event.metrics, stderrTail: proc.stderrTail }
}

/** `extraArgs`: e.g. ['--cluster', 'redis://127.0.0.1:PORT']. */
export function startSignal(extraArgs = []) {
  return startListeningProcess([RUN_JS, 'signal', '--listen', '127.0.0.1:0', '--json', ...extraArgs], 'cunicu-ts signal')
}

function redisServerBinary() {
  const binary = findExecutable('redis-server')
  if (!binary) throw new Error('redis-server not found: the cluster row needs the Debian package redis-server (apt-get install -y redis-server)')
  return binary
}

/** A port that was free a moment ago on 127.0.0.1 (redis-server cannot be told to pick one itself). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * A redis-server of our own on a free loopback port, storing nothing (as test/helpers/redis.ts starts it),
 * tracked like every other child so it is killed by PID at the end and on failure. A port taken between
 * freePort() and the bind is retried (3 attempts). `extraArgs(port)`: more options (a cluster node's).
 */
export async function startRedis(extraArgs = async () => []) {
  const binary = redisServerBinary()
  let lastError
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice', ...(await extraArgs(port))]
    const child = track(spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
    let log = ''
    const proc = { child, pid: child.pid, port, address: `127.0.0.1:${port}`, url: `redis://127.0.0.1:${port}` }
    try {
      await withTimeout(
        new Promise((resolve, reject) => {
          const onData = (d) => {
            log += d
            if (log.includes('Ready to accept connections')) {
              child.stdout.off('data', onData)
              child.stderr.off('data', onData)
              resolve()
            }
          }
          child.stdout.on('data', onData)
          child.stderr.on('data', onData)
          child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${log.trim().split('\n').slice(-3).join(' / ')}`)))
          child.once('error', reject)
        }),
        10_000,
        `redis-server on port ${port}`,
      )
      child.stdout.resume()
      child.stderr.resume()
      return proc
    } catch (err) {
      lastError = err
      await stopProcess(proc)
    }
  }
  throw lastError
}

export function startEcho() {
  return startListeningProcess([join(BENCH_DIR, 'echo-server.js')], 'grpc-js echo server')
}

export async function stopProcess(proc) {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return
  const exited = new Promise((resolve) => proc.child.once('exit', resolve))
  process.kill(proc.pid, 'SIGKILL')
  await withTimeout(exited, 5000, `stopping PID ${proc.pid}`).catch(() => {})
}

/**
 * Forks a bench child (bench/client.js unless `script` names another file in bench/) with a task; `next(type)`
 * resolves with its message of that type. The child exits when done, and also when we disconnect (so it
 * never outlives the orchestrator's IPC channel). `nodeFlags`: Node/V8 flags for the child.
 */
export function runClient(task, timeoutMs, script = 'client.js', nodeFlags = []) {
  const child = track(fork(join(BENCH_DIR, script), [], { cwd: ROOT, env: PROD_ENV, execArgv: [...PROFILE_ARGS, ...nodeFlags], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  const handle = {
    child,
    pid: child.pid,
    /** Resolves when the client reports {type}; `send` talks to it. */
    next: (type) =>
      withTimeout(
        new Promise((resolve, reject) => {
          const onMessage = (m) => {
            if (m.type === 'error') return cleanup(), reject(new Error(`bench client ${child.pid}: ${m.message}`))
            if (m.type !== type) return
            cleanup()
            resolve(m)
          }
          const onExit = (code) => {
            cleanup()
            reject(new Error(`bench client ${child.pid} exited with ${code} before "${type}"`))
          }
          const cleanup = () => {
            child.off('message', onMessage)
            child.off('exit', onExit)
          }
          child.on('message', onMessage)
          child.once('exit', onExit)
        }),
        timeoutMs,
        `bench client ${task.mode} waiting for ${type}`,
      ),
    send: (m) => child.connected && child.send(m),
  }
  child.send(task)
  return handle
}

export async function stopClient(handle) {
  if (!handle || handle.child.exitCode !== null || handle.child.signalCode !== null) return
  const exited = new Promise((resolve) => handle.child.once('exit', resolve))
  handle.send({ type: 'stop' })
  try {
    await withTimeout(exited, 3000, 'client stop')
  } catch {
    process.kill(handle.pid, 'SIGKILL')
  }
}

// ---- /proc --------------------------------------------------------------------------------------------

/** VmRSS of a process in KiB. */
export function rssKiB(pid) {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no VmRSS for PID ${pid}`)
  return Number(match[1])
}

/** utime+stime of a process in clock ticks (100 per second on Linux). */
export function cpuTicks(pid) {
  const { user, system } = cpuTimes(pid)
  return user + system
}

/** utime and stime of a process, in clock ticks (/proc/PID/stat; the name in parentheses may hold spaces). */
export function cpuTimes(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]), system: Number(fields[12]) }
}
export const TICKS_PER_SECOND = 100

export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  return {
    nproc: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  }
}

/** The whole machine's CPU busy fraction over `ms` (all cores, from /proc/stat): how quiet the box was. */
export async function machineBusy(ms) {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const idle = f[3] + (f[4] ?? 0)
    return { idle, total: f.reduce((a, b) => a + b, 0) }
  }
  const a = read()
  await new Promise((r) => setTimeout(r, ms))
  const b = read()
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : NaN
}

export function loadAverage() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number)
}

// ---- statistics ---------------------------------------------------------------------------------------

export function median(values) {
  return percentile(values, 50)
}

/** Nearest-rank percentile of a sample. */
export function percentile(values, p) {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[Math.min(rank, sorted.length) - 1]
}
