// Proof that the ICE path reaches the peer we signalled with, not just someone answering STUN: werift
// neither authenticates incoming checks nor filters onData (ICE-NOTES pitfalls 5-6), so each side sends
// a NaCl-sealed request over the connected path and only a sealed response to one of our own ids counts.
//
// Datagram: MAGIC (8) | nonce (24) | secretbox(MAGIC | type (1) | sender role (1) | id (8) | timestamp ms (8))
// keyed with crypto_box_beforenm(ours, theirs), the key both peers already share for envelopes.
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js'
import { randomBytes } from '@noble/ciphers/utils.js'
import type { IceRole } from '../keys.js'

/** "cunicuPB": the first byte (0x63) also keeps werift from mistaking a probe for STUN (top bits 01). */
export const PROBE_MAGIC = new Uint8Array([0x63, 0x75, 0x6e, 0x69, 0x63, 0x75, 0x50, 0x42])
const NONCE_LENGTH = 24
const TAG_LENGTH = 16
const PLAIN_LENGTH = PROBE_MAGIC.length + 1 + 1 + 8 + 8
export const PROBE_LENGTH = PROBE_MAGIC.length + NONCE_LENGTH + TAG_LENGTH + PLAIN_LENGTH

const TYPE_REQUEST = 1
const TYPE_RESPONSE = 2
const ROLE_BYTE: Record<IceRole, number> = { controlling: 1, controlled: 2 }

export interface ProbePacket {
  type: 'request' | 'response'
  /** Role of the side that sealed it: lets a receiver refuse its own datagrams reflected back to it. */
  from: IceRole
  /** 8 random bytes as 16 hex characters; a response echoes the request's id. */
  id: string
  /** Sender's clock, milliseconds since the epoch (informational). */
  timestamp: number
}

function startsWithMagic(bytes: Uint8Array): boolean {
  return PROBE_MAGIC.every((b, i) => bytes[i] === b)
}

export function sealProbe(key: Uint8Array, packet: ProbePacket, nonce: Uint8Array = randomBytes(NONCE_LENGTH)): Uint8Array {
  const plain = new Uint8Array(PLAIN_LENGTH)
  const view = new DataView(plain.buffer)
  plain.set(PROBE_MAGIC, 0)
  let at = PROBE_MAGIC.length
  plain[at++] = packet.type === 'request' ? TYPE_REQUEST : TYPE_RESPONSE
  plain[at++] = ROLE_BYTE[packet.from]
  plain.set(Buffer.from(packet.id, 'hex').subarray(0, 8), at)
  at += 8
  view.setBigUint64(at, BigInt(Math.max(0, Math.floor(packet.timestamp))))
  const sealed = xsalsa20poly1305(key, nonce).encrypt(plain)
  const out = new Uint8Array(PROBE_LENGTH)
  out.set(PROBE_MAGIC, 0)
  out.set(nonce, PROBE_MAGIC.length)
  out.set(sealed, PROBE_MAGIC.length + NONCE_LENGTH)
  return out
}

/** The probe in a datagram, or undefined for anything else: wrong size or magic, tampered, sealed with another key. */
export function openProbe(key: Uint8Array, datagram: Uint8Array): ProbePacket | undefined {
  if (datagram.length !== PROBE_LENGTH || !startsWithMagic(datagram)) return undefined
  const nonce = datagram.subarray(PROBE_MAGIC.length, PROBE_MAGIC.length + NONCE_LENGTH)
  let plain: Uint8Array
  try {
    plain = xsalsa20poly1305(key, nonce).decrypt(datagram.subarray(PROBE_MAGIC.length + NONCE_LENGTH))
  } catch {
    return undefined
  }
  if (plain.length !== PLAIN_LENGTH || !startsWithMagic(plain)) return undefined
  let at = PROBE_MAGIC.length
  const typeByte = plain[at++]
  const roleByte = plain[at++]
  const type = typeByte === TYPE_REQUEST ? 'request' : typeByte === TYPE_RESPONSE ? 'response' : undefined
  const from = roleByte === ROLE_BYTE.controlling ? 'controlling' : roleByte === ROLE_BYTE.controlled ? 'controlled' : undefined
  if (!type || !from) return undefined
  const id = Buffer.from(plain.subarray(at, at + 8)).toString('hex')
  at += 8
  const timestamp = Number(new DataView(plain.buffer, plain.byteOffset, plain.byteLength).getBigUint64(at))
  return { type, from, id, timestamp }
}

/** Whether a datagram is a path probe sealed with this key (ours reflected back included): never app data. */
export function isProbe(key: Uint8Array, datagram: Uint8Array): boolean {
  return datagram.length === PROBE_LENGTH && startsWithMagic(datagram) && openProbe(key, datagram) !== undefined
}

