// What a transport (our own HTTP/2 server in h2js/, our gRPC layer on node:http2 in h2/, or grpc-js) and
// the signaling service say to each other. The service (signaling-server.ts) holds every rule: limits, auth, counters, logs, topics,
// cluster; a transport only moves bytes and statuses. Frames here are gRPC messages with their 5-byte
// prefix, so the HTTP/2 transports forward a publish's bytes to subscribers exactly as they came.
import type { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { Server, status } from '@grpc/grpc-js'
import type { BuildInfo } from '../../gen/common.js'
import type { FrameSink } from './subscriber-queue.js'
import type { SubscribeRequest } from './wire-service.js'

export type TransportName = 'h2' | 'js' | 'grpc-js'
export const TRANSPORTS: readonly TransportName[] = ['js', 'h2', 'grpc-js']

export interface CallStatus {
  code: status
  details: string
}

/** One Subscribe stream as the service sees it, whichever transport carries it. */
export interface SubscriberStream extends FrameSink {
  /** Bytes the transport still holds for the client (a drain waits for zero). */
  readonly writableLength: number
  /** Ends the call with this status. */
  fail(code: status, details: string): void
  /** `leave` runs when the stream ends for any reason, possibly more than once (it must be idempotent). */
  onEnd(leave: () => void): void
}

/** The Signaling service's methods as the service implements them for every transport. */
export interface SignalingHandlers {
  /** One Envelope message (`frame`, with its prefix) from `peer`: undefined when accepted, else the status. */
  publish(frame: Buffer, peer: string): CallStatus | undefined
  /** Admits or refuses (`stream.fail`) a subscription; `proof` is the auth metadata value, if any. */
  subscribe(stream: SubscriberStream, request: SubscribeRequest, proof: string | undefined, peer: string): void
  buildInfo(): BuildInfo
}

export interface TransportOptions {
  /** Largest request message accepted (RESOURCE_EXHAUSTED above). */
  maxReceiveBytes: number
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxConcurrentStreams: number
  tls?: { cert: Buffer; key: Buffer }
  /** Server keepalive: a PING to every connection this often (the HTTP/2 transports; default 2 h, as grpc-js). */
  keepaliveIntervalMs?: number
}

export interface ServerTransport {
  /** Any other service (health, reflection, RelayRegistry) in grpc-js's shape: their code is grpc-js's. */
  readonly services: Pick<Server, 'addService'>
  addSignaling(handlers: SignalingHandlers): void
  /** A socket the connection guard accepted. */
  injectConnection(socket: Socket): void
  /** The HTTP/2 server whose 'session' events the connection guard watches. */
  readonly http2Server: EventEmitter
  /** Unary calls started and not yet answered: a drain lets them finish. */
  readonly unaryInFlight: number
  /** Closes every session once its calls ended, cutting what is left at `deadline` (performance.now()). */
  shutdown(deadline: number): Promise<void>
  /** Cuts everything now (a failed start). */
  forceShutdown(): void
}
