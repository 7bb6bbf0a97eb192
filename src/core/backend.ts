// The Backend contract (cunīcu's signaling.Backend in TypeScript form): what every backend implements and
// what callers may rely on. It names no backend; the URL-scheme registry is backend-registry.ts, and the
// built-in schemes register themselves in backends/index.ts.
import type { Message } from '../gen/signaling/signaling.js'
import type { EnvelopeError } from './envelope.js'
import type { PrivateKey, PublicKey } from './keys.js'

/** The built-in kinds; a backend registered from outside names its own (its URL scheme, by convention). */
export type BackendTypeName = 'grpc' | 'inprocess' | 'multicast' | 'multi' | (string & {})

/** One decrypted, authenticated message. */
export interface ReceivedMessage {
  from: PublicKey
  to: PublicKey
  message: Message
  /** URL of the backend it came through. */
  backend: string
  receivedAt: Date
  /** Serialized envelope size in bytes. */
  size: number
}

export interface EnvelopeFailure {
  error: EnvelopeError
  backend: string
  /** The sender the envelope claims; unproven, since it did not open. */
  claimedSender?: PublicKey
}

export interface MessageHandler {
  onMessage(received: ReceivedMessage): void
  /** Envelopes addressed to us that failed to open: reported, dropped, never passed to onMessage. */
  onError?(failure: EnvelopeFailure): void
}

/** Whose messages to whom: `theirs` may be PublicKey.ANY for messages from any sender (cunīcu's zero key). */
export interface SubscriptionKey {
  ours: PrivateKey
  theirs: PublicKey
}

export type BackendStatus =
  | { state: 'connected'; backend: string }
  | { state: 'reconnecting'; backend: string; reason: string; retryInMs: number }
  | { state: 'closed'; backend: string }

export interface PublishResult {
  /** Serialized envelope size in bytes. */
  size: number
}

export interface Backend {
  readonly url: string
  readonly type: BackendTypeName
  /** Resolves once the subscription is live (for gRPC: after the server's sync envelope). */
  subscribe(key: SubscriptionKey, handler: MessageHandler, signal?: AbortSignal): Promise<void>
  /**
   * Takes the handler off at once; a transport that tells its server may wait for it, but never beyond an
   * aborted `signal` (Ctrl-C: the handler is gone locally, the server learns when the connection ends).
   */
  unsubscribe(key: SubscriptionKey, handler: MessageHandler, signal?: AbortSignal): Promise<void>
  /** Seals `message` from `ours` to `to` and sends it; rejects with BackendError when it cannot. */
  publish(ours: PrivateKey, to: PublicKey, message: Message, signal?: AbortSignal): Promise<PublishResult>
  /** Connection state changes (reconnects); returns the unsubscribe function. */
  onStatus(listener: (status: BackendStatus) => void): () => void
  /** Idempotent; afterwards no socket or timer of this backend remains. */
  close(): Promise<void>
}

export class BackendError extends Error {
  override name = 'BackendError'
}

export interface BackendOptions {
  /** Publish deadline in milliseconds (gRPC). */
  publishTimeoutMs?: number
  /** How long subscribe may wait for the subscription to become live. */
  connectTimeoutMs?: number
  /** PEM CA bundle that replaces the system roots for grpc:// TLS. */
  caFile?: string
  /**
   * The server key (base64) to seal subscribe proofs to, for servers run with `signal --require-auth`
   * (also `?auth_key=` in a grpc:// URL). Without it the key is fetched from GetBuildInfo once such a
   * server refuses a subscription.
   */
  authServerKey?: string
}

/**
 * Opens a backend for a URL whose scheme it was registered for. A backend module exports it as
 * `createBackend`, so the registry can load the module only when its scheme is used.
 */
export type BackendFactory = (url: URL, options: BackendOptions) => Backend | Promise<Backend>
