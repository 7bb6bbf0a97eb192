// Candidates in three shapes: CandidateInfo (what events and renderers see), the protobuf Candidate on
// the wire (WIRE.md §7, cunīcu's epdisc_candidate.proto) and werift-ice's Candidate (what the agent takes).
import { isIP } from 'node:net'
import { Candidate as WeriftCandidate, candidateFoundation } from 'werift-ice'
import {
  Candidate as ProtoCandidate,
  CandidateType as ProtoCandidateType,
  NetworkType,
  RelayProtocol,
  TCPType,
} from '../../gen/feature/epdisc_candidate.js'
import type { CandidateInfo, CandidateType } from './events.js'

export class CandidateMappingError extends Error {
  override name = 'CandidateMappingError'
}

/** ICE has one component for a WireGuard datagram flow; cunīcu always sends 1. */
const COMPONENT = 1

const TYPE_TO_PROTO: Record<CandidateType, ProtoCandidateType> = {
  host: ProtoCandidateType.HOST,
  srflx: ProtoCandidateType.SERVER_REFLEXIVE,
  prflx: ProtoCandidateType.PEER_REFLEXIVE,
  relay: ProtoCandidateType.RELAY,
}
const TYPE_FROM_PROTO = new Map<ProtoCandidateType, CandidateType>(
  Object.entries(TYPE_TO_PROTO).map(([k, v]) => [v, k as CandidateType]),
)

const RELAY_TO_PROTO = { udp: RelayProtocol.UDP, tcp: RelayProtocol.TCP, tls: RelayProtocol.TLS, dtls: RelayProtocol.DTLS } as const
const RELAY_FROM_PROTO = new Map<RelayProtocol, NonNullable<CandidateInfo['relayProtocol']>>([
  [RelayProtocol.UDP, 'udp'],
  [RelayProtocol.TCP, 'tcp'],
  [RelayProtocol.TLS, 'tls'],
  [RelayProtocol.DTLS, 'dtls'],
])

const TCP_TYPE_TO_PROTO = { active: TCPType.ACTIVE, passive: TCPType.PASSIVE, so: TCPType.SIMULTANEOUS_OPEN } as const
const TCP_TYPE_FROM_PROTO = new Map<TCPType, NonNullable<CandidateInfo['tcpType']>>([
  [TCPType.ACTIVE, 'active'],
  [TCPType.PASSIVE, 'passive'],
  [TCPType.SIMULTANEOUS_OPEN, 'so'],
])

function isCandidateType(type: string): type is CandidateType {
  return type === 'host' || type === 'srflx' || type === 'prflx' || type === 'relay'
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CandidateMappingError(`${what} ${port} is not a port number (1-65535)`)
}

/** An agent's candidate as an event/renderer value. */
export function candidateInfoFromWerift(c: WeriftCandidate): CandidateInfo {
  const type = c.type.toLowerCase()
  if (!isCandidateType(type)) throw new CandidateMappingError(`unknown ICE candidate type "${c.type}"`)
  const protocol = c.transport.toLowerCase()
  if (protocol !== 'udp' && protocol !== 'tcp') throw new CandidateMappingError(`unknown ICE candidate transport "${c.transport}"`)
  const info: CandidateInfo = { type, protocol, address: c.host, port: c.port, priority: c.priority, foundation: c.foundation }
  if (c.relatedAddress !== undefined && type !== 'host') info.relatedAddress = c.relatedAddress
  if (c.relatedPort !== undefined && type !== 'host') info.relatedPort = c.relatedPort
  if (protocol === 'tcp' && (c.tcptype === 'active' || c.tcptype === 'passive' || c.tcptype === 'so')) info.tcpType = c.tcptype
  // werift's relayed candidates carry the relayed transport only; the TURN transport is the same unless configured otherwise.
  if (type === 'relay') info.relayProtocol = protocol
  return info
}

/** A candidate to hand to werift's addRemoteCandidate. */
export function candidateInfoToWerift(info: CandidateInfo): WeriftCandidate {
  const foundation = info.foundation || candidateFoundation(info.type, info.protocol, info.address)
  return new WeriftCandidate(
    foundation,
    COMPONENT,
    info.protocol,
    info.priority,
    info.address,
    info.port,
    info.type,
    info.type === 'host' ? undefined : info.relatedAddress,
    info.type === 'host' ? undefined : info.relatedPort,
    info.protocol === 'tcp' ? info.tcpType : undefined,
  )
}

