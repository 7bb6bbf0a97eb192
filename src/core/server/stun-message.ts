// The part of STUN (RFC 5389) a Binding server needs: recognise a Binding request, and build the success
// response that tells the client its server-reflexive address (XOR-MAPPED-ADDRESS, §15.2), with
// MAPPED-ADDRESS for RFC 3489-era clients and a FINGERPRINT (§15.5) so it is told apart from other
// protocols multiplexed on the client's port (ICE checks, WireGuard).
import { isIPv4, isIPv6 } from 'node:net'
import { crc32 } from 'node:zlib'

export const MAGIC_COOKIE = 0x2112a442
const HEADER_LENGTH = 20
const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_MAPPED_ADDRESS = 0x0001
const ATTR_XOR_MAPPED_ADDRESS = 0x0020
const ATTR_SOFTWARE = 0x8022
const ATTR_FINGERPRINT = 0x8028
const FINGERPRINT_XOR = 0x5354554e
const SOFTWARE = Buffer.from('cunicu-ts signal')

export type StunParse = { kind: 'binding-request'; transactionId: Buffer } | { kind: 'not-binding-request'; reason: string }

/** Whether `datagram` is an RFC 5389 Binding request, and its transaction id. */
export function parseBindingRequest(datagram: Buffer): StunParse {
  if (datagram.length < HEADER_LENGTH) return { kind: 'not-binding-request', reason: 'shorter than a STUN header' }
  const type = datagram.readUInt16BE(0)
  const length = datagram.readUInt16BE(2)
  if ((type & 0xc000) !== 0) return { kind: 'not-binding-request', reason: 'not STUN (first two bits set)' }
  if (datagram.readUInt32BE(4) !== MAGIC_COOKIE) return { kind: 'not-binding-request', reason: 'no RFC 5389 magic cookie' }
  if (length % 4 !== 0 || length !== datagram.length - HEADER_LENGTH) return { kind: 'not-binding-request', reason: 'length field does not match the datagram' }
  if (type !== BINDING_REQUEST) return { kind: 'not-binding-request', reason: `message type 0x${type.toString(16).padStart(4, '0')} is not a Binding request` }
  return { kind: 'binding-request', transactionId: Buffer.from(datagram.subarray(8, HEADER_LENGTH)) }
}

/** The Binding success response telling the client its address as this server saw it. */
export function bindingSuccess(transactionId: Buffer, address: string, port: number): Buffer {
  const family = isIPv4(address) ? 0x01 : isIPv6(address) ? 0x02 : 0
  if (family === 0) throw new RangeError(`not an IP address: ${address}`)
  const raw = addressBytes(address, family)
  const xorKey = Buffer.alloc(16)
  xorKey.writeUInt32BE(MAGIC_COOKIE, 0)
  transactionId.copy(xorKey, 4)
  const xored = Buffer.from(raw.map((b, i) => b ^ xorKey[i]!))
  const attribute = (type: number, value: Buffer): Buffer => {
    const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4)
    padded.writeUInt16BE(type, 0)
    padded.writeUInt16BE(value.length, 2)
    value.copy(padded, 4)
    return padded
  }
  const addressValue = (portValue: number, bytes: Buffer): Buffer => {
    const value = Buffer.alloc(4 + bytes.length)
    value.writeUInt8(family, 1)
    value.writeUInt16BE(portValue, 2)
    bytes.copy(value, 4)
    return value
  }
  const body = Buffer.concat([
    attribute(ATTR_XOR_MAPPED_ADDRESS, addressValue(port ^ (MAGIC_COOKIE >>> 16), xored)),
    attribute(ATTR_MAPPED_ADDRESS, addressValue(port, raw)),
    attribute(ATTR_SOFTWARE, SOFTWARE),
  ])
  const header = Buffer.alloc(HEADER_LENGTH)
  header.writeUInt16BE(BINDING_SUCCESS, 0)
  // The length covers the FINGERPRINT attribute too, as it must when the CRC is computed (§15.5).
  header.writeUInt16BE(body.length + 8, 2)
  header.writeUInt32BE(MAGIC_COOKIE, 4)
  transactionId.copy(header, 8)
  const unsigned = Buffer.concat([header, body])
  const fingerprint = Buffer.alloc(4)
  fingerprint.writeUInt32BE((crc32(unsigned) ^ FINGERPRINT_XOR) >>> 0, 0)
  return Buffer.concat([unsigned, attribute(ATTR_FINGERPRINT, fingerprint)])
}

function addressBytes(address: string, family: number): Buffer {
  if (family === 0x01) return Buffer.from(address.split('.').map(Number))
  // IPv6: expand "::" and an embedded IPv4 tail into 8 groups.
  let text = address
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number]
    text = text.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.split('::') as [string, string | undefined]
  const headGroups = head ? head.split(':') : []
  const tailGroups = tail ? tail.split(':') : []
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
  const bytes = Buffer.alloc(16)
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), 2 * i))
  return bytes
}
