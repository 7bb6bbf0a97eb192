// Proof that the ICE path reaches the peer we signalled with, not just someone answering STUN: werift
// neither authenticates incoming checks nor filters onData (ICE-NOTES pitfalls 5-6), so each side sends
// a NaCl-sealed request over the connected path and only a sealed response to one of our own ids counts.
//
// Datagram: MAGIC (8) | nonce (24) | secretbox(MAGIC | type (1) | sender role (1) | id (8) | timestamp ms (8))
// keyed with crypto_box_beforenm(ours, theirs), the key both peers already share for envelopes.
// Types: 1 request, 2 response, 3 goodbye (the sender is stopping; its id binds it to this ICE agent's
// credentials, so a goodbye recorded earlier cannot end a later session).
import { createHash } from 'node:crypto'
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js'
// node:crypto's CSPRNG: noble's randomBytes goes through WebCrypto, whose first use loads its modules (~0.7 ms of a start).
import { randomBytes } from 'node:crypto'
import type { IceRole } from '../keys.js'

/** "cunicuPB": the first byte (0x63) also keeps werift from mistaking a probe for STUN (top bits 01). */
export const PROBE_MAGIC = new Uint8Array([0x63, 0x75, 0x6e, 0x69, 0x63, 0x75, 0x50, 0x42])
const NONCE_LENGTH = 24
const TAG_LENGTH = 16
const PLAIN_LENGTH = PROBE_MAGIC.length + 1 + 1 + 8 + 8
export const PROBE_LENGTH = PROBE_MAGIC.length + NONCE_LENGTH + TAG_LENGTH + PLAIN_LENGTH

const TYPE_REQUEST = 1
const TYPE_RESPONSE = 2
const TYPE_GOODBYE = 3
const TYPE_BYTE = { request: TYPE_REQUEST, response: TYPE_RESPONSE, goodbye: TYPE_GOODBYE } as const
const TYPE_NAME: Record<number, ProbePacket['type']> = { [TYPE_REQUEST]: 'request', [TYPE_RESPONSE]: 'response', [TYPE_GOODBYE]: 'goodbye' }
/** A few copies, so one lost datagram does not cost the peer its 5 s of silence detection. */
const GOODBYE_COPIES = 3
const GOODBYE_SEND_BOUND_MS = 250
/**
 * Requests sent in answer to the peer's requests (while our own is unanswered), per run: both sides starting
 * at once answer each other's requests with requests until the first answers land, one or two rounds.
 */
const TRIGGERED_REQUEST_LIMIT = 16
const ROLE_BYTE: Record<IceRole, number> = { controlling: 1, controlled: 2 }

export interface ProbePacket {
  type: 'request' | 'response' | 'goodbye'
  /** Role of the side that sealed it: lets a receiver refuse its own datagrams reflected back to it. */
  from: IceRole
  /** 8 random bytes as 16 hex characters; a response echoes the request's id; a goodbye's is goodbyeId(). */
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
  plain[at++] = TYPE_BYTE[packet.type]
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
  const type = typeByte === undefined ? undefined : TYPE_NAME[typeByte]
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

/**
 * The id of a goodbye from the agent with ufrag `from` to the agent with ufrag `to`: 8 bytes of SHA-256 over
 * both, so it is valid for this pair of ICE agents only (each agent has fresh credentials, WIRE.md §7).
 */
export function goodbyeId(from: string, to: string): string {
  return createHash('sha256').update(`cunicu-ts goodbye\0${from}\0${to}`).digest().subarray(0, 8).toString('hex')
}

export interface PathProbeOptions {
  key: Uint8Array
  /** Our ICE role: stamped on what we send, and refused on what we receive. */
  role: IceRole
  send: (datagram: Uint8Array) => Promise<void>
  /** Without any answer from the peer for this long (it may not be cunicu-ts), the path is unverified. */
  timeoutMs: number
  /** Retransmission interval of our request until it is answered. */
  intervalMs?: number
  /** The ICE ufrags of this agent pair: they bind goodbyes (goodbyeId). Without them goodbyes are ignored. */
  ufrags?: { local: string; remote: string }
  onVerified: (rttMs: number) => void
  onUnverified: (reason: string) => void
  /** The peer said goodbye on this path: it is stopping. */
  onGoodbye?: () => void
  onError?: (message: string) => void
}

type ProbeOutcome = 'probing' | 'verified' | 'unverified'

/**
 * One probe run per ICE agent. start() is called once our agent is connected; only from then on do we send
 * and answer (before it werift drops what we send, so an earlier answer would prove nothing). Verified once
 * the peer answered one of our requests AND we answered one of theirs: a started peer sends a request at once,
 * and a request that reaches us while our own is unanswered is answered with a request of ours, so both sides
 * settle within one round trip of the later one connecting, whichever that is.
 */
export class PathProbe {
  readonly #o: Required<Omit<PathProbeOptions, 'onError' | 'onGoodbye' | 'ufrags'>> & Pick<PathProbeOptions, 'onError' | 'onGoodbye'>
  /** Outstanding request ids → performance.now() when sent. */
  readonly #outstanding = new Map<string, number>()
  readonly #goodbyeIds?: { send: string; accept: string }
  #interval?: NodeJS.Timeout
  #deadline?: NodeJS.Timeout
  #outcome: ProbeOutcome = 'probing'
  #stopped = false
  /** Our request's round trip, once the peer answered it. */
  #rttMs?: number
  /** Whether we answered at least one of the peer's requests since start(). */
  #answeredPeer = false
  #started = false
  #triggered = 0

