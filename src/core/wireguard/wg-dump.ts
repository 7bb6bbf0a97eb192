// `wg show IFACE dump`: the one machine-readable form wireguard-tools prints (tab-separated, one line for the
// interface, then one per peer). Everything --wg knows about an interface is read through this parser.

export class WgDumpError extends Error {
  override name = 'WgDumpError'
}

export interface WgPeerDump {
  /** Base64, as WireGuard prints it. */
  publicKey: string
  /** Base64, or undefined for "(none)". Never shown to users; kept to re-add a peer exactly as it was. */
  presharedKey?: string
  /** "IP:PORT" / "[IPv6]:PORT", or undefined for "(none)". */
  endpoint?: string
  /** CIDRs; empty for "(none)". */
  allowedIps: string[]
  /** Seconds since the epoch of the latest handshake; undefined if there was none. */
  latestHandshake?: number
  /** Bytes received from / sent to this peer through the tunnel (WireGuard's own counters). */
  transferRx: number
  transferTx: number
  /** Seconds; undefined for "off". */
  persistentKeepalive?: number
}

export interface WgInterfaceDump {
  /** Base64 or undefined when the interface has none yet. */
  privateKey?: string
  publicKey?: string
  /** The UDP port WireGuard listens on (0: none yet). */
  listenPort: number
  fwmark?: string
  peers: WgPeerDump[]
}

const none = (field: string): string | undefined => (field === '(none)' || field === '' ? undefined : field)

function count(field: string, what: string, line: number): number {
  if (!/^\d+$/.test(field)) throw new WgDumpError(`wg dump line ${line}: ${what} "${field}" is not a number`)
  return Number(field)
}

/** Parses the output of `wg show IFACE dump` (one interface: no interface-name column). */
export function parseWgDump(text: string): WgInterfaceDump {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const head = lines[0]?.split('\t')
  if (!head || head.length !== 4) throw new WgDumpError(`wg dump: expected "private-key public-key listen-port fwmark" on the first line, got ${JSON.stringify(lines[0] ?? '')}`)
  const dump: WgInterfaceDump = { listenPort: count(head[2]!, 'listen-port', 1), peers: [] }
  const privateKey = none(head[0]!)
  const publicKey = none(head[1]!)
  if (privateKey) dump.privateKey = privateKey
  if (publicKey) dump.publicKey = publicKey
  if (head[3] !== 'off') dump.fwmark = head[3]!
  lines.slice(1).forEach((text, i) => {
    const f = text.split('\t')
    const line = i + 2
    if (f.length !== 8) throw new WgDumpError(`wg dump line ${line}: expected 8 peer fields, got ${f.length}`)
    const handshake = count(f[4]!, 'latest-handshake', line)
    const peer: WgPeerDump = {
      publicKey: f[0]!,
      allowedIps: none(f[3]!)?.split(',') ?? [],
      transferRx: count(f[5]!, 'transfer-rx', line),
      transferTx: count(f[6]!, 'transfer-tx', line),
    }
    const psk = none(f[1]!)
    const endpoint = none(f[2]!)
    if (psk) peer.presharedKey = psk
    if (endpoint) peer.endpoint = endpoint
    if (handshake > 0) peer.latestHandshake = handshake
    if (f[7] !== 'off') peer.persistentKeepalive = count(f[7]!, 'persistent-keepalive', line)
    dump.peers.push(peer)
  })
  return dump
}
