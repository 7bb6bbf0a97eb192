// What `session --wg` tells: every session event of every peer, tagged with the peer's key, plus what
// --wg does to the interface and what WireGuard itself reports (`wg show IFACE dump`).
import type { SessionEvent } from '../session/events.js'
import type { EndpointChange } from './endpoint-guard.js'

interface At {
  /** ISO 8601 time the event happened. */
  at: string
}

/** The peer's WireGuard public key (base64): with --wg it is also its signaling address. */
interface OfPeer {
  peer: string
}

export type WireguardEvent =
  | (SessionEvent & OfPeer)
  /** The interface --wg works on, once, at start. */
  | (At & { type: 'interface'; iface: string; publicKey: string; listenPort: number; peers: string[] })
  /** A peer's endpoint was pointed at our proxy socket, put back, or a peer we added was removed. */
  | (At & OfPeer & { type: 'endpoint' } & EndpointChange)
  /** WireGuard's own view of a peer, when it changed: handshake and tunnel byte counters. */
  | (At & OfPeer & { type: 'handshake'; latestHandshake?: string; transferRx: number; transferTx: number; endpoint?: string })
  /** `wg` failed while running (the session goes on); `peer` unless it was about the whole interface. */
  | (At & Partial<OfPeer> & { type: 'error'; source: 'wireguard'; message: string })

export type WireguardEventType = WireguardEvent['type']

/** Distributes Omit over the union, so each variant keeps its own fields. */
export type WireguardEventBody = WireguardEvent extends infer E ? (E extends unknown ? Omit<E, 'at'> : never) : never

export const stamp = (event: WireguardEventBody): WireguardEvent => ({ at: new Date().toISOString(), ...event }) as WireguardEvent
