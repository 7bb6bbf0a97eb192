// Helpers shared by the benchmark orchestrator (run.js): child processes that are always killed by PID,
// bounded waits, /proc readings and small statistics. No benchmark logic lives here.
import { spawn, fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

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

/**
 * Spawns a server that prints {"type":"listening","address":…} as its first stdout line (`cunicu-ts signal
 * --json` and bench/echo-server.js both do); resolves with the child and the address.
 */
export async function startListeningProcess(args, what) {
  const child = track(spawn(process.execPath, args, { cwd: ROOT, env: PROD_ENV, stdio: ['ignore', 'pipe', 'pipe'] }))
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const address = await withTimeout(
    new Promise((resolve, reject) => {
      let out = ''
      const onData = (d) => {
        out += d
        const nl = out.indexOf('\n')
        if (nl < 0) return
        child.stdout.off('data', onData)
        try {
          const first = JSON.parse(out.slice(0, nl))
          if (first.type === 'listening' && first.address) resolve(first.address)
          else reject(new Error(`${what}: unexpected first line ${out.slice(0, nl)}`))
        } catch (err) {
          reject(new Error(`${what}: first line is not JSON: ${out.slice(0, nl)}`))
        }
      }
      child.stdout.on('data', onData)
      child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before listening: ${stderr.trim()}`)))
    }),
    15_000,
    `${what} start`,
  )
  child.stdout.resume() // the rest of stdout is not read, but must not fill the pipe
  return { child, pid: child.pid, address }
}

export function startSignal() {
  return startListeningProcess([RUN_JS, 'signal', '--listen', '127.0.0.1:0', '--json'], 'cunicu-ts signal')
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
 * Forks bench/client.js with a task; resolves with its single result message. The client exits when done,
 * and also when we disconnect (so it never outlives the orchestrator's IPC channel).
 */
export function runClient(task, timeoutMs) {
  const child = track(fork(join(BENCH_DIR, 'client.js'), [], { cwd: ROOT, env: PROD_ENV, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
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
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
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
