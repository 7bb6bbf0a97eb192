// wireguard-tools' `wg`, run as a child process: the only way --wg reads or changes an interface, so a kernel
// interface and a user-space one (wireguard-go) are handled alike. Every call has a timeout and can be
// aborted; failures carry a kind the CLI maps to an exit code without reading their text.
import { execFile } from 'node:child_process'
import { parseWgDump, type WgInterfaceDump } from './wg-dump.js'

export type WgErrorKind =
  /** No `wg` executable on PATH. */
  | 'missing-binary'
  /** Not allowed to talk to the interface (not root, no CAP_NET_ADMIN). */
  | 'permission'
  /** No WireGuard interface of that name. */
  | 'no-interface'
  /** The call took longer than its timeout, or was aborted. */
  | 'timeout'
  /** Anything else `wg` refused (bad key, bad argument). */
  | 'failed'

export class WgError extends Error {
  override name = 'WgError'
  constructor(
    readonly kind: WgErrorKind,
    message: string,
  ) {
    super(message)
  }
}

export interface WgToolOptions {
  /** The executable; default "wg" from PATH. */
  binary?: string
  /** Per call; default 5000 ms. */
  timeoutMs?: number
}

export interface AddPeerOptions {
  allowedIps: string[]
  endpoint?: string
  persistentKeepalive?: number
  /** Base64; passed on stdin, never on the command line (other users can read argv). */
  presharedKey?: string
}

export const DEFAULT_WG_TIMEOUT_MS = 5000

export class WgTool {
  readonly binary: string
  readonly #timeoutMs: number

  constructor(options: WgToolOptions = {}) {
    this.binary = options.binary ?? 'wg'
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_WG_TIMEOUT_MS
  }

  /** Runs `wg ARGS`; resolves with stdout, or rejects with a WgError naming the command. */
  run(args: string[], options: { signal?: AbortSignal; input?: string } = {}): Promise<string> {
    const command = `wg ${args.join(' ')}`
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.binary,
        args,
        { timeout: this.#timeoutMs, encoding: 'utf8', ...(options.signal ? { signal: options.signal } : {}) },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout)
          reject(classify(command, err as NodeJS.ErrnoException & { killed?: boolean; signal?: string }, stderr))
        },
      )
      // wg may exit before reading stdin (it reads it only for a key from /dev/stdin): EPIPE is no failure.
      child.stdin?.on('error', () => {})
      child.stdin?.end(options.input ?? '')
    })
  }

  /** The interface's private key (base64), or undefined if it has none yet. */
  async privateKey(iface: string, signal?: AbortSignal): Promise<string | undefined> {
    const text = (await this.run(['show', iface, 'private-key'], signal ? { signal } : {})).trim()
    return text === '' || text === '(none)' ? undefined : text
  }

  async dump(iface: string, signal?: AbortSignal): Promise<WgInterfaceDump> {
    const text = await this.run(['show', iface, 'dump'], signal ? { signal } : {})
    try {
      return parseWgDump(text)
    } catch (err) {
      throw new WgError('failed', `wg show ${iface} dump: ${(err as Error).message}`)
    }
  }

  setEndpoint(iface: string, peer: string, endpoint: string, signal?: AbortSignal): Promise<string> {
    return this.run(['set', iface, 'peer', peer, 'endpoint', endpoint], signal ? { signal } : {})
  }

  addPeer(iface: string, peer: string, options: AddPeerOptions, signal?: AbortSignal): Promise<string> {
    const args = ['set', iface, 'peer', peer, 'allowed-ips', options.allowedIps.join(',')]
    if (options.endpoint) args.push('endpoint', options.endpoint)
    if (options.persistentKeepalive) args.push('persistent-keepalive', String(options.persistentKeepalive))
    if (options.presharedKey) args.push('preshared-key', '/dev/stdin')
    return this.run(args, { ...(signal ? { signal } : {}), ...(options.presharedKey ? { input: options.presharedKey + '\n' } : {}) })
  }

  removePeer(iface: string, peer: string, signal?: AbortSignal): Promise<string> {
    return this.run(['set', iface, 'peer', peer, 'remove'], signal ? { signal } : {})
  }
}

function classify(command: string, err: NodeJS.ErrnoException & { killed?: boolean; signal?: string }, stderr: string): WgError {
  if (err.code === 'ENOENT') return new WgError('missing-binary', 'the `wg` command of wireguard-tools is not on PATH (apt-get install wireguard-tools)')
  if (err.code === 'EACCES') return new WgError('permission', `${command}: the wg executable may not be run: ${err.message}`)
  if (err.name === 'AbortError' || err.killed) return new WgError('timeout', `${command} did not finish (aborted or timed out)`)
  const said = stderr.trim().split('\n').filter(Boolean).at(-1) ?? err.message
  // wg's own words: "Unable to access interface: <strerror>". A kernel interface answers EPERM to a non-root
  // caller; wireguard-go's UAPI socket (root-only) answers EACCES.
  if (/Operation not permitted|Permission denied/i.test(said)) return new WgError('permission', `${command}: ${said}`)
  // Kernel: "No such device"; no kernel module and no wireguard-go socket: "Protocol not supported".
  if (/Unable to access interface: (No such device|Protocol not supported|No such file or directory)/i.test(said)) {
    return new WgError('no-interface', `${command}: ${said}`)
  }
  return new WgError('failed', `${command}: ${said}`)
}
