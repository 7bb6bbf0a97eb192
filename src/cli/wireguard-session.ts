// `session --wg IFACE [PEER_PK]`: the CLI side of the WireGuard runner (src/core/wireguard). It turns flags
// into typed options, maps setup failures to exit codes, and picks the renderer; the work is in core.
import type { Backend } from '../core/backend.js'
import { PrivateKey, PublicKey } from '../core/keys.js'
import type { WireguardEvent } from '../core/wireguard/events.js'
import { ExitCode } from './exit-codes.js'
import { readIceFlags } from './ice-flags.js'
import { backendOpenExitCode, openFlagBackends } from './open-client.js'
import { backendUrls, loadPrivateKey } from './flags.js'
import { writeNdjson } from './ndjson.js'
import { abortOnSignals, whenAborted } from './shutdown.js'

/** What the command lends us: its one-line failure (never returns) and whether output is NDJSON. */
export interface CommandIo {
  fail(message: string, exit: number): never
  ndjson: boolean
}

export interface WireguardSessionFlags {
  wg: string
  'allowed-ips'?: string
  'key-file'?: string
  backend?: string[]
  'ca-file'?: string
  'publish-timeout'?: number
  stun?: string[]
  turn?: string[]
  'server-relays': boolean
  interface?: string[]
  loopback: boolean
  'exit-on-connected': boolean
  timeout?: number
}

export async function runWireguardSession(io: CommandIo, flags: WireguardSessionFlags, peerArg: string | undefined): Promise<void> {
  const usage = <T>(parse: () => T, where: string): T => {
    try {
      return parse()
    } catch (err) {
      return io.fail(`${where}: ${(err as Error).message}`, ExitCode.Usage)
    }
  }
  const peer = peerArg === undefined ? undefined : usage(() => PublicKey.parse(peerArg, 'PEER_PK'), 'PEER_PK')
  const allowedIps = flags['allowed-ips']?.split(',').map((s) => s.trim()).filter(Boolean)
  // Every STUN/TURN URL and interface is read here, before the WireGuard interface or the backend is touched.
  const ice = await readIceFlags(flags, usage)
  const iface = flags.wg
  const [{ WgTool, WgError }, { interfaceKey, interfacesExcept, planWireguard, WireguardSetupError }, { WireguardMesh }] = await Promise.all([
    import('../core/wireguard/wg-tool.js'),
    import('../core/wireguard/setup.js'),
    import('../core/wireguard/mesh.js'),
  ])
  const setupFailure = (err: unknown): never => {
    if (err instanceof WgError) io.fail(err.message, err.kind === 'timeout' ? ExitCode.Error : ExitCode.Usage)
    if (err instanceof WireguardSetupError) io.fail(err.message, ExitCode.Usage)
    throw err
  }

  const shutdown = abortOnSignals()
  const tool = new WgTool()
  // -k (or CUNICU_PRIVATE_KEY) is optional with --wg: the interface's key is the signaling key.
  let given: PrivateKey | undefined
  if (flags['key-file'] || process.env.CUNICU_PRIVATE_KEY) {
    try {
      const loaded = await loadPrivateKey(flags['key-file'])
      loaded.warnings.forEach((w) => process.stderr.write(`${w}\n`))
      given = loaded.key
    } catch (err) {
      shutdown.dispose()
      io.fail((err as Error).message, ExitCode.Usage)
    }
  }
  const ours = await interfaceKey(tool, iface, given, shutdown.signal).catch((err: unknown) => {
    shutdown.dispose()
    return setupFailure(err)
  })
  if (peer?.equals(ours.publicKey)) {
    shutdown.dispose()
    io.fail(`PEER_PK is ${iface}'s own public key: a peer cannot open a session with itself`, ExitCode.Usage)
  }

  // Every check on the interface comes before the backend is opened: a bad --wg setup fails fast, offline.
  const interfaces = flags.interface ?? (flags.loopback ? undefined : interfacesExcept(iface))
  const plan = await planWireguard(tool, iface, { ...(peer ? { peer } : {}), ...(allowedIps ? { allowedIps } : {}), signal: shutdown.signal }).catch((err: unknown) => {
    shutdown.dispose()
    return setupFailure(err)
  })

  const urls = backendUrls(flags.backend)
  let backend: Backend
  try {
    backend = await openFlagBackends(flags, urls)
  } catch (err) {
    shutdown.dispose()
    return io.fail((err as Error).message, backendOpenExitCode(err))
  }
  const relaySources = { backendUrls: urls, publicKey: ours.publicKey.bytes }
  const iceServers = await ice.resolve({ ...relaySources, signal: shutdown.signal })
  const mesh = new WireguardMesh({
    tool,
    plan,
    backend,
    ours,
    single: peer !== undefined,
    session: {
      ice: { ...(interfaces ? { interfaces } : {}), loopback: flags.loopback, ...(ice.tlsCa ? { tlsCa: ice.tlsCa } : {}) },
      iceServers,
      // Time-limited TURN credentials are fetched again before they expire (sessions that run for days).
      renewIceServers: (signal) => ice.resolve({ ...relaySources, signal }),
    },
    signal: shutdown.signal,
  })
  const unmount = io.ndjson
    ? (mesh.events.on(writeNdjson), async () => {})
    : (await import('../ui/wireguard-view.js')).showWireguard(mesh.events)

  // --exit-on-connected / --timeout: the goal is every carried peer connected (and its probe done).
  const goal = new AbortController()
  const connected = new Set<string>()
  const settled = new Set<string>()
  mesh.events.on((e: WireguardEvent) => {
    if (e.type === 'state' && e.state === 'connected') connected.add(e.peer)
    if ((e.type === 'verified' || e.type === 'unverified') && connected.has(e.peer)) settled.add(e.peer)
    if (flags['exit-on-connected'] && mesh.peers.length > 0 && mesh.peers.every((p) => settled.has(p))) goal.abort()
  })
  const timer = flags.timeout ? setTimeout(() => goal.abort(new Error('timeout')), flags.timeout * 1000) : undefined
  let failure: { message: string; exit: number } | undefined
  try {
    await mesh.start()
    await Promise.race([whenAborted(shutdown.signal), whenAborted(goal.signal)])
    const missing = mesh.peers.filter((p) => !connected.has(p))
    if (goal.signal.reason instanceof Error && missing.length) {
      failure = { message: `timed out after ${flags.timeout} s: not connected to ${missing.map((p) => p.slice(0, 8) + '…').join(', ')}`, exit: ExitCode.Timeout }
    }
  } catch (err) {
    // wg refusing the peer --allowed-ips adds is bad input; anything else here is the backend.
    if (!shutdown.signal.aborted) failure = { message: (err as Error).message, exit: err instanceof WgError ? ExitCode.Usage : ExitCode.Backend }
  } finally {
    clearTimeout(timer)
    await mesh.close()
    await backend.close()
    shutdown.dispose()
    await unmount()
  }
  if (failure) io.fail(failure.message, failure.exit)
}
