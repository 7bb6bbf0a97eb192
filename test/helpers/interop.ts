// The independent Python implementation of WIRE.md (test/interop/*.py) for the interop tests: Debian's
// /usr/bin/python3 with python3-grpcio (gRPC C core), python3-nacl (libsodium), python3-protobuf and
// python3-aioice, and protobuf modules generated from proto/ by Debian's protoc into a temp dir.
// Nothing here is skipped when missing: CI installs these packages, so a missing one is a failure
// that names the apt package to install.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { CliProcess, ROOT } from './cli.js'

export const PYTHON = '/usr/bin/python3'
export const PROTOC = '/usr/bin/protoc'
export const INTEROP_DIR = join(ROOT, 'test', 'interop')
const PROTO_DIR = join(ROOT, 'proto')

/** Every Debian package the interop tests need (CI's apt-get install list). */
export const APT_PACKAGES = ['python3', 'python3-grpcio', 'python3-nacl', 'python3-protobuf', 'python3-aioice', 'protobuf-compiler'] as const

const MODULES: Record<string, (typeof APT_PACKAGES)[number]> = {
  grpc: 'python3-grpcio',
  'grpc.aio': 'python3-grpcio',
  nacl: 'python3-nacl',
  'nacl.public': 'python3-nacl',
  'google.protobuf.json_format': 'python3-protobuf',
  aioice: 'python3-aioice',
}

const install = (packages: string[]) => `apt-get install -y ${[...new Set(packages)].join(' ')}`

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return protoFiles(path)
    return name.endsWith('.proto') ? [relative(PROTO_DIR, path)] : []
  })
}

/** Python package dirs need __init__.py, or a same-named package elsewhere on sys.path could shadow them. */
function markPackages(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (!statSync(path).isDirectory()) continue
    writeFileSync(join(path, '__init__.py'), '')
    markPackages(path)
  }
}

export interface PythonEnv {
  /** Where protoc wrote the *_pb2.py modules. */
  generated: string
  env: NodeJS.ProcessEnv
  cleanup(): void
}

/**
 * Checks /usr/bin/python3, its modules and protoc, then generates the protobuf modules from proto/.
 * Throws with the apt-get command that fixes whatever is missing.
 */
export function preparePython(): PythonEnv {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} not found: ${install([...APT_PACKAGES])}`)
  const probe = spawnSync(PYTHON, ['-c', 'import importlib, sys\nfor m in sys.argv[1:]:\n    try: importlib.import_module(m)\n    except Exception: print(m)', ...Object.keys(MODULES)], {
    encoding: 'utf8',
    timeout: 20_000,
    env: pythonEnv([]),
  })
  if (probe.status !== 0) throw new Error(`${PYTHON} does not run (exit ${probe.status}): ${probe.error?.message ?? probe.stderr}`)
  const absent = probe.stdout.split('\n').filter(Boolean)
  if (absent.length) throw new Error(`${PYTHON} lacks module(s) ${absent.join(', ')}: ${install(absent.map((m) => MODULES[m]!))}`)

  const generated = mkdtempSync(join(tmpdir(), 'cunicu-ts-interop-'))
  const protoc = spawnSync(PROTOC, [`--python_out=${generated}`, '-I', PROTO_DIR, ...protoFiles(PROTO_DIR)], { encoding: 'utf8', timeout: 30_000 })
  if (protoc.error && (protoc.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${PROTOC} not found: ${install(['protobuf-compiler'])}`)
  if (protoc.status !== 0) throw new Error(`protoc failed (${protoc.status}): ${protoc.stderr}`)
  markPackages(generated)
  // The generated modules must load with Debian's protobuf runtime (protoc and runtime from one release).
  const check = spawnSync(PYTHON, ['-c', 'import wire'], { encoding: 'utf8', timeout: 20_000, env: pythonEnv([generated, INTEROP_DIR]) })
  if (check.status !== 0) throw new Error(`the generated protobuf modules do not load: ${check.stderr}${check.stdout}`)
  return { generated, env: pythonEnv([generated, INTEROP_DIR]), cleanup: () => rmSync(generated, { recursive: true, force: true }) }
}

/** The environment for Debian's python: only our modules on PYTHONPATH, no pyenv or user site. */
function pythonEnv(path: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: path.join(':'), PYTHONNOUSERSITE: '1', PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' }
  delete env.PYTHONHOME
  delete env.PYTHONSTARTUP
  return env
}

/**
 * Starts a test/interop script. The child is tracked like a CLI child, so `killAll` (afterEach) kills it
 * by PID; its NDJSON stdout is read with the same waitForEvent.
 */
export function startPython(py: PythonEnv, script: 'peer.py' | 'server.py', args: string[]): CliProcess {
  const child = spawn(PYTHON, [join(INTEROP_DIR, script), ...args], { env: py.env, cwd: ROOT, stdio: 'pipe' })
  child.stdin.end()
  return new CliProcess(child)
}

/** Runs a test/interop script to completion; SIGKILLed after `timeoutMs`. */
export async function runPython(py: PythonEnv, script: 'peer.py' | 'server.py', args: string[], timeoutMs = 20_000) {
  const p = startPython(py, script, args)
  const code = await p.exit(timeoutMs)
  return { code, events: p.events, stdout: p.lines.join('\n'), stderr: p.stderr }
}
