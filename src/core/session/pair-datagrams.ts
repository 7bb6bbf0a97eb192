// The data path beneath werift-ice: werift hands every non-STUN datagram to `onData` from any source and
// without its address (ICE-NOTES pitfalls 5-6), and its send() costs two promises per datagram. Raw
// forwarding (WIRE.md §8) has nothing else to authenticate a datagram, so, like pion in cunīcu, only
// datagrams from the selected pair's remote address on the selected pair's socket may count as the peer's.
//
// PairDatagrams taps each werift protocol (one per local socket or TURN allocation) below werift's own
// dispatch: STUN still goes to werift; everything else is checked here and handed on with a flag saying
// whether it came from the path. Sending to the pair goes straight to the dgram socket (host/srflx pairs)
// or through werift's TURN client (relay pairs).
//
// "From the path" means: on the socket of the nominated pair from its remote address, or on the socket of
// another pair that ICE validated (our check to that remote address was answered with the peer's password).
// The second case is needed because werift's two agents can nominate different pairs of one path (measured
// behind a symmetric NAT: A selects relay→srflx, B selects relay→prflx, and A's data reaches B's host socket
// from A's relay address). pion, in cunīcu, accepts data from any remote candidate it authenticated; a
// validated pair is the same proof here, since werift itself does not authenticate incoming checks and so
// cannot be trusted to say who a peer-reflexive candidate is (ICE-NOTES pitfall 6).
import type { Socket } from 'node:dgram'
import { CandidatePairState, type CandidatePair, type Connection } from 'werift-ice'

/** Called for every non-STUN datagram; `fromPath` is true only for the path's remote address (see above). */
export type DatagramHandler = (datagram: Buffer, fromPath: boolean) => void

/** werift's [host, port]. */
type Address = [string, number]

interface StunProtocolInternals {
  type: string
  transport?: { socket?: Socket; closed?: boolean }
  datagramReceived?: (data: Buffer, addr: Address) => void
  handleStunMessage?: (data: Buffer, addr: Address) => void
  sendData: (data: Buffer, addr: Address) => Promise<void>
}

const STUN_MAGIC_COOKIE = 0x2112a442
const STUN_HEADER_LENGTH = 20

/**
 * RFC 5389 §6 / RFC 7983: a STUN message has its two top bits zero and the magic cookie at bytes 4-7.
 * Anything else is never STUN; the rare datagram that passes still goes through werift's parser, and what
 * that parser refuses comes back to us as data (see #tapStun).
 */
export function mayBeStun(datagram: Buffer): boolean {
  return datagram.length >= STUN_HEADER_LENGTH && (datagram[0]! & 0xc0) === 0 && datagram.readUInt32BE(4) === STUN_MAGIC_COOKIE
}

/** Strips an IPv6 zone ("fe80::1%eth0"), as werift does for the addresses it records. */
function withoutZone(address: string): string {
  const at = address.indexOf('%')
  return at === -1 ? address : address.slice(0, at)
}

function matches(pair: CandidatePair, protocol: object, host: string, port: number): boolean {
  return (pair.protocol as unknown) === protocol && pair.remoteAddr[1] === port && (pair.remoteAddr[0] === host || pair.remoteAddr[0] === withoutZone(host))
}

