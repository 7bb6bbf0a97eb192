// The Backend contract (cunīcu's signaling.Backend in TypeScript form) and the URL-scheme registry.
import type { Message } from '../gen/signaling/signaling.js'
import type { EnvelopeError } from './envelope.js'
import type { PrivateKey, PublicKey } from './keys.js'

export type BackendTypeName = 'grpc' | 'inprocess' | 'multicast' | 'multi'

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
  unsubscribe(key: SubscriptionKey, handler: MessageHandler): Promise<void>
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

type BackendFactory = (url: URL, options: BackendOptions) => Promise<Backend>

// Loaders import lazily, so a command that never opens gRPC never loads grpc-js.
const factories = new Map<string, BackendFactory>([
  ['grpc:', async (url, o) => new (await import('./backends/grpc.js')).GrpcBackend(url, o)],
  ['inprocess:', async (url) => new (await import('./backends/inprocess.js')).InprocessBackend(url)],
  ['multicast:', async (url) => new (await import('./backends/multicast.js')).MulticastBackend(url)],
])

/** Adds a scheme ("name:"), so a new backend is one file plus one call. */
export function registerBackend(scheme: string, factory: BackendFactory): void {
  factories.set(scheme.endsWith(':') ? scheme : `${scheme}:`, factory)
}

export function parseBackendUrl(text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new BackendError(`backend "${text}" is not a URL: expected e.g. grpc://127.0.0.1:8080?insecure=true or inprocess:`)
  }
  if (!factories.has(url.protocol)) {
    throw new BackendError(`backend "${text}": unknown scheme "${url.protocol}" (known: ${[...factories.keys()].join(', ')})`)
  }
  return url
}

/** Opens one backend, or a MultiBackend when given several URLs. */
export async function openBackend(urls: string | readonly string[], options: BackendOptions = {}): Promise<Backend> {
  const list = typeof urls === 'string' ? [urls] : [...urls]
  if (list.length === 0) throw new BackendError('no backend given')
  const parsed = list.map(parseBackendUrl)
  const backends = await Promise.all(parsed.map((url) => factories.get(url.protocol)!(url, options)))
  if (backends.length === 1) return backends[0]!
  const { MultiBackend } = await import('./backends/multi.js')
  return new MultiBackend(backends)
}