export interface PathProbeOptions {
  key: Uint8Array
  /** Our ICE role: stamped on what we send, and refused on what we receive. */
  role: IceRole
  send: (datagram: Uint8Array) => Promise<void>
  timeoutMs: number
  intervalMs?: number
  onVerified: (rttMs: number) => void
  onUnverified: (reason: string) => void
  onError?: (message: string) => void
}

/**
 * One probe run per ICE agent. handle() answers valid requests at any time (also before start() and after
 * verification, since the peer's probe runs on its own schedule); start() sends our requests.
 */
export class PathProbe {
  readonly #o: Required<Omit<PathProbeOptions, 'onError'>> & Pick<PathProbeOptions, 'onError'>
  /** Outstanding request ids → performance.now() when sent. */
  readonly #outstanding = new Map<string, number>()
  #interval?: NodeJS.Timeout
  #deadline?: NodeJS.Timeout
  #settled = false
  #stopped = false
  /** Our request's round trip, once the peer answered it. */
  #rttMs?: number
  /** Whether we answered at least one of the peer's requests since start(). */
  #answeredPeer = false
  #started = false

  constructor(options: PathProbeOptions) {
    this.#o = { intervalMs: 200, ...options }
  }

  get settled(): boolean {
    return this.#settled
  }

  start(): void {
    if (this.#stopped || this.#settled || this.#started) return
    this.#started = true
    this.#sendRequest()
    this.#interval = setInterval(() => this.#sendRequest(), this.#o.intervalMs)
    this.#deadline = setTimeout(() => {
      if (this.#settled) return
      this.#finish()
      // They answered us but never probed us themselves: still proof in both directions.
      if (this.#rttMs !== undefined) return this.#o.onVerified(this.#rttMs)
      const seconds = this.#o.timeoutMs % 1000 === 0 ? `${this.#o.timeoutMs / 1000} s` : `${this.#o.timeoutMs} ms`
      this.#o.onUnverified(
        `the peer did not answer path probes within ${seconds}: it may not be cunicu-ts; the ICE path is connected but unverified`,
      )
    }, this.#o.timeoutMs)
  }

  /** Feeds one datagram from the agent; true when it was a valid probe. Never throws. */
  handle(datagram: Uint8Array): boolean {
    if (this.#stopped) return false
    const packet = openProbe(this.#o.key, datagram)
    // Our own role on an incoming probe means it is one of ours reflected back: not the peer's.
    if (!packet || packet.from === this.#o.role) return false
    if (packet.type === 'request') {
      const response = sealProbe(this.#o.key, { type: 'response', from: this.#o.role, id: packet.id, timestamp: Date.now() })
      this.#o.send(response).catch((err: unknown) => this.#o.onError?.(`could not answer a path probe: ${(err as Error).message}`))
      // Before start() our agent has no nominated pair yet, and werift silently drops what we send then:
      // such an answer may never arrive, so only answers sent once connected count.
      if (this.#started) this.#answeredPeer = true
      this.#settleIfDone()
      return true
    }
    const sentAt = this.#outstanding.get(packet.id)
    if (sentAt === undefined || this.#rttMs !== undefined) return true
    this.#rttMs = Math.round(Math.max(performance.now() - sentAt, 0.001) * 1000) / 1000
    clearInterval(this.#interval) // our question is answered; keep waiting (until the deadline) for theirs
    this.#settleIfDone()
    return true
  }

  /**
   * Verified once they answered us AND we answered them: then both sides have their proof, and a side
   * that exits right after 'verified' never leaves the other one unanswered.
   */
  #settleIfDone(): void {
    if (this.#settled || this.#rttMs === undefined || !this.#answeredPeer) return
    this.#finish()
    this.#o.onVerified(this.#rttMs)
  }

  /** Stops sending; later datagrams are ignored. Idempotent. */
  stop(): void {
    this.#stopped = true
    this.#finish()
  }

  #sendRequest(): void {
    const id = Buffer.from(randomBytes(8)).toString('hex')
    this.#outstanding.set(id, performance.now())
    const request = sealProbe(this.#o.key, { type: 'request', from: this.#o.role, id, timestamp: Date.now() })
    this.#o.send(request).catch((err: unknown) => this.#o.onError?.(`could not send a path probe: ${(err as Error).message}`))
  }

  #finish(): void {
    this.#settled = true
    clearInterval(this.#interval)
    clearTimeout(this.#deadline)
    this.#interval = undefined
    this.#deadline = undefined
    this.#outstanding.clear()
  }
}
