// The server's own TCP listener in front of the transport (our HTTP/2 server, node:http2's, or grpc-js,
// which hides its sockets): every accepted socket is counted against --max-connections and
// --max-connections-per-ip (over either: closed at once), must finish the HTTP/2 handshake (client preface +
// SETTINGS) within --handshake-timeout, and is closed with GOAWAY after --idle-timeout without any open
// stream (a Subscribe is an open stream, so subscribers never idle out). Then it is handed to the transport
// (transport.injectConnection; grpc-js's connection injector for that one). A connection is named "ip:port",
// which is also the peer name every transport gives its calls, so per-call limits and this guard agree.
import { createServer, type Server as NetServer, type Socket } from 'node:net'
import { constants as http2Constants } from 'node:http2'
import type { EventEmitter } from 'node:events'

/**
 * What the guard needs of an HTTP/2 session: node:http2's ServerHttp2Session and our own connection
 * (h2js/h2-connection.ts) are both one.
 */
export interface GuardedSession {
  readonly socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined } | undefined
  readonly destroyed: boolean
  readonly closed: boolean
  /** Sends GOAWAY: no streams above `lastStreamId` (default: the last one seen). */
  goaway(code?: number, lastStreamId?: number): void
  /** No new streams; the connection ends once its streams ended. */
  close(): void
  destroy(): void
  /** The client's first SETTINGS arrived: the handshake is complete. */
  once(event: 'remoteSettings', listener: () => void): unknown
  on(event: 'stream', listener: (stream: { once(event: 'close', listener: () => void): unknown }) => void): unknown
}

export interface ConnectionGuardSettings {
  maxConnections: number
  maxConnectionsPerIp: number
  handshakeTimeoutMs: number
  idleTimeoutMs: number
}

export interface ConnectionGuardOptions {
  /**
   * Plain text only: hand a socket to grpc-js once its first bytes arrived, so a connection that never
   * speaks costs a socket, not an HTTP/2 session (Node's HTTP/2 session reads what the socket buffered).
   * Not with TLS: the TLS socket would not see bytes already read from the plain one.
   */
  injectOnFirstData: boolean
}

export type ConnectionRefusal = 'max_connections' | 'max_connections_per_ip'
/** Why the server closed a connection; `client` when the client closed it. */
export type ConnectionCloseReason = 'handshake_timeout' | 'idle' | 'auth_failures' | 'drain' | 'client'

export interface ConnectionGuardEvents {
  opened(peer: string): void
  refused(peer: string, reason: ConnectionRefusal): void
  closed(peer: string, reason: ConnectionCloseReason, openMs: number): void
}

interface Guarded {
  peer: string
  ip: string
  socket: Socket
  session: GuardedSession | undefined
  openedAt: number
  /** Open HTTP/2 streams (calls). */
  streams: number
  handshakeTimer: NodeJS.Timeout | undefined
  idleTimer: NodeJS.Timeout | undefined
  /** Set when the server decided to close it: the reason reported once the socket is gone. */
  closing: ConnectionCloseReason | undefined
}

/** How long a connection told to go away (GOAWAY) may take to finish its streams before it is cut. */
const GOAWAY_GRACE_MS = 1000

/**
 * Closes the connection's file descriptor now. Once grpc-js's HTTP/2 session has taken over a plain socket
 * (it consumes the socket's handle), destroying the socket alone leaves the descriptor open: the session
 * must be destroyed too.
 */
function cut(connection: Guarded): void {
  connection.session?.destroy()
  connection.socket.destroy()
}

export function peerName(address: string | undefined, port: number | undefined): string {
  return `${address ?? 'unknown'}:${port ?? 0}`
}

export class ConnectionGuard {
  readonly #listener: NetServer
  readonly #connections = new Map<string, Guarded>()
  readonly #perIp = new Map<string, number>()
  #accepting = true