/** The wire form, as cunīcu's candidate conversion writes it. */
export function candidateInfoToProto(info: CandidateInfo): ProtoCandidate {
  // Hostnames (mDNS ".local" names) have no family of their own; like pion, count them as IPv4.
  const v6 = isIP(info.address) === 6
  const networkType = info.protocol === 'udp' ? (v6 ? NetworkType.UDP6 : NetworkType.UDP4) : v6 ? NetworkType.TCP6 : NetworkType.TCP4
  return ProtoCandidate.fromPartial({
    type: TYPE_TO_PROTO[info.type],
    networkType,
    tcpType: info.protocol === 'tcp' && info.tcpType ? TCP_TYPE_TO_PROTO[info.tcpType] : TCPType.UNSPECIFIED_TCP_TYPE,
    foundation: info.foundation,
    component: COMPONENT,
    // ICE priorities are uint32 but the field is int32; Go's int32(p) wraps the same way `| 0` does.
    priority: info.priority | 0,
    address: info.address,
    port: info.port,
    relatedAddress:
      info.type !== 'host' && info.relatedAddress !== undefined
        ? { address: info.relatedAddress, port: info.relatedPort ?? 0 }
        : undefined,
    relayProtocol: info.type === 'relay' ? RELAY_TO_PROTO[info.relayProtocol ?? info.protocol] : RelayProtocol.UNSPECIFIED_RELAY_PROTOCOL,
  })
}

/** Reads a candidate from the wire; throws CandidateMappingError with a readable reason when it is unusable. */
export function candidateInfoFromProto(c: ProtoCandidate): CandidateInfo {
  const type = TYPE_FROM_PROTO.get(c.type)
  if (!type) throw new CandidateMappingError(`candidate has unknown type ${c.type}`)
  let protocol: 'udp' | 'tcp'
  switch (c.networkType) {
    case NetworkType.UDP4:
    case NetworkType.UDP6:
      protocol = 'udp'
      break
    case NetworkType.TCP4:
    case NetworkType.TCP6:
      protocol = 'tcp'
      break
    default:
      throw new CandidateMappingError(`candidate ${c.address}:${c.port} has unknown network type ${c.networkType}`)
  }
  if (c.address === '') throw new CandidateMappingError('candidate has no address')
  checkPort(c.port, `candidate ${c.address} port`)
  const info: CandidateInfo = {
    type,
    protocol,
    address: c.address,
    port: c.port,
    priority: c.priority >>> 0,
    foundation: c.foundation,
  }
  if (type !== 'host' && c.relatedAddress && c.relatedAddress.address !== '') {
    info.relatedAddress = c.relatedAddress.address
    info.relatedPort = c.relatedAddress.port
  }
  if (protocol === 'tcp') {
    const tcpType = TCP_TYPE_FROM_PROTO.get(c.tcpType)
    if (tcpType) info.tcpType = tcpType
  }
  if (type === 'relay') {
    const relay = RELAY_FROM_PROTO.get(c.relayProtocol)
    if (relay) info.relayProtocol = relay
  }
  return info
}

function hostPort(address: string, port: number | undefined): string {
  const host = isIP(address) === 6 ? `[${address}]` : address
  return port === undefined ? host : `${host}:${port}`
}

/** One line for a human: "host udp 127.0.0.1:50123", "srflx udp 203.0.113.7:4000 from 192.0.2.2:50123". */
export function formatCandidate(c: CandidateInfo): string {
  const base = `${c.type} ${c.protocol} ${hostPort(c.address, c.port)}`
  const related = c.relatedAddress !== undefined ? ` from ${hostPort(c.relatedAddress, c.relatedPort)}` : ''
  const relay = c.type === 'relay' && c.relayProtocol ? ` via ${c.relayProtocol}` : ''
  return base + related + relay
}

/** Identity of a transport address, to de-duplicate candidates that arrive more than once. */
export function candidateKey(c: CandidateInfo): string {
  return `${c.type}/${c.protocol}/${hostPort(c.address, c.port)}`
}
