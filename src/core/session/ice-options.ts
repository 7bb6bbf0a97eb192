// Our ICE options and their translation to werift-ice's constructor options (ICE-NOTES §1): which host
// addresses to gather. STUN/TURN servers are asked by server-gathering.ts, not by werift (which would ask
// only the first of each, and Google's STUN server by default).
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { IceOptions as WeriftIceOptions } from 'werift-ice'
import type { StunServer, TurnServer } from './ice-servers.js'

export interface IceOptions {
  /** STUN servers (parseStunServer), tried in order until one answers (server-fallback.ts). Default: none. */
  stunServers?: StunServer[]
  /** Interface names or IP addresses to take host candidates from. Default: every non-internal address. */
  interfaces?: string[]
  /** One-host mode: only 127.0.0.1 host candidates. */
  loopback?: boolean
  /** TURN servers for relayed candidates (`--turn`, the server's relay registry), tried in order until one allocates. */
  turnServers?: TurnServer[]
  /** PEM CA certificates to trust for turns: servers instead of the system roots (--ca-file). */
  tlsCa?: Buffer
  /** How long one STUN/TURN server may take before the next is tried (server-gathering.ts). Default 5000. */
  serverTimeoutMs?: number
  /** Per connect attempt, milliseconds. Default 15000. */
  connectTimeoutMs?: number
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000

export class IceOptionsError extends Error {
  override name = 'IceOptionsError'
}

/**
 * Host addresses for `interfaces`: a name stands for all its addresses (IPv6 link-local skipped, as werift
 * does by default), an IP literal for itself. Throws naming the unknown entry and the known interfaces.
 */
export function resolveInterfaceAddresses(entries: readonly string[]): string[] {
  const table = networkInterfaces()
  const addresses: string[] = []
  for (const entry of entries) {
    if (isIP(entry)) {
      addresses.push(entry)
      continue
    }
    const infos = table[entry]
    if (!infos) {
      throw new IceOptionsError(`interface "${entry}" not found (known: ${Object.keys(table).join(', ') || 'none'})`)
    }
    const usable = infos.filter((i) => !(i.family === 'IPv6' && i.address.toLowerCase().startsWith('fe80:')))
    if (usable.length === 0) throw new IceOptionsError(`interface "${entry}" has no usable IP address`)
    addresses.push(...usable.map((i) => i.address))
  }
  return [...new Set(addresses)]
}

/** werift's constructor options for our options. */
export function weriftOptions(ice: IceOptions = {}): Partial<WeriftIceOptions> {
  if (ice.loopback) {
    // The combination ICE-NOTES verified: no gathered addresses, 127.0.0.1 added, the socket bound to it.
    // interfaceAddresses alone would bind to 127.0.0.1 while still advertising eth0's address.
    return { useIpv4: false, useIpv6: false, additionalHostAddresses: ['127.0.0.1'], interfaceAddresses: { udp4: '127.0.0.1' } }
  }
  if (ice.interfaces && ice.interfaces.length > 0) {
    // Exactly these addresses, each socket on the wildcard address like werift's default gathering.
    return { useIpv4: false, useIpv6: false, additionalHostAddresses: resolveInterfaceAddresses(ice.interfaces) }
  }
  return { useIpv4: true, useIpv6: true }
}