  constructor(
    private readonly settings: ConnectionGuardSettings,
    private readonly inject: (socket: Socket) => void,
    private readonly events: ConnectionGuardEvents,
    private readonly options: ConnectionGuardOptions = { injectOnFirstData: false },
  ) {
    this.#listener = createServer({ noDelay: true }, (socket) => this.#accept(socket))
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#listener.once('error', reject)
      this.#listener.listen({ host, port, exclusive: true }, () => {
        this.#listener.off('error', reject)
        const address = this.#listener.address()
        resolve(typeof address === 'object' && address ? address.port : port)
      })
    })
  }

  /** The transport's HTTP/2 server behind the injector: its sessions tell when a handshake completed and streams run. */
  watchSessions(http2Server: EventEmitter): void {
    http2Server.on('session', (session: GuardedSession) => this.#session(session))
  }

  /** Open connections (accepted and not yet closed). */
  get size(): number {
    return this.#connections.size
  }

  /** Sends GOAWAY to one connection and closes it once its streams ended (or after a grace period). */
  close(peer: string, reason: ConnectionCloseReason): void {
    const connection = this.#connections.get(peer)
    if (!connection || connection.closing) return
    connection.closing = reason
    this.#clearTimers(connection)
    const { session } = connection
    if (!session || session.destroyed) return void cut(connection)
    try {
      session.goaway(reason === 'auth_failures' ? http2Constants.NGHTTP2_ENHANCE_YOUR_CALM : http2Constants.NGHTTP2_NO_ERROR)
      session.close()
    } catch {
      cut(connection)
      return
    }
    // A shed connection gets no grace: every call it still has in flight is the abuse being shed.
    if (reason === 'auth_failures') return void setImmediate(() => cut(connection))
    // A client that does not close its side must not hold the socket.
    setTimeout(() => cut(connection), GOAWAY_GRACE_MS).unref()
  }

  /** Rolling restart, step one: no new connections (the listening socket closes). */
  stopAccepting(): Promise<void> {
    this.#accepting = false
    return new Promise((resolve) => this.#listener.close(() => resolve()))
  }

  /** Rolling restart, step two: GOAWAY on every connection; streams already open may finish. */
  goAwayAll(): void {
    for (const connection of this.#connections.values()) {
      if (connection.closing) continue
      connection.closing = 'drain'
      this.#clearTimers(connection)
      if (!connection.session) cut(connection)
      else {
        try {
          // The largest stream id: "stop opening streams", while every stream already sent is still served.
          connection.session.goaway(http2Constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1)
        } catch {
          cut(connection)
        }
      }
    }
  }

  /** Cuts every connection at once (end of a drain, or a failed start). */
  destroyAll(): void {
    this.#accepting = false
    if (this.#listener.listening) this.#listener.close()
    for (const connection of this.#connections.values()) {
      connection.closing ??= 'drain'
      cut(connection)
    }
  }

  #accept(socket: Socket): void {
    const peer = peerName(socket.remoteAddress, socket.remotePort)
    const ip = socket.remoteAddress ?? 'unknown'
    // Errors of a socket we close (ECONNRESET and the like) are the normal end of hostile connections.
    socket.on('error', () => {})
    const refusal: ConnectionRefusal | undefined = !this.#accepting || this.#connections.size >= this.settings.maxConnections
      ? 'max_connections'
      : (this.#perIp.get(ip) ?? 0) >= this.settings.maxConnectionsPerIp
        ? 'max_connections_per_ip'
        : undefined
    if (refusal) {
      socket.destroy()
      this.events.refused(peer, refusal)
      return
    }
    const connection: Guarded = {
      peer,
      ip,
      socket,
      session: undefined,
      openedAt: performance.now(),
      streams: 0,
      handshakeTimer: undefined,
      idleTimer: undefined,
      closing: undefined,
    }
    connection.handshakeTimer = setTimeout(() => {
      connection.handshakeTimer = undefined
      connection.closing ??= 'handshake_timeout'
      cut(connection)
    }, this.settings.handshakeTimeoutMs)
    this.#connections.set(peer, connection)
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1)
    socket.once('close', () => this.#forget(connection))
    this.events.opened(peer)
    if (!this.options.injectOnFirstData) return this.inject(socket)
    socket.once('readable', () => {
      if (connection.closing || socket.destroyed) return
      // 'readable' with nothing buffered is the end of the stream: the client left without a word.
      if (socket.readableLength === 0) return void socket.destroy()
      this.inject(socket)
    })
  }

  #session(session: GuardedSession): void {
    const connection = this.#connections.get(peerName(session.socket?.remoteAddress, session.socket?.remotePort))
    if (!connection || connection.session) return
    connection.session = session
    session.once('remoteSettings', () => {
      if (connection.handshakeTimer) clearTimeout(connection.handshakeTimer)
      connection.handshakeTimer = undefined
      this.#armIdle(connection)
    })
    session.on('stream', (stream) => {
      connection.streams++
      if (connection.idleTimer) clearTimeout(connection.idleTimer)
      connection.idleTimer = undefined
      stream.once('close', () => {
        connection.streams--
        this.#armIdle(connection)
      })
    })
  }

  #armIdle(connection: Guarded): void {
    if (connection.streams > 0 || connection.closing || connection.handshakeTimer) return
    if (connection.idleTimer) clearTimeout(connection.idleTimer)
    connection.idleTimer = setTimeout(() => {
      connection.idleTimer = undefined
      if (connection.streams === 0) this.close(connection.peer, 'idle')
    }, this.settings.idleTimeoutMs)
  }

  #clearTimers(connection: Guarded): void {
    if (connection.handshakeTimer) clearTimeout(connection.handshakeTimer)
    if (connection.idleTimer) clearTimeout(connection.idleTimer)
    connection.handshakeTimer = undefined
    connection.idleTimer = undefined
  }

  #forget(connection: Guarded): void {
    this.#clearTimers(connection)
    if (this.#connections.get(connection.peer) === connection) this.#connections.delete(connection.peer)
    const left = (this.#perIp.get(connection.ip) ?? 1) - 1
    if (left > 0) this.#perIp.set(connection.ip, left)
    else this.#perIp.delete(connection.ip)
    this.events.closed(connection.peer, connection.closing ?? 'client', performance.now() - connection.openedAt)
  }
}
