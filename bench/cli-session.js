// The "CLI session" row: from the moment the second peer's *process* is started to the moment it reports
// its ICE session connected, for `cunicu-ts session` (node bin/run.js, --json) and, as the reference in the
// same run, for the tests' independent Python peer (test/interop/peer.py: grpcio, PyNaCl, aioice). In both
// cases the first peer already runs and waits, so the figure is what a user sees when starting the
// second peer: interpreter and module loading, subscribe, credentials, candidates, ICE checks.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { median, ndjsonProcess, PROD_ENV, ROOT, RUN_JS, startSignal, stopProcess } from './lib.js'

const PYTHON = '/usr/bin/python3'
const PROTO_DIR = join(ROOT, 'proto')
const INTEROP_DIR = join(ROOT, 'test', 'interop')

function protoFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return protoFiles(path)
    return name.endsWith('.proto') ? [relative(PROTO_DIR, path)] : []
  })
}

/** The Python peer's protobuf modules, generated from proto/ with Debian's protoc (as test/helpers/interop.ts). */
function preparePython() {
  const generated = mkdtempSync(join(tmpdir(), 'cunicu-bench-py-'))
  const protoc = spawnSync('/usr/bin/protoc', [`--python_out=${generated}`, '-I', PROTO_DIR, ...protoFiles(PROTO_DIR)], { encoding: 'utf8', timeout: 30_000 })
  if (protoc.status !== 0) throw new Error(`protoc failed (apt-get install -y protobuf-compiler): ${protoc.error?.message ?? protoc.stderr}`)
  const mark = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) (writeFileSync(join(path, '__init__.py'), ''), mark(path))
    }
  }
  mark(generated)
  const env = { ...process.env, PYTHONPATH: [generated, INTEROP_DIR].join(':'), PYTHONNOUSERSITE: '1', PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' }
  delete env.PYTHONHOME
  return { env, cleanup: () => rmSync(generated, { recursive: true, force: true }) }
}

/** A started peer: `until(match, what)` resolves with the time its first matching NDJSON line arrived. */
function startPeer(command, args, env) {
  const proc = ndjsonProcess(command, args, env)
  return { child: proc.child, pid: proc.pid, until: async (match, what) => (await proc.next(match, 20_000, what)).at }
}

function keyPair() {
  // Keys from the CLI itself (its fast path), so this file needs no build of its own.
  const run = (args, input) => spawnSync(process.execPath, [RUN_JS, ...args], { input, encoding: 'utf8', env: PROD_ENV }).stdout.trim()
  const privateKey = run(['keygen'])
  return { privateKey, publicKey: run(['pubkey'], privateKey) }
}

/**
 * This machine's environment, or that environment without NODE_EXTRA_CA_CERTS: with it, Node parses the whole
 * CA bundle into a certificate store during process start-up, before any of our code runs (`node -e 0`: ~46
 * instead of ~17 ms of CPU here), and the Python peer reads no such variable. `env` builds one peer's.
 */
function environment(withoutExtraCa) {
  const base = { ...PROD_ENV }
  if (withoutExtraCa) delete base.NODE_EXTRA_CA_CERTS
  return (extra = {}) => ({ ...base, ...extra })
}

async function oursOnce(address, env = environment(false)) {
  const a = keyPair()
  const b = keyPair()
  const args = (peer) => [RUN_JS, 'session', peer, '-b', `grpc://${address}?insecure=true`, '--loopback', '--json']
  const first = startPeer(process.execPath, args(b.publicKey), env({ CUNICU_PRIVATE_KEY: a.privateKey }))
  let second
  try {
    await first.until((e) => e.type === 'envelope' && e.direction === 'out' && e.kind === 'credentials', 'cunicu-ts first peer waiting')
    const t0 = performance.now()
    second = startPeer(process.execPath, args(a.publicKey), env({ CUNICU_PRIVATE_KEY: b.privateKey }))
    const t1 = await second.until((e) => e.type === 'state' && e.state === 'connected', 'cunicu-ts second peer connected')
    return t1 - t0
  } finally {
    await Promise.all([stopProcess(first), stopProcess(second)])
  }
}

async function pythonOnce(address, py, withoutExtraCa = false) {
  if (withoutExtraCa) py = { ...py, env: { ...py.env } }
  if (withoutExtraCa) delete py.env.NODE_EXTRA_CA_CERTS
  const a = keyPair()
  const b = keyPair()
  const args = (key, peer) => [join(INTEROP_DIR, 'peer.py'), 'session', '--server', address, '--key', key.privateKey, '--peer', peer.publicKey, '--timeout', '20', '--linger', '5']
  const first = startPeer(PYTHON, args(a, b), py.env)
  let second
  try {
    await first.until((e) => e.type === 'subscribed', 'python first peer waiting') // it publishes its credentials next
    const t0 = performance.now()
    second = startPeer(PYTHON, args(b, a), py.env)
    const t1 = await second.until((e) => e.type === 'connected', 'python second peer connected')
    return t1 - t0
  } finally {
    await Promise.all([stopProcess(first), stopProcess(second)])
  }
}

/** Adds the row through `row` (bench/run.js's); `runs` of each, interleaved so load hits both alike. */
export async function cliSession({ runs, row, log }) {
  log('CLI session: process start → connected, second peer (cunicu-ts vs the Python peer)')
  const py = preparePython()
  let signal
  const ours = []
  const python = []
  // The same pairs without NODE_EXTRA_CA_CERTS, when this machine sets it (a side row, see environment()).
  const extraCa = Boolean(process.env.NODE_EXTRA_CA_CERTS)
  const oursNoCa = []
  const pythonNoCa = []
  try {
    signal = await startSignal()
    await oursOnce(signal.address) // warm the page cache for both, unmeasured
    await pythonOnce(signal.address, py)
    if (extraCa) await oursOnce(signal.address, environment(true)) // its own code cache file is written once
    for (let i = 0; i < runs; i++) {
      ours.push(await oursOnce(signal.address))
      python.push(await pythonOnce(signal.address, py))
      if (!extraCa) continue
      oursNoCa.push(await oursOnce(signal.address, environment(true)))
      pythonNoCa.push(await pythonOnce(signal.address, py, true))
    }
  } finally {
    await stopProcess(signal)
    py.cleanup()
  }
  const round = (x) => Math.round(x * 10) / 10
  row({
    id: 'cli-session',
    name: `CLI session: process start → connected, second peer (median of ${runs})`,
    value: median(ours),
    unit: 'ms',
    reference: median(python),
    referenceName: 'two peers of the independent Python implementation (test/interop/peer.py), same server',
    target: '≤ 1.0 ×',
    check: (_, ratio) => ratio <= 1.0,
    detail: { oursMs: ours.map(round), pythonMs: python.map(round), nodeExtraCaCerts: extraCa },
  })
  if (!extraCa) return
  row({
    id: 'cli-session-no-extra-ca',
    name: `CLI session as above, both without this machine's NODE_EXTRA_CA_CERTS (side row: Node start-up without the CA bundle; median of ${runs})`,
    value: median(oursNoCa),
    unit: 'ms',
    reference: median(pythonNoCa),
    referenceName: 'the same Python peers, same run',
    detail: { oursMs: oursNoCa.map(round), pythonMs: pythonNoCa.map(round) },
  })
}
