// A Backend test double: wraps another backend and delivers every incoming message several times, each
// copy after its own random delay, so messages arrive duplicated and out of order.
import type { Message } from '../../src/gen/signaling/signaling.js'
import type { Backend, BackendStatus, MessageHandler, PublishResult, SubscriptionKey } from '../../src/core/backend.js'
import type { PrivateKey, PublicKey } from '../../src/core/keys.js'

export interface ShufflingOptions {
  maxDelayMs: number
  copies: number
  random?: () => number
}

export class ShufflingBackend implements Backend {
  readonly url: string
  readonly type: Backend['type']
  readonly #inner: Backend
  readonly #o: Required<ShufflingOptions>
  readonly #wrapped = new Map<MessageHandler, MessageHandler>()
  readonly #timers = new Set<NodeJS.Timeout>()
  delivered = 0
  /** Deliveries of a message whose earlier copy was already delivered. */
  duplicates = 0

  constructor(inner: Backend, options: ShufflingOptions) {
    this.#inner = inner
    this.url = inner.url
    this.type = inner.type
    this.#o = { random: Math.random, ...options }
  }

  subscribe(key: SubscriptionKey, handler: MessageHandler, signal?: AbortSignal): Promise<void> {
    const wrapped: MessageHandler = {
      onMessage: (received) => {
        let copiesDelivered = 0
        for (let i = 0; i < this.#o.copies; i++) {
          const timer = setTimeout(() => {
            this.#timers.delete(timer)
            this.delivered++
            if (copiesDelivered++ > 0) this.duplicates++
            handler.onMessage(received)
          }, Math.floor(this.#o.random() * this.#o.maxDelayMs))
          this.#timers.add(timer)
        }
      },
      onError: (failure) => handler.onError?.(failure),
    }
    this.#wrapped.set(handler, wrapped)
    return this.#inner.subscribe(key, wrapped, signal)
  }

  async unsubscribe(key: SubscriptionKey, handler: MessageHandler): Promise<void> {
    const wrapped = this.#wrapped.get(handler)
    if (!wrapped) return
    this.#wrapped.delete(handler)
    await this.#inner.unsubscribe(key, wrapped)
  }

  publish(ours: PrivateKey, to: PublicKey, message: Message, signal?: AbortSignal): Promise<PublishResult> {
    return this.#inner.publish(ours, to, message, signal)
  }

  onStatus(listener: (status: BackendStatus) => void): () => void {
    return this.#inner.onStatus(listener)
  }

  /** Copies scheduled but not yet delivered. */
  get pending(): number {
    return this.#timers.size
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    await this.#inner.close()
  }
}

/** Passes everything through, and lets a test play the backend's status changes and envelope failures. */
export class ScriptedBackend implements Backend {
  readonly url: string
  readonly type: Backend['type']
  readonly #inner: Backend
  readonly #statusListeners = new Set<(status: BackendStatus) => void>()
  readonly handlers = new Set<MessageHandler>()
  published = 0

  constructor(inner: Backend) {
    this.#inner = inner
    this.url = inner.url
    this.type = inner.type
  }

  subscribe(key: SubscriptionKey, handler: MessageHandler, signal?: AbortSignal): Promise<void> {
    this.handlers.add(handler)
    return this.#inner.subscribe(key, handler, signal)
  }

  unsubscribe(key: SubscriptionKey, handler: MessageHandler): Promise<void> {
    this.handlers.delete(handler)
    return this.#inner.unsubscribe(key, handler)
  }

  publish(ours: PrivateKey, to: PublicKey, message: Message, signal?: AbortSignal): Promise<PublishResult> {
    this.published++
    return this.#inner.publish(ours, to, message, signal)
  }

  onStatus(listener: (status: BackendStatus) => void): () => void {
    this.#statusListeners.add(listener)
    const off = this.#inner.onStatus(listener)
    return () => {
      this.#statusListeners.delete(listener)
      off()
    }
  }

  emitStatus(status: BackendStatus): void {
    for (const listener of [...this.#statusListeners]) listener(status)
  }

  async close(): Promise<void> {
    await this.#inner.close()
  }
}
