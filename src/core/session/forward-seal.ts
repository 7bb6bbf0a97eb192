// `--seal` framing for forwarded datagrams (both peers cunicu-ts), for apps without encryption of their
// own; raw forwarding (WIRE.md §8, the default) does not use it.
//
// Sealed datagram: FORWARD_MAGIC (8) | counter (8, big-endian) | xsalsa20poly1305(tag 16 | payload)
//   key   = SHA-256("cunicu-ts forward v1" | crypto_box_beforenm(ours, theirs) | controlling ufrag, pwd | controlled ufrag, pwd)
//   nonce = sender role byte (1 controlling, 2 controlled) | 15 zero bytes | counter (8)
// The role byte in the nonce gives each direction its own nonce space (both use one key), and a receiver
// only opens nonces of the peer's role, so its own datagrams reflected back never open. A sliding window
// over the counter refuses replays and measures loss (counters never seen below the highest one).
import { createHash } from 'node:crypto'
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js'
import type { IceRole } from '../keys.js'
import type { IceCredentials } from './credentials.js'

/** "cunicuFW": differs from the path probe's "cunicuPB", so neither ever tries to open the other's datagrams. */
export const FORWARD_MAGIC = new Uint8Array([0x63, 0x75, 0x6e, 0x69, 0x63, 0x75, 0x46, 0x57])
const COUNTER_LENGTH = 8
const TAG_LENGTH = 16
export const FORWARD_OVERHEAD = FORWARD_MAGIC.length + COUNTER_LENGTH + TAG_LENGTH
/** Largest payload: keeps a sealed datagram within one UDP datagram on any path. */
export const MAX_FORWARD_PAYLOAD = 65_507 - FORWARD_OVERHEAD - 36 /* TURN ChannelData / Send indication headroom */
const ROLE_BYTE: Record<IceRole, number> = { controlling: 1, controlled: 2 }
const REPLAY_WINDOW = 4096

/** The key for one ICE agent pair: the envelope key bound to that agent generation's credentials. */
export function forwardKey(boxKey: Uint8Array, role: IceRole, local: IceCredentials, remote: IceCredentials): Uint8Array {
  const [controlling, controlled] = role === 'controlling' ? [local, remote] : [remote, local]
  const hash = createHash('sha256')
  hash.update('cunicu-ts forward v1')
  hash.update(boxKey)
  for (const c of [controlling, controlled]) hash.update(`|${c.ufrag}|${c.pwd}`)
  return new Uint8Array(hash.digest())
}

function nonceFor(role: IceRole, counter: bigint): Uint8Array {
  const nonce = new Uint8Array(24)
  nonce[0] = ROLE_BYTE[role]
  new DataView(nonce.buffer).setBigUint64(16, counter)
  return nonce
}

export function sealForward(key: Uint8Array, role: IceRole, counter: bigint, payload: Uint8Array): Uint8Array {
  const sealed = xsalsa20poly1305(key, nonceFor(role, counter)).encrypt(payload)
  const out = new Uint8Array(FORWARD_MAGIC.length + COUNTER_LENGTH + sealed.length)
  out.set(FORWARD_MAGIC, 0)
  new DataView(out.buffer).setBigUint64(FORWARD_MAGIC.length, counter)
  out.set(sealed, FORWARD_MAGIC.length + COUNTER_LENGTH)
  return out
}

export function isForwardDatagram(datagram: Uint8Array): boolean {
  if (datagram.length < FORWARD_OVERHEAD) return false
  for (let i = 0; i < FORWARD_MAGIC.length; i++) if (datagram[i] !== FORWARD_MAGIC[i]) return false
  return true
}

/** The payload and counter, or undefined when it is not a forward datagram sealed by `senderRole` with `key`. */
export function openForward(key: Uint8Array, senderRole: IceRole, datagram: Uint8Array): { counter: bigint; payload: Uint8Array } | undefined {
  if (!isForwardDatagram(datagram)) return undefined
  const counter = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength).getBigUint64(FORWARD_MAGIC.length)
  try {
    const payload = xsalsa20poly1305(key, nonceFor(senderRole, counter)).decrypt(datagram.subarray(FORWARD_MAGIC.length + COUNTER_LENGTH))
    return { counter, payload }
  } catch {
    return undefined
  }
}

/** Accepts each counter once; counters more than the window below the highest are refused as too old. */
export class ReplayWindow {
  readonly #seen = new Uint8Array(REPLAY_WINDOW)
  #top = -1n
  /** Counters accepted so far. */
  accepted = 0

  /** Highest counter accepted, -1 before the first. */
  get top(): bigint {
    return this.#top
  }

  /** True (and recorded) for a counter not seen before and not too old. */
  accept(counter: bigint): boolean {
    const size = BigInt(REPLAY_WINDOW)
    if (counter > this.#top) {
      // Slots between the old top and the new one now stand for counters not yet seen.
      const gap = counter - this.#top
      if (gap >= size) this.#seen.fill(0)
      else for (let c = this.#top + 1n; c < counter; c++) this.#seen[Number(c % size)] = 0
      this.#top = counter
      this.#seen[Number(counter % size)] = 1
      this.accepted++
      return true
    }
    if (this.#top - counter >= size) return false
    const slot = Number(counter % size)
    if (this.#seen[slot]) return false
    this.#seen[slot] = 1
    this.accepted++
    return true
  }

  /** Counters below the highest one never accepted: lost (or still on their way). */
  get missing(): number {
    return Number(this.#top + 1n) - this.accepted
  }
}
