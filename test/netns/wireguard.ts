// A WireGuard interface inside a peer namespace, made with Debian's wireguard-go (the kernel module may
// not be loadable). wireguard-go keeps its control socket in /run/wireguard/IFACE.sock, a directory every
// network namespace shares, so two peers' "wg0" would collide: each one runs in a private mount namespace
// with its own tmpfs on /run/wireguard, and everything that talks to it (wg, the CLI) enters that mount
// namespace and the network namespace with nsenter. WG_PROCESS_FOREGROUND=1 keeps wireguard-go in the
// foreground, so the bed kills it by PID like every other child.
import { execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { CliProcess, RUN } from '../helpers/cli.js'
import type { NetnsBed } from './bed.js'

export interface WgNode {
  ns: string
  iface: string
  /** wireguard-go's PID: its mount namespace holds the interface's control socket. */
  pid: number
  /** Runs `wg ARGS` next to the interface; returns stdout. */
  wg(args: string[]): string
  /** Runs any command in the peer's network and mount namespaces. */
  exec(args: string[]): string
  /** Starts a command there, tracked by the bed (killed by PID in destroy()). */
  spawn(args: string[], env?: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams
  /** Starts the CLI there (production mode, no key or backend from the environment), optionally behind a wrapper such as setpriv. */
  cli(args: string[], env?: Record<string, string>, wrapper?: string[]): CliProcess
}

/** Absolute, so a test may hand the CLI a PATH without wg (nsenter itself is still found). */
const NSENTER = execFileSync('sh', ['-c', 'command -v nsenter'], { encoding: 'utf8' }).trim() || 'nsenter'

const cliEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  NODE_ENV: 'production',
  CUNICU_PRIVATE_KEY: '',
  CUNICU_BACKEND: '',
  CUNICU_KEY_FILE: '',
  ...extra,
})

/**
 * Starts wireguard-go for `iface` in `ns`, then configures it: private key, listen port, address, up.
 * Resolves once `wg show` answers (bounded: 50 polls of 100 ms).
 */
export async function startWireguardGo(
  bed: NetnsBed,
  ns: string,
  options: { iface?: string; privateKeyFile: string; address: string; listenPort?: number },
): Promise<WgNode> {
  const iface = options.iface ?? 'wg0'
  const child = bed.spawn(ns, ['unshare', '--mount', 'sh', '-c', `mount -t tmpfs cts-wireguard /run/wireguard && exec wireguard-go ${iface}`], {
    ...process.env,
    WG_PROCESS_FOREGROUND: '1',
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const pid = child.pid!
  const enter = [NSENTER, '-t', String(pid), '-m', '-n']
  const exec = (args: string[]) => {
    try {
      return execFileSync(enter[0]!, [...enter.slice(1), ...args], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 })
    } catch (err) {
      const e = err as { stderr?: string; message: string }
      throw new Error(`${args.join(' ')} in ${ns} failed: ${e.stderr?.trim() || e.message}`)
    }
  }
  const node: WgNode = {
    ns,
    iface,
    pid,
    exec,
    wg: (args) => exec(['wg', ...args]),
    spawn: (args, env = process.env) => bed.spawnCommand([...enter, ...args], env),
    cli: (args, env, wrapper = []) => new CliProcess(bed.spawnCommand([...enter, ...wrapper, process.execPath, RUN, ...args], cliEnv(env))),
  }
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`wireguard-go ${iface} in ${ns} exited with ${child.exitCode}: ${output}`)
    try {
      node.wg(['show', iface, 'dump'])
      break
    } catch (err) {
      if (i >= 50) throw new Error(`wireguard-go ${iface} in ${ns} did not answer within 5 s: ${(err as Error).message}\n${output}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  node.wg(['set', iface, 'private-key', options.privateKeyFile, 'listen-port', String(options.listenPort ?? 51820)])
  node.exec(['ip', 'addr', 'add', options.address, 'dev', iface])
  node.exec(['ip', 'link', 'set', iface, 'up'])
  return node
}

/** `wg show IFACE dump`, for before/after comparisons (the handshake and byte columns stay as they are). */
export const dumpOf = (node: WgNode): string => node.wg(['show', node.iface, 'dump'])

/** `wg show IFACE endpoints` as a map from peer key to endpoint ("(none)" when unset). */
export function endpointsOf(node: WgNode): Record<string, string> {
  return Object.fromEntries(
    node
      .wg(['show', node.iface, 'endpoints'])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t') as [string, string]),
  )
}
