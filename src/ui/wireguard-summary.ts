// The --wg table's rows: one per peer, folded from the event stream as it arrives, so the view holds a
// row per peer and never the whole history (a mesh session runs for days).
import type { SessionState } from '../core/session/events.js'
import type { WireguardEvent } from '../core/wireguard/events.js'

export interface PeerRow {
  peer: string
  role?: string
  state: SessionState
  pair?: string
  rttMs?: number
  unverified?: boolean
  /** Tunnel bytes through our proxy: to the peer, from the peer. */
  sentBytes: number
  receivedBytes: number
  /** From `wg show IFACE dump`: ISO time of WireGuard's latest handshake with the peer. */
  latestHandshake?: string
  /** Where the peer's WireGuard endpoint points now (ours while carried). */
  endpoint?: string
  lastError?: string
}

export interface WireguardSummary {
  iface?: string
  publicKey?: string
  listenPort?: number
  rows: Map<string, PeerRow>
}

export const emptySummary = (): WireguardSummary => ({ rows: new Map() })


/** Folds one event into the summary (in place: the caller re-renders with a fresh copy of the map). */
export function foldWireguardEvent(summary: WireguardSummary, event: WireguardEvent): void {
  if (event.type === 'interface') {
    summary.iface = event.iface
    summary.publicKey = event.publicKey
    summary.listenPort = event.listenPort
    for (const peer of event.peers) if (!summary.rows.has(peer)) summary.rows.set(peer, { peer, state: 'idle', sentBytes: 0, receivedBytes: 0 })
    return
  }
  if (!event.peer) return
  let row = summary.rows.get(event.peer)
  if (!row) {
    row = { peer: event.peer, state: 'idle', sentBytes: 0, receivedBytes: 0 }
    summary.rows.set(event.peer, row)
  }
  switch (event.type) {
    case 'role':
      row.role = event.role
      break
    case 'state':
      row.state = event.state
      if (event.state !== 'connected') {
        delete row.rttMs
        delete row.unverified
      }
      if (event.state === 'failed' && event.reason) row.lastError = event.reason
      break
    case 'pair':
      // The remote side is what tells a user where the tunnel goes; the local one only by its type.
      row.pair = `${event.local.type}→${event.remote.type} ${event.remote.address}:${event.remote.port}`
      break
    case 'verified':
      row.rttMs = event.rttMs
      delete row.unverified
      break
    case 'unverified':
      row.unverified = true
      break
    case 'forward':
      row.sentBytes = event.sent.bytes
      row.receivedBytes = event.received.bytes
      break
    case 'handshake':
      if (event.latestHandshake) row.latestHandshake = event.latestHandshake
      if (event.endpoint) row.endpoint = event.endpoint
      break
    case 'endpoint':
      if (event.action === 'pointed') row.endpoint = event.endpoint
      else if (event.action === 'restored') {
        if (event.endpoint) row.endpoint = event.endpoint
        else delete row.endpoint
      }
      break
    case 'error':
      row.lastError = event.message
      break
  }
}

/** "12 s" style age of an ISO time, relative to `now` (ms). */
export function age(iso: string | undefined, now: number): string {
  if (!iso) return 'never'
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 120) return `${s} s`
  if (s < 7200) return `${Math.round(s / 60)} min`
  return `${Math.round(s / 3600)} h`
}
