// Who may publish and subscribe, and why not: the per-connection budgets (connection-limits.ts), the
// server-wide stream budget, `--require-auth` proofs and shedding a connection that failed too many of
// them. Every refusal names the limit and the `signal` flag that sets it. Transport-neutral: both
// transports ask the same questions through the service (signaling-server.ts).
import { status } from '@grpc/grpc-js'
import { KEY_LENGTH } from '../keys.js'
import { ConnectionLimits } from './connection-limits.js'
import { scanEnvelope } from './envelope-scan.js'
import { MESSAGE_HEADER_BYTES } from './h2/grpc-wire.js'
import type { ServerLimits } from './server-config.js'
import type { PublishRefusal, SubscribeRefusal } from './server-counters.js'
import type { ServerLog } from './server-log.js'
import type { SubscribeAuthenticator } from './subscribe-auth.js'
import type { MonotonicClock } from './token-bucket.js'
import type { CallStatus } from './transport.js'
import type { SubscribeRequest } from './wire-service.js'

export type Refusal<R> = CallStatus & { reason: R }

export class Admission {
  readonly connections: ConnectionLimits
  /** Open Subscribe streams, counted against maxStreams (Topics.subscriberCount is O(topics)). */
  openStreams = 0

  constructor(
    private readonly limits: ServerLimits,
    private readonly auth: SubscribeAuthenticator | undefined,
    private readonly log: ServerLog,
    /** Closes a connection (GOAWAY ENHANCE_YOUR_CALM) once it failed too many proofs. */
    private readonly shed: (peer: string) => void,
    clock?: MonotonicClock,
  ) {
    this.connections = new ConnectionLimits({
      maxSubscriptions: limits.maxSubscriptionsPerConnection,
      publishRatePerSecond: limits.publishRatePerSecond,
      publishBurst: limits.publishBurst,
      subscribeRatePerSecond: limits.subscribeRatePerSecond,
      subscribeBurst: limits.subscribeBurst,
    }, clock)
  }

  /**
   * Why a Subscribe may not start, checked cheapest first (the rate before the proof, so a flood of bad
   * proofs costs the sender its budget before it costs us an X25519); on success the stream holds one unit
   * of the server's and its connection's stream budgets until `release` gives them back.
   */
  subscribe({ key, invalid }: SubscribeRequest, proof: string | undefined, peer: string, closing: boolean): Refusal<SubscribeRefusal> | undefined {
    if (closing) return { reason: 'shutting_down', code: status.UNAVAILABLE, details: 'signaling server is shutting down' }
    if (this.connections.shed(peer)) return { reason: 'auth', code: status.PERMISSION_DENIED, details: this.#shedMessage() }
    const overRate = this.connections.admitSubscribe(peer)
    if (overRate) return { reason: 'rate', code: status.RESOURCE_EXHAUSTED, details: overRate }
    if (invalid !== undefined) return { reason: 'invalid', code: status.INVALID_ARGUMENT, details: `subscribe request is not a valid SubscribeParams message: ${invalid}` }
    if (key.length !== KEY_LENGTH) {
      return { reason: 'invalid', code: status.INVALID_ARGUMENT, details: `subscribe key is ${key.length} bytes, but a public key is ${KEY_LENGTH} bytes` }
    }
    if (this.auth) {
      const refused = this.auth.check(proof, key)
      if (refused) {
        this.#authFailed(peer)
        return { reason: 'auth', ...refused }
      }
    }
    if (this.openStreams >= this.limits.maxStreams) {
      return {
        reason: 'server_limit',
        code: status.RESOURCE_EXHAUSTED,
        details: `server-wide limit of ${this.limits.maxStreams} open subscriptions reached (signal --max-streams); retry later or use another server`,
      }
    }
    const perConnection = this.connections.admitSubscription(peer)
    if (perConnection) return { reason: 'connection_limit', code: status.RESOURCE_EXHAUSTED, details: perConnection }
    this.openStreams++
    return undefined
  }

  /** A subscription admitted by `subscribe` ended: its budgets come back. */
  release(peer: string): void {
    this.openStreams--
    this.connections.releaseSubscription(peer)
  }

  /** Where the recipient key is in `frame` (an Envelope with its gRPC prefix), or why the publish is refused. */
  publish(frame: Buffer, peer: string): number | Refusal<PublishRefusal> {
    if (this.connections.shed(peer)) return { reason: 'auth', code: status.PERMISSION_DENIED, details: this.#shedMessage() }
    // Counted before anything else, so a flood of garbage costs the sender its budget like valid envelopes do.
    const overRate = this.connections.admitPublish(peer)
    if (overRate) return { reason: 'rate', code: status.RESOURCE_EXHAUSTED, details: overRate }
    const size = frame.length - MESSAGE_HEADER_BYTES
    if (size > this.limits.maxEnvelopeBytes) {
      return {
        reason: 'size',
        code: status.RESOURCE_EXHAUSTED,
        details: `envelope is ${size} bytes, over this server's limit of ${this.limits.maxEnvelopeBytes} bytes (signal --max-envelope-bytes)`,
      }
    }
    const scan = scanEnvelope(frame, MESSAGE_HEADER_BYTES, frame.length)
    return typeof scan === 'string' ? { reason: 'invalid', code: status.INVALID_ARGUMENT, details: scan } : scan
  }

  /** A failed proof; past maxAuthFailures the connection is shed: refused from now on, and closed. */
  #authFailed(peer: string): void {
    const failures = this.connections.authFailed(peer)
    if (failures !== this.limits.maxAuthFailures) return
    this.connections.markShed(peer)
    this.log.warn({ event: 'connection_shed', peer, failures }, `connection shed after ${failures} failed subscribe proofs (GOAWAY ENHANCE_YOUR_CALM)`)
    // After this call's own status went out: a GOAWAY first would fail it with the GOAWAY's code instead.
    setImmediate(() => this.shed(peer))
  }

  #shedMessage(): string {
    return `this connection was closed after ${this.limits.maxAuthFailures} failed subscribe proofs (signal --max-auth-failures); reconnect with a valid proof`
  }
}
