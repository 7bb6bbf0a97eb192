// What `subscribe` does, as an engine: listen on one backend for messages to our key from given senders
// (or anyone) and turn everything that happens into one event union for the renderers.
import type { Backend, BackendStatus, EnvelopeFailure, MessageHandler, ReceivedMessage, SubscriptionKey } from './backend.js'
import { Emitter } from './emitter.js'
import { PublicKey, type PrivateKey } from './keys.js'
import { messageKind, type MessageKind } from './message-kind.js'
import { Message } from '../gen/signaling/signaling.js'

export type InboxEvent =
  | { type: 'subscribed'; key: string; from: string[] | 'any'; backend: string; at: string }
  | { type: 'message'; from: string; to: string; backend: string; at: string; kind: MessageKind; size: number; message: unknown }
  | { type: 'error'; reason: string; message: string; claimedSender?: string; backend: string; at: string }
  | { type: 'backend'; status: BackendStatus; at: string }

export interface InboxOptions {
  backend: Backend
  ours: PrivateKey
  /** Senders to listen to; empty = any sender. */
  from: readonly PublicKey[]
}

export class Inbox {
  readonly events = new Emitter<InboxEvent>()
  readonly #keys: SubscriptionKey[]
  readonly #handler: MessageHandler
  #offStatus?: () => void
  /** start()'s signal: it also bounds the unsubscribe on close. */
  #signal?: AbortSignal
  #closed = false

  constructor(private readonly options: InboxOptions) {
    const senders = options.from.length ? options.from : [PublicKey.ANY]
    this.#keys = senders.map((theirs) => ({ ours: options.ours, theirs }))
    this.#handler = {
      onMessage: (m) => this.events.emit(toMessageEvent(m)),
      onError: (f) => this.events.emit(toErrorEvent(f)),
    }
  }

  /** Resolves once every subscription is live. */
  async start(signal?: AbortSignal): Promise<void> {
    const { backend, ours, from } = this.options
    this.#signal = signal
    this.#offStatus = backend.onStatus((status) => this.events.emit({ type: 'backend', status, at: new Date().toISOString() }))
    for (const key of this.#keys) await backend.subscribe(key, this.#handler, signal)
    this.events.emit({
      type: 'subscribed',
      key: ours.publicKey.toString(),
      from: from.length ? from.map(String) : 'any',
      backend: backend.url,
      at: new Date().toISOString(),
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#offStatus?.()
    await Promise.allSettled(this.#keys.map((key) => this.options.backend.unsubscribe(key, this.#handler, this.#signal)))
  }
}

function toMessageEvent(m: ReceivedMessage): InboxEvent {
  return {
    type: 'message',
    from: m.from.toString(),
    to: m.to.toString(),
    backend: m.backend,
    at: m.receivedAt.toISOString(),
    kind: messageKind(m.message),
    size: m.size,
    message: Message.toJSON(m.message),
  }
}

function toErrorEvent(f: EnvelopeFailure): InboxEvent {
  return {
    type: 'error',
    reason: f.error.reason,
    message: f.error.message,
    ...(f.claimedSender ? { claimedSender: f.claimedSender.toString() } : {}),
    backend: f.backend,
    at: new Date().toISOString(),
  }
}
