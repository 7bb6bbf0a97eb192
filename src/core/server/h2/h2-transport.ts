// The node:http2 transport (`signal --transport h2`; the JS transport in ../h2js/ is the other HTTP/2 one,
// grpc-js the reference): a standard gRPC server for every client (grpc-go, the gRPC C core, grpc-js),
// written on node:http2 directly because grpc-js's per-call machinery cost more than our whole service
// (issue 12: ~15-20 µs of ~60 µs per envelope). The gRPC layer itself is grpc-router.ts, shared with ../h2js/.
import type { Socket } from 'node:net'
import {
  constants,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2'
import { waitFor } from '../deadline-wait.js'
import type { ServerTransport, TransportOptions } from '../transport.js'
import { RoutingTransport } from './grpc-router.js'
import { KEEPALIVE_INTERVAL_MS, KEEPALIVE_TIMEOUT_MS, sessionSettings } from './http2-settings.js'

export { PUBLISH_PATH, SUBSCRIBE_PATH } from './grpc-router.js'

/** The connection name ("ip:port") kept on each session: computed once, read per call. */
const PEER = Symbol('peer')
type NamedSession = ServerHttp2Session & { [PEER]?: string }

export class H2Transport extends RoutingTransport implements ServerTransport {
  readonly http2Server: Http2Server | Http2SecureServer
  readonly #sessions = new Set<ServerHttp2Session>()
  readonly #keepalive: NodeJS.Timeout

  constructor(options: TransportOptions) {
    super(options.maxReceiveBytes)
    // maxDeflateDynamicTableSize 0: our response headers are a handful of constants; a dynamic table per
    // connection to compress them costs memory on every idle peer for a few bytes per call.
    // maxSessionMemory (MB) bounds what one connection may make nghttp2 and Node hold; the subscriber
    // queues write only while a stream drains, so a client that reads never comes near it.
    const common = { settings: sessionSettings(options), maxSessionMemory: 64, maxDeflateDynamicTableSize: 0 }
    this.http2Server = options.tls
      ? createSecureServer({ ...common, cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ['h2'], allowHTTP1: false })
      : createServer(common)
    this.http2Server.on('session', (session: ServerHttp2Session) => this.#session(session))
    this.http2Server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.#stream(stream, headers))
    // A TLS handshake that fails is the client's problem, not the server's.
    this.http2Server.on('tlsClientError', () => {})
    this.#keepalive = setInterval(() => this.#pingAll(), options.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS).unref()
  }

  injectConnection(socket: Socket): void {
    this.http2Server.emit('connection', socket)
  }

  /**
   * The final GOAWAY (the last stream we processed), then the clients close their connections themselves:
   * what a drain wrote reaches them before the socket goes. Not session.close(), which would cut a
   * connection as soon as its streams ended, before a slow (or stopped) client read its statuses.
   */
  async shutdown(deadline: number): Promise<void> {
    clearInterval(this.#keepalive)
    this.http2Server.close()
    for (const session of this.#sessions) {
      if (session.closed || session.destroyed) continue
      try {
        session.goaway(constants.NGHTTP2_NO_ERROR)
      } catch {
        session.destroy()
      }
    }
    await waitFor(() => [...this.#sessions].every((s) => s.destroyed), deadline)
    this.forceShutdown()
  }

  forceShutdown(): void {
    clearInterval(this.#keepalive)
    this.http2Server.close()
    for (const session of this.#sessions) session.destroy()
    this.#sessions.clear()
  }

  #session(session: NamedSession): void {
    const socket = session.socket
    session[PEER] = `${socket?.remoteAddress ?? 'unknown'}:${socket?.remotePort ?? 0}`
    this.#sessions.add(session)
    session.on('error', ignore) // a client's protocol error ends its session; nothing for us to do
    session.once('close', () => this.#sessions.delete(session))
  }

  #pingAll(): void {
    for (const session of this.#sessions) {
      if (session.destroyed || session.closed) continue
      const timer = setTimeout(() => session.destroy(), KEEPALIVE_TIMEOUT_MS).unref()
      try {
        session.ping((err) => {
          clearTimeout(timer)
          if (err) session.destroy()
        })
      } catch {
        clearTimeout(timer)
      }
    }
  }

  #stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    this.router.route(stream, headers, (stream.session as NamedSession | undefined)?.[PEER] ?? 'unknown:0')
  }
}

function ignore(): void {}
