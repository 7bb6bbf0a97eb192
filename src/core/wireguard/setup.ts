// The checks `session --wg IFACE` makes before it touches anything: `wg` runs and may read the interface,
// the signaling key is the interface's own, and the peer belongs to the interface. Each failure is one
// line a user can act on, and nothing has been changed on the interface when one is thrown.
import { networkInterfaces } from 'node:os'
import { KeyError, PrivateKey, PublicKey } from '../keys.js'
import type { WgInterfaceDump, WgPeerDump } from './wg-dump.js'
import { WgError, type WgTool } from './wg-tool.js'

export class WireguardSetupError extends Error {
  override name = 'WireguardSetupError'
}

const isRoot = () => typeof process.geteuid !== 'function' || process.geteuid() === 0

/**
 * The interface's private key, which is our signaling key (WIRE.md §8). `given` (-k) must be the same key.
 * Throws WgError (no wg, no permission, no interface) or WireguardSetupError.
 */
export async function interfaceKey(tool: WgTool, iface: string, given?: PrivateKey, signal?: AbortSignal): Promise<PrivateKey> {
  let text: string | undefined
  try {
    text = await tool.privateKey(iface, signal)
  } catch (err) {
    // Without root, wg cannot even tell whether the interface exists: say what is missing first.
    if (err instanceof WgError && !isRoot() && err.kind !== 'missing-binary') {
      throw new WgError('permission', `--wg ${iface} needs root (or CAP_NET_ADMIN) to read and change the interface: ${err.message}`)
    }
    if (err instanceof WgError && err.kind === 'no-interface') {
      throw new WgError('no-interface', `--wg: there is no WireGuard interface ${iface} (create it with \`ip link add ${iface} type wireguard\` or \`wireguard-go ${iface}\`): ${err.message}`)
    }
    throw err
  }
  if (!text) throw new WireguardSetupError(`--wg: ${iface} has no private key yet: set one with \`wg set ${iface} private-key FILE\``)
  let key: PrivateKey
  try {
    key = PrivateKey.parse(text, `${iface}'s private key`)
  } catch (err) {
    throw new WireguardSetupError((err as KeyError).message)
  }
  if (given && !given.publicKey.equals(key.publicKey)) {
    throw new WireguardSetupError(
      `-k holds the key of ${given.publicKey.toString()}, but ${iface} has the key of ${key.publicKey.toString()}: with --wg the interface's key is the signaling key; drop -k or give ${iface}'s key`,
    )
  }
  return key
}

export interface PlannedPeer {
  key: PublicKey
  original: WgPeerDump
  addedByUs: boolean
}

/**
 * The peers to carry: `peer` alone (to be added with `allowedIps` when the interface lacks it: see
 * `addedByUs`), or every peer of the interface. Changes nothing.
 */
export function planPeers(iface: string, dump: WgInterfaceDump, options: { peer?: PublicKey; allowedIps?: string[] }): PlannedPeer[] {
  if (dump.listenPort === 0) throw new WireguardSetupError(`--wg: ${iface} has no listen port: set one with \`wg set ${iface} listen-port PORT\``)
  const { peer } = options
  if (!peer) {
    if (options.allowedIps) throw new WireguardSetupError('--allowed-ips adds PEER_PK to the interface: give PEER_PK too')
    if (dump.peers.length === 0) {
      throw new WireguardSetupError(`--wg: ${iface} has no peers: add one with \`wg set ${iface} peer PEER_PK allowed-ips IP/32\`, or give PEER_PK and --allowed-ips`)
    }
    return dump.peers.map((p) => ({ key: PublicKey.parse(p.publicKey, `${iface}'s peer`), original: p, addedByUs: false }))
  }
  const existing = dump.peers.find((p) => p.publicKey === peer.toString())
  if (existing) return [{ key: peer, original: existing, addedByUs: false }]
  if (!options.allowedIps) {
    throw new WireguardSetupError(
      `--wg: ${peer.toString()} is not a peer of ${iface}: add it with \`wg set ${iface} peer ${peer.toString()} allowed-ips IP/32\`, or pass --allowed-ips IP/32`,
    )
  }
  return [{ key: peer, original: { publicKey: peer.toString(), allowedIps: options.allowedIps, transferRx: 0, transferTx: 0 }, addedByUs: true }]
}

/**
 * Host-candidate interfaces for --wg when the user named none: every interface except the WireGuard one
 * (cunīcu does the same), so ICE never tries to reach the peer through the tunnel it is building.
 * Undefined when nothing else is left (the session then reports that gathering found nothing usable).
 */
export function interfacesExcept(iface: string): string[] | undefined {
  const names = Object.entries(networkInterfaces())
    .filter(([name, infos]) => name !== iface && (infos ?? []).some((i) => !i.internal))
    .map(([name]) => name)
  return names.length ? names : undefined
}

/** What the checks found: the interface's listen port and the peers to carry. */
export interface WireguardPlan {
  iface: string
  listenPort: number
  peers: PlannedPeer[]
}

/** Reads the interface (`wg show IFACE dump`) and plans the peers; changes nothing. */
export async function planWireguard(tool: WgTool, iface: string, options: { peer?: PublicKey; allowedIps?: string[]; signal?: AbortSignal }): Promise<WireguardPlan> {
  const dump = await tool.dump(iface, options.signal)
  return { iface, listenPort: dump.listenPort, peers: planPeers(iface, dump, options) }
}
