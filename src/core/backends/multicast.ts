// multicast://GROUP:PORT?interface=NAME&loopback=true (WIRE.md §6): no server at all. Every envelope is
// one UDP datagram holding the serialized Envelope, sent to the group; every member receives every
// datagram and the SubscriptionsRegistry keeps only those addressed to a key we subscribed.
// One socket per backend, joined to the group from the start: subscribing is local bookkeeping only.
import { createSocket, type Socket } from 'node:dgram'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { Envelope } from '../../gen/signaling/signaling.js'
import { BackendError, type BackendFactory } from '../backend.js'
import type { PublicKey } from '../keys.js'
import { EnvelopeBackend } from './envelope-backend.js'

/** Largest UDP payload over IPv4; an envelope above it cannot be one datagram. */
const MAX_DATAGRAM = 65507

export interface MulticastConfig {
  group: string
  port: number
  family: 4 | 6
  /** The local address (IPv4) or "::%NAME"/IPv6 address that picks the interface; undefined: the OS's choice. */
  interfaceAddress: string | undefined
  loopback: boolean
}

/** Parses and checks a multicast:// URL; throws BackendError with an actionable message. */
export function parseMulticastUrl(url: URL): MulticastConfig {
  const text = url.href
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  const family = isIP(host)
  if (family === 0) throw new BackendError(`backend ${text}: "${host}" is not an IP multicast group (e.g. multicast://239.0.0.1:9999 or multicast://[ff02::1:c]:9999)`)
  const multicast = family === 4 ? (Number(host.split('.')[0]) & 0xf0) === 0xe0 : /^ff/i.test(host)
  if (!multicast) throw new BackendError(`backend ${text}: ${host} is not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)`)
  const port = Number(url.port)
  if (!url.port || !Number.isInteger(port) || port < 1 || port > 65535) throw new BackendError(`backend ${text}: a port is required, e.g. multicast://${url.host}:9999`)
  const loopbackParam = url.searchParams.get('loopback')
  if (loopbackParam !== null && !['true', 'false', '1', '0', ''].includes(loopbackParam)) {
    throw new BackendError(`backend ${text}: loopback must be true or false, got "${loopbackParam}"`)
  }
  for (const name of url.searchParams.keys()) {
    if (name !== 'interface' && name !== 'loopback') throw new BackendError(`backend ${text}: unknown parameter "${name}" (known: interface, loopback)`)
  }
  const iface = url.searchParams.get('interface') || undefined
  return {
    group: host,
    port,
    family: family as 4 | 6,
    interfaceAddress: iface === undefined ? undefined : resolveInterface(iface, family as 4 | 6, text),
    loopback: loopbackParam === 'true' || loopbackParam === '1' || loopbackParam === '',
  }
}

/** An interface name becomes its address of the group's family; an IP literal is taken as is. */
function resolveInterface(name: string, family: 4 | 6, text: string): string {
  if (isIP(name.replace(/%.*$/, '')) !== 0) {
    if (isIP(name.replace(/%.*$/, '')) !== family) throw new BackendError(`backend ${text}: interface address ${name} is not IPv${family} like the group`)
    return name
  }
  const all = networkInterfaces()
  const addresses = all[name]
  if (!addresses) throw new BackendError(`backend ${text}: no network interface "${name}" (have: ${Object.keys(all).join(', ') || 'none'})`)
  if (family === 6) {
    // IPv6 names the interface by its scope: "::%eth0" (libuv turns it into the interface index).
    return `::%${name}`
  }
  const v4 = addresses.find((a) => a.family === 'IPv4')
  if (!v4) throw new BackendError(`backend ${text}: interface "${name}" has no IPv4 address for group ${text}`)
  return v4.address
}

export class MulticastBackend extends EnvelopeBackend {
  readonly type = 'multicast' as const
  readonly config: MulticastConfig
  readonly #socket: Socket
  readonly #ready: Promise<void>
  #dropped = 0

  constructor(url: URL | string) {
    const parsed = typeof url === 'string' ? new URL(url) : url
    super(parsed.href)
    this.config = parseMulticastUrl(parsed)
    const { family, port, group, interfaceAddress, loopback } = this.config
    // reuseAddr: several processes (or backends in one process) share the group's port on one host.
    this.#socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6', reuseAddr: true })
    this.#socket.on('message', (datagram) => this.#onDatagram(datagram))
    this.#ready = new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => reject(new BackendError(`backend ${this.url}: cannot join ${group}:${port}: ${err.message}`))
      this.#socket.once('error', fail)
      this.#socket.bind(port, family === 4 ? '0.0.0.0' : '::', () => {
        try {
          this.#socket.addMembership(group, interfaceAddress)
          // Pin outgoing datagrams to the interface too, or the OS would pick one by its routes.
          if (interfaceAddress !== undefined) this.#socket.setMulticastInterface(interfaceAddress)
          this.#socket.setMulticastLoopback(loopback)
        } catch (err) {
          return fail(err as Error)
        }
        this.#socket.off('error', fail)
        // After setup a socket error (e.g. an interface that went away) is reported, never thrown.
        this.#socket.on('error', (err) => this.status.emit({ state: 'reconnecting', backend: this.url, reason: err.message, retryInMs: 0 }))
        this.status.emit({ state: 'connected', backend: this.url })
        resolve()
      })
    })
    // Failure surfaces on subscribe/publish; an unobserved rejection must not crash the process first.
    this.#ready.catch(() => {})
  }

  /** Datagrams on the port that were not envelopes: counted and dropped. */
  get droppedDatagrams(): number {
    return this.#dropped
  }

  protected async subscribeTransport(_ours: PublicKey): Promise<void> {
    await this.#ready
  }

  protected async unsubscribeTransport(_ours: PublicKey): Promise<void> {}

  protected async publishEnvelope(envelope: Envelope): Promise<void> {
    await this.#ready
    const bytes = Envelope.encode(envelope).finish()
    if (bytes.length > MAX_DATAGRAM) throw new BackendError(`backend ${this.url}: envelope is ${bytes.length} bytes, over the ${MAX_DATAGRAM}-byte datagram limit`)
    await new Promise<void>((resolve, reject) =>
      this.#socket.send(bytes, this.config.port, this.config.group, (err) =>
        err ? reject(new BackendError(`backend ${this.url}: send to ${this.config.group}:${this.config.port} failed: ${err.message}`)) : resolve(),
      ),
    )
  }

  protected async closeTransport(): Promise<void> {
    await this.#ready.catch(() => {})
    await new Promise<void>((resolve) => {
      try {
        this.#socket.close(() => resolve())
      } catch {
        resolve() // never bound or already closed
      }
    })
  }

  #onDatagram(datagram: Buffer): void {
    let envelope: Envelope
    try {
      envelope = Envelope.decode(datagram)
    } catch {
      this.#dropped++
      return
    }
    // Anyone on the port can send anything: only well-formed envelopes go on to the registry.
    if (envelope.recipient.length !== 32 || envelope.sender.length !== 32) {
      this.#dropped++
      return
    }
    this.receive(envelope, datagram.length)
  }
}

/** The registry's entry point (backends/index.ts). */
export const createBackend: BackendFactory = (url) => new MulticastBackend(url)