  constructor(options: PathProbeOptions) {
    this.#o = { intervalMs: 200, ...options }
    if (options.ufrags) {
      const { local, remote } = options.ufrags
      this.#goodbyeIds = { send: goodbyeId(local, remote), accept: goodbyeId(remote, local) }
    }
  }

  /** Verified, or given up as unverified (a later proof can still verify it). */
  get settled(): boolean {
    return this.#outcome !== 'probing'
  }

  start(): void {
    if (this.#stopped || this.#started) return
    this.#started = true
    this.#sendRequest()
    this.#interval = setInterval(() => this.#sendRequest(), this.#o.intervalMs)
    this.#deadline = setTimeout(() => {
      this.#deadline = undefined
      if (this.#outcome !== 'probing') return
      // They answered us but their requests never reached us (one-way loss): still proof in both directions.
      if (this.#rttMs !== undefined) return this.#verify()
      this.#outcome = 'unverified'
      this.#stopRequests()
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
    switch (packet.type) {
      case 'goodbye':
        if (this.#goodbyeIds && packet.id === this.#goodbyeIds.accept) this.#o.onGoodbye?.()
        return true
      case 'request':
        // Not connected yet: werift would drop the answer. The peer retries, and our start() probes it at once.
        if (!this.#started) return true
        this.#send({ type: 'response', from: this.#o.role, id: packet.id, timestamp: Date.now() }, 'answer a path probe')
        this.#answeredPeer = true
        // The peer is connected now, and may be waiting for a request from us (ours may have gone out before
        // it was): ask at once instead of at the next retransmission, unless we already have our answer.
        if (this.#rttMs === undefined && this.#triggered < TRIGGERED_REQUEST_LIMIT) {
          this.#triggered++
          this.#sendRequest()
        }
        this.#settleIfDone()
        return true
      case 'response': {
        const sentAt = this.#outstanding.get(packet.id)
        if (sentAt === undefined || this.#rttMs !== undefined) return true
        this.#rttMs = Math.round(Math.max(performance.now() - sentAt, 0.001) * 1000) / 1000
        this.#stopRequests() // our question is answered; theirs reaches us on their schedule
        this.#settleIfDone()
        return true
      }
    }
  }

  /**
   * Tells the peer we are stopping (a few sealed copies over the path), so it need not wait for silence.
   * Resolves once handed to the agent; never rejects.
   */
  async goodbye(): Promise<void> {
    const ids = this.#goodbyeIds
    if (!ids || this.#stopped || !this.#started) return
    const sends = Array.from({ length: GOODBYE_COPIES }, () =>
      this.#o.send(sealProbe(this.#o.key, { type: 'goodbye', from: this.#o.role, id: ids.send, timestamp: Date.now() })),
    )
    // Handed to the socket within microseconds; the bound only keeps a wedged socket from holding up close().
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.allSettled(sends), new Promise<void>((resolve) => (timer = setTimeout(resolve, GOODBYE_SEND_BOUND_MS)))])
    clearTimeout(timer)
    // werift's send() resolves before Node's dgram has handed the datagram to the kernel (it resolves the
    // address on a later tick); closing the socket right away would cancel it.
    await new Promise((resolve) => setImmediate(resolve))
  }

  /**
   * Verified once they answered us AND we answered them: then both sides have their proof, and a side
   * that exits right after 'verified' never leaves the other one unanswered.
   */
  #settleIfDone(): void {
    if (this.#outcome === 'verified' || this.#rttMs === undefined || !this.#answeredPeer) return
    this.#verify()
  }

  #verify(): void {
    this.#outcome = 'verified'
    this.#stopRequests()
    clearTimeout(this.#deadline)
    this.#deadline = undefined
    this.#outstanding.clear()
    this.#o.onVerified(this.#rttMs!)
  }

  /** Stops sending; later datagrams are ignored. Idempotent. */
  stop(): void {
    this.#stopped = true
    this.#stopRequests()
    clearTimeout(this.#deadline)
    this.#deadline = undefined
    this.#outstanding.clear()
  }

  #sendRequest(): void {
    const id = Buffer.from(randomBytes(8)).toString('hex')
    this.#outstanding.set(id, performance.now())
    this.#send({ type: 'request', from: this.#o.role, id, timestamp: Date.now() }, 'send a path probe')
  }

  #send(packet: ProbePacket, what: string): void {
    this.#o.send(sealProbe(this.#o.key, packet)).catch((err: unknown) => this.#o.onError?.(`could not ${what}: ${(err as Error).message}`))
  }

  #stopRequests(): void {
    clearInterval(this.#interval)
    this.#interval = undefined
  }
}