export class PairDatagrams {
  readonly #connection: Connection
  readonly #tapped = new WeakSet<object>()
  #handler: DatagramHandler = () => {}
  /** While werift parses a STUN-looking datagram: where it came from, in case werift calls it data. */
  #pending?: { protocol: object; host: string; port: number }
  /** The pair the send fields below were computed for. */
  #sendPair?: CandidatePair
  #sendSocket?: Socket
  #sendHost = ''
  #sendPort = 0
  #closed = false
  /** The last validated non-nominated source: data keeps coming from one address, so the scan runs once. */
  #validated?: { protocol: object; host: string; port: number }
  /** Non-STUN datagrams from anywhere but the nominated pair's remote address (spoofed, stray, stale). */
  foreign = 0
  /** Sends that failed (socket errors) or found no usable pair. */
  sendErrors = 0
  readonly #onSent = (err: Error | null) => {
    if (err) this.sendErrors++
  }

  constructor(connection: Connection) {
    this.#connection = connection
    // What werift itself still calls data: STUN-looking datagrams its parser refused (see #tapStun).
    connection.onData.subscribe((data) => {
      const pending = this.#pending
      if (pending) this.#deliver(pending.protocol, data, pending.host, pending.port)
    })
  }

  /** One handler (a hot path: no listener list to copy per datagram). */
  setHandler(handler: DatagramHandler): void {
    this.#handler = handler
  }

  /** Taps the protocol behind a local candidate; idempotent. Call for each gathered candidate. */
  tap(protocol: object): void {
    if (this.#tapped.has(protocol)) return
    this.#tapped.add(protocol)
    const p = protocol as StunProtocolInternals
    if (typeof p.handleStunMessage === 'function') this.#tapTurn(p)
    else if (p.transport?.socket) this.#tapStun(p, p.transport.socket)
  }

  /**
   * One datagram to the nominated pair's remote address. False (and nothing sent) without a pair, after
   * consent expired (RFC 7675; werift's send() silently drops then too), or once closed.
   */
  send(datagram: Uint8Array): boolean {
    if (this.#closed) return false
    const connection = this.#connection
    const pair = connection.nominated
    if (!pair || !(connection as unknown as { canSendApplicationData(): boolean }).canSendApplicationData()) return false
    if (pair !== this.#sendPair) this.#prepareSend(pair)
    const data = Buffer.isBuffer(datagram) ? datagram : Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength)
    if (this.#sendSocket) {
      this.#sendSocket.send(data, this.#sendPort, this.#sendHost, this.#onSent)
    } else {
      ;(pair.protocol as unknown as StunProtocolInternals).sendData(data, pair.remoteAddr as Address).catch(() => this.sendErrors++)
    }
    return true
  }

  close(): void {
    this.#closed = true
    this.#handler = () => {}
  }

  #prepareSend(pair: CandidatePair): void {
    const protocol = pair.protocol as unknown as StunProtocolInternals
    const [host, port] = pair.remoteAddr as Address
    this.#sendPair = pair
    this.#sendHost = host
    this.#sendPort = port
    // A host/srflx pair sends from the agent's own UDP socket; a relay pair needs werift's TURN framing.
    this.#sendSocket = protocol.type === 'stun' && protocol.transport?.socket ? protocol.transport.socket : undefined
  }

  /** A local UDP socket: our listener replaces werift's and gives it only what may be STUN. */
  #tapStun(protocol: StunProtocolInternals, socket: Socket): void {
    const weriftListeners = socket.listeners('message') as ((data: Buffer, rinfo: { address: string; port: number }) => void)[]
    socket.removeAllListeners('message')
    socket.on('message', (data: Buffer, rinfo) => {
      if (!mayBeStun(data)) {
        this.#deliver(protocol, data, rinfo.address, rinfo.port)
        return
      }
      this.#pending = { protocol, host: withoutZone(rinfo.address), port: rinfo.port }
      try {
        for (const listener of weriftListeners) listener.call(socket, data, rinfo)
      } finally {
        this.#pending = undefined
      }
    })
  }

  /** A TURN allocation: datagrams relayed from a peer arrive with that peer's address. */
  #tapTurn(protocol: StunProtocolInternals): void {
    const original = protocol.handleStunMessage!
    protocol.handleStunMessage = (data: Buffer, addr: Address) => {
      if (!mayBeStun(data)) {
        this.#deliver(protocol, data, addr[0], addr[1])
        return
      }
      this.#pending = { protocol, host: addr[0], port: addr[1] }
      try {
        original.call(protocol, data, addr)
      } finally {
        this.#pending = undefined
      }
    }
  }

  #deliver(protocol: object, data: Buffer, host: string, port: number): void {
    if (this.#closed) return
    const fromPath = this.#fromPath(protocol, host, port)
    if (!fromPath) this.foreign++
    this.#handler(data, fromPath)
  }

  #fromPath(protocol: object, host: string, port: number): boolean {
    const connection = this.#connection
    const nominated = connection.nominated
    if (!nominated) return false
    if (matches(nominated, protocol, host, port)) return true
    const last = this.#validated
    if (last && last.protocol === protocol && last.port === port && last.host === host) return true
    for (const pair of connection.candidatePairs) {
      if (pair.state === CandidatePairState.SUCCEEDED && matches(pair, protocol, host, port)) {
        this.#validated = { protocol, host, port }
        return true
      }
    }
    return false
  }
}
