// A stand-in for wireguard-tools' `wg`, for tests without root or a WireGuard interface: an executable
// node script that keeps one interface's state in a JSON file, answers `show IFACE private-key|dump|endpoints`
// the way wg prints them, applies `set IFACE peer PK ...`, logs every call (argv and stdin), and can be told
// to fail like wg does (its stderr line and exit code).
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface FakePeer {
  publicKey: string
  presharedKey?: string
  endpoint?: string
  allowedIps: string[]
  latestHandshake?: number
  persistentKeepalive?: number
}

export interface FakeInterface {
  iface: string
  privateKey?: string
  listenPort: number
  peers: FakePeer[]
  /** When set, every call fails with this stderr line and exit code 1 (or `exit`). */
  fail?: { stderr: string; exit?: number }
}

export interface FakeWg {
  /** Path of the executable to give WgTool as `binary`. */
  binary: string
  state(): FakeInterface
  setState(state: FakeInterface): void
  /** Every call so far: argv and what came on stdin. */
  calls(): { argv: string[]; stdin: string }[]
}

export function makeFakeWg(initial: FakeInterface): FakeWg {
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-fake-wg-'))
  const stateFile = join(dir, 'state.json')
  const logFile = join(dir, 'calls.ndjson')
  writeFileSync(logFile, '')
  const binary = join(dir, 'wg')
  writeFileSync(
    binary,
    `#!${process.execPath}
const fs = require('node:fs')
const stateFile = ${JSON.stringify(stateFile)}, logFile = ${JSON.stringify(logFile)}
const argv = process.argv.slice(2)
let stdin = ''
try { stdin = fs.readFileSync(0, 'utf8') } catch {}
fs.appendFileSync(logFile, JSON.stringify({ argv, stdin }) + '\\n')
const s = JSON.parse(fs.readFileSync(stateFile, 'utf8'))
const die = (line, code = 1) => { process.stderr.write(line + '\\n'); process.exit(code) }
if (s.fail) die(s.fail.stderr, s.fail.exit ?? 1)
const [cmd, iface, ...rest] = argv
if (iface !== s.iface) die('Unable to access interface: No such device')
if (cmd === 'show') {
  const what = rest[0]
  if (what === 'private-key') return void process.stdout.write((s.privateKey ?? '(none)') + '\\n')
  if (what === 'endpoints') return void process.stdout.write(s.peers.map((p) => p.publicKey + '\\t' + (p.endpoint ?? '(none)') + '\\n').join(''))
  if (what === 'dump') {
    const pub = s.privateKey ? 'PUB' : '(none)'
    let out = [s.privateKey ?? '(none)', pub, s.listenPort, 'off'].join('\\t') + '\\n'
    for (const p of s.peers) out += [p.publicKey, p.presharedKey ?? '(none)', p.endpoint ?? '(none)', p.allowedIps.join(',') || '(none)', p.latestHandshake ?? 0, 100, 200, p.persistentKeepalive ?? 'off'].join('\\t') + '\\n'
    return void process.stdout.write(out)
  }
  die('Invalid show command')
}
if (cmd === 'set') {
  if (rest[0] !== 'peer') die('Invalid set command')
  const key = rest[1]
  if (!/^[A-Za-z0-9+/]{43}=$/.test(key)) die("Key is not the correct length or format: '" + key + "'")
  let peer = s.peers.find((p) => p.publicKey === key)
  if (rest[2] === 'remove') { s.peers = s.peers.filter((p) => p !== peer) }
  else {
    if (!peer) { peer = { publicKey: key, allowedIps: [] }; s.peers.push(peer) }
    for (let i = 2; i < rest.length; i += 2) {
      const [k, v] = [rest[i], rest[i + 1]]
      if (k === 'endpoint') peer.endpoint = v
      else if (k === 'allowed-ips') { if (!/^[0-9./,:a-f]+$/.test(v)) die('Unable to parse IP address: ' + v); peer.allowedIps = v.split(',') }
      else if (k === 'persistent-keepalive') peer.persistentKeepalive = Number(v)
      else if (k === 'preshared-key') peer.presharedKey = fs.readFileSync(v === '/dev/stdin' ? 0 : v, 'utf8').trim() || stdin.trim()
      else die('Invalid argument: ' + k)
    }
  }
  fs.writeFileSync(stateFile, JSON.stringify(s))
  return
}
die('Invalid subcommand: ' + cmd)
`,
  )
  chmodSync(binary, 0o755)
  const fake: FakeWg = {
    binary,
    state: () => JSON.parse(readFileSync(stateFile, 'utf8')) as FakeInterface,
    setState: (state) => writeFileSync(stateFile, JSON.stringify(state)),
    calls: () =>
      readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { argv: string[]; stdin: string }),
  }
  fake.setState(initial)
  return fake
}
