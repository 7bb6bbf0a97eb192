// Who listens to which (our key, their key) pair, shared by every backend (cunīcu's SubscriptionsRegistry):
// an incoming envelope is opened once with our private key and handed to the handlers registered for its
// sender and to those registered for any sender.
import { Envelope, type Message } from '../gen/signaling/signaling.js'
import type { EnvelopeFailure, MessageHandler, ReceivedMessage, SubscriptionKey } from './backend.js'
import { ListenerErrors } from './emitter.js'
import { EnvelopeError, envelopeSender, openEnvelope } from './envelope.js'
import { PublicKey, type PrivateKey } from './keys.js'
import { defaultSharedKeyCache, type SharedKeyCache } from './shared-key-cache.js'

interface OurSubscription {
  ours: PrivateKey
  /** Handlers by their public key in base64; PublicKey.ANY's string for any-sender handlers. */
  handlers: Map<string, Set<MessageHandler>>
}

export class SubscriptionsRegistry {
  readonly #byOurKey = new Map<string, OurSubscription>()
  readonly #listenerErrors = new ListenerErrors()

  constructor(private readonly cache: SharedKeyCache = defaultSharedKeyCache) {}

  /** Registers a handler; true when it is the first for our key (the transport must subscribe then). */
  add({ ours, theirs }: SubscriptionKey, handler: MessageHandler): boolean {
    const id = ours.publicKey.toString()
    let sub = this.#byOurKey.get(id)
    const first = sub === undefined
    if (!sub) this.#byOurKey.set(id, (sub = { ours, handlers: new Map() }))
    const peer = theirs.toString()
    let set = sub.handlers.get(peer)
    if (!set) sub.handlers.set(peer, (set = new Set()))
    set.add(handler)
    return first
  }

  /** Removes a handler; true when our key has no handler left (the transport may unsubscribe). */
  remove({ ours, theirs }: SubscriptionKey, handler: MessageHandler): boolean {
    const id = ours.publicKey.toString()
    const sub = this.#byOurKey.get(id)
    if (!sub) return false
    const peer = theirs.toString()
    const set = sub.handlers.get(peer)
    set?.delete(handler)
    if (set?.size === 0) sub.handlers.delete(peer)
    if (sub.handlers.size > 0) return false
    this.#byOurKey.delete(id)
    return true
  }

  has(ourPublic: PublicKey): boolean {
    return this.#byOurKey.has(ourPublic.toString())
  }

  /** Our public keys with at least one handler: what a reconnecting transport must subscribe again. */
  ourKeys(): PublicKey[] {
    return [...this.#byOurKey.values()].map((s) => s.ours.publicKey)
  }

  /**
   * Opens and dispatches one envelope. Envelopes for keys we do not hold are ignored (multicast sees
   * everyone's); failures go to the handlers' onError, never to onMessage.
   */
  deliver(envelope: Envelope, backend: string, size = Envelope.encode(envelope).finish().length): void {
    const recipient = envelope.recipient.length === 32 ? new PublicKey(envelope.recipient) : undefined
    const sub = recipient && this.#byOurKey.get(recipient.toString())
    if (!sub) return
    let claimedSender: PublicKey | undefined
    let message: Message
    try {
      claimedSender = envelopeSender(envelope)
      message = openEnvelope(envelope, sub.ours, this.cache)
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err
      const failure: EnvelopeFailure = { error: err, backend, ...(claimedSender ? { claimedSender } : {}) }
      for (const handler of this.#handlersFor(sub, claimedSender)) {
        if (handler.onError) this.#listenerErrors.call((f: EnvelopeFailure) => handler.onError!(f), failure)
      }
      return
    }
    const received: ReceivedMessage = { from: claimedSender, to: sub.ours.publicKey, message, backend, receivedAt: new Date(), size }
    // A throwing handler is reported (emitter.ts's one policy): the other handlers still get the message,
    // and the transport's receive path (a socket callback) never sees the throw.
    for (const handler of this.#handlersFor(sub, claimedSender)) this.#listenerErrors.call((r: ReceivedMessage) => handler.onMessage(r), received)
  }

  #handlersFor(sub: OurSubscription, sender: PublicKey | undefined): MessageHandler[] {
    // A sender claiming the zero key would otherwise hit the any-sender handlers twice: as "that
    // sender" and as "any sender".
    const specific = sender && !sender.isAny ? (sub.handlers.get(sender.toString()) ?? []) : []
    const any = sub.handlers.get(PublicKey.ANY.toString()) ?? []
    return [...specific, ...any]
  }
}
