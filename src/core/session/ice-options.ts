// Our ICE options and their translation to werift-ice's constructor options (ICE-NOTES §1): which host
// addresses to gather, and which STUN server to ask (none by default; werift would ask Google's).
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
  /** Per connect attempt, milliseconds. Default 15000. */
  connectTimeoutMs?: number
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000

export class IceOptionsError extends Error {
  override name = 'IceOptionsError'
}

export type StunAddress = [string, number]

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

/** The STUN server werift itself asks (the first), or undefined for none (the default switches Google's off). */
export function stunServer(ice: IceOptions = {}): StunAddress | undefined {
  const first = ice.stunServers?.[0]
  return first === undefined ? undefined : [first.host, first.port]
}

/** werift's TURN options for the first TURN server, or none (server-fallback.ts tries the others). */
export function turnOptions(ice: IceOptions = {}): Partial<WeriftIceOptions> {
  const turn = ice.turnServers?.[0]
  if (!turn) return {}
  return { turnServer: [turn.host, turn.port], turnUsername: turn.username, turnPassword: turn.password, turnTransport: turn.transport }
}
