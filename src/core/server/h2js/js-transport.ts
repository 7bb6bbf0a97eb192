// The JS HTTP/2 transport (`signal --transport js`): a standard gRPC server written directly on net.Socket /
// tls.TLSSocket (h2-connection.ts: framing, HPACK, flow control), with the same gRPC layer as the node:http2
// transport (../h2/grpc-router.ts). Why: node:http2 costs ~17 KiB per connection and ~8 KiB per stream in
// nghttp2 and Node's native session (BENCHMARKS.md, "Idle peers"), which put an idle peer above issue 12's
// 20 KiB; here a connection is one small object, its HPACK table and one object per open stream.
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls'
import { peerName } from '../connection-guard.js'
import { waitFor } from '../deadline-wait.js'
import type { ServerTransport, TransportOptions } from '../transport.js'
import { RoutingTransport } from '../h2/grpc-router.js'
import { KEEPALIVE_INTERVAL_MS, KEEPALIVE_TIMEOUT_MS, sessionSettings } from '../h2/http2-settings.js'
import { ErrorCode } from './frame.js'
import { H2Connection, type ConnectionSettings, type StreamHandler } from './h2-connection.js'

/** HPACK's default table size: what clients assume before our SETTINGS, and plenty for gRPC's few headers. */
const HEADER_TABLE_SIZE = 4096

export class JsH2Transport extends RoutingTransport implements ServerTransport {
  /** Emits 'session' with each H2Connection (the connection guard watches it); with TLS, the tls.Server. */
  readonly http2Server: EventEmitter
  readonly #tls: TlsServer | undefined
  readonly #settings: ConnectionSettings
  readonly #connections = new Set<H2Connection>()
  readonly #keepalive: NodeJS.Timeout
  readonly #onStream: StreamHandler = (stream, headers, connection) => this.router.route(stream, headers, connection.peer)

  constructor(options: TransportOptions) {
    super(options.maxReceiveBytes)
    this.#settings = { ...sessionSettings(options), headerTableSize: HEADER_TABLE_SIZE }
    if (options.tls) {
      this.#tls = createTlsServer({ cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ['h2'] }, (socket) => this.#secure(socket))
      // A TLS handshake that fails is the client's problem, not the server's.
      this.#tls.on('tlsClientError', () => {})
      this.http2Server = this.#tls
    } else this.http2Server = new EventEmitter()
    this.#keepalive = setInterval(() => this.#pingAll(), options.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS).unref()
  }

  injectConnection(socket: Socket): void {
    if (this.#tls) this.#tls.emit('connection', socket)
    else this.#open(socket)
  }

  /** GOAWAY to every connection, then the clients close them (as h2-transport.ts's shutdown, for the same reason). */
  async shutdown(deadline: number): Promise<void> {
    clearInterval(this.#keepalive)
    for (const connection of this.#connections) connection.goaway(ErrorCode.NO_ERROR)
    await waitFor(() => this.#connections.size === 0, deadline)
    this.forceShutdown()
  }

  forceShutdown(): void {
    clearInterval(this.#keepalive)
    for (const connection of [...this.#connections]) connection.destroy()
    this.#connections.clear()
  }

  #secure(socket: TLSSocket): void {
    // Only HTTP/2 is served: a client that did not negotiate h2 by ALPN gets nothing.
    if (socket.alpnProtocol !== 'h2') return void socket.destroy()
    this.#open(socket)
  }

  #open(socket: Socket): void {
    const connection = new H2Connection(socket, peerName(socket.remoteAddress, socket.remotePort), this.#settings, this.#onStream)
    this.#connections.add(connection)
    connection.once('close', () => this.#connections.delete(connection))
    this.http2Server.emit('session', connection)
  }

  #pingAll(): void {
    for (const connection of this.#connections) connection.ping(KEEPALIVE_TIMEOUT_MS)
  }
}
