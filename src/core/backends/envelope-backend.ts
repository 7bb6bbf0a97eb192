// The part every backend shares: sealing on publish, the subscriptions registry on receive, and the
// bookkeeping that starts a transport subscription for our first handler and stops it after the last.
import { Envelope, type Message } from '../../gen/signaling/signaling.js'
import type { Backend, BackendStatus, BackendTypeName, MessageHandler, PublishResult, SubscriptionKey } from '../backend.js'
import { BackendError } from '../backend.js'
import { Emitter } from '../emitter.js'
import { sealMessage } from '../envelope.js'
import type { PrivateKey, PublicKey } from '../keys.js'
import { SubscriptionsRegistry } from '../subscriptions.js'

export abstract class EnvelopeBackend implements Backend {
  abstract readonly type: BackendTypeName
  protected readonly subscriptions = new SubscriptionsRegistry()
  protected readonly status = new Emitter<BackendStatus>()
  /** Transport subscriptions by our public key, settled once live. */
  readonly #live = new Map<string, Promise<void>>()
  #closed = false

  constructor(readonly url: string) {}

  protected abstract subscribeTransport(ours: PublicKey, signal?: AbortSignal): Promise<void>
  protected abstract unsubscribeTransport(ours: PublicKey, signal?: AbortSignal): Promise<void>
  protected abstract publishEnvelope(envelope: Envelope, signal?: AbortSignal): Promise<void>
  protected abstract closeTransport(): Promise<void>

  get closed(): boolean {
    return this.#closed
  }

  async subscribe(key: SubscriptionKey, handler: MessageHandler, signal?: AbortSignal): Promise<void> {
    this.#assertOpen()
    this.subscriptions.add(key, handler)
    const id = key.ours.publicKey.toString()
    let live = this.#live.get(id)
    if (!live) {
      live = this.subscribeTransport(key.ours.publicKey, signal)
      this.#live.set(id, live)
      live.catch(() => this.#live.delete(id))
    }
    try {
      await live
    } catch (err) {
      this.subscriptions.remove(key, handler)
      throw err
    }
  }

  async unsubscribe(key: SubscriptionKey, handler: MessageHandler, signal?: AbortSignal): Promise<void> {
    if (this.subscriptions.remove(key, handler) && !this.#closed) {
      this.#live.delete(key.ours.publicKey.toString())
      await this.unsubscribeTransport(key.ours.publicKey, signal)
    }
  }

  async publish(ours: PrivateKey, to: PublicKey, message: Message, signal?: AbortSignal): Promise<PublishResult> {
    this.#assertOpen()
    const envelope = sealMessage(message, ours, to)
    await this.publishEnvelope(envelope, signal)
    return { size: Envelope.encode(envelope).finish().length }
  }

  onStatus(listener: (status: BackendStatus) => void): () => void {
    return this.status.on(listener)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#live.clear()
    await this.closeTransport()
    this.status.emit({ state: 'closed', backend: this.url })
    this.status.clear()
  }

  /** Transports call this for every envelope they receive. */
  protected receive(envelope: Envelope, size?: number): void {
    if (!this.#closed) this.subscriptions.deliver(envelope, this.url, size)
  }

  #assertOpen(): void {
    if (this.#closed) throw new BackendError(`backend ${this.url} is closed`)
  }
}
