// Several backends as one (WIRE.md §6): subscribe on all, publish on all. A publish succeeds when at
// least one backend took it, since the recipient may listen on any of them.
import type { Message } from '../../gen/signaling/signaling.js'
import type { Backend, BackendStatus, MessageHandler, PublishResult, SubscriptionKey } from '../backend.js'
import { BackendError } from '../backend.js'
import type { PrivateKey, PublicKey } from '../keys.js'

export class MultiBackend implements Backend {
  readonly type = 'multi' as const
  readonly url: string

  constructor(readonly backends: readonly Backend[]) {
    this.url = backends.map((b) => b.url).join(',')
  }

  async subscribe(key: SubscriptionKey, handler: MessageHandler, signal?: AbortSignal): Promise<void> {
    await Promise.all(this.backends.map((b) => b.subscribe(key, handler, signal)))
  }

  async unsubscribe(key: SubscriptionKey, handler: MessageHandler, signal?: AbortSignal): Promise<void> {
    await Promise.all(this.backends.map((b) => b.unsubscribe(key, handler, signal)))
  }

  async publish(ours: PrivateKey, to: PublicKey, message: Message, signal?: AbortSignal): Promise<PublishResult> {
    const results = await Promise.allSettled(this.backends.map((b) => b.publish(ours, to, message, signal)))
    const done = results.find((r): r is PromiseFulfilledResult<PublishResult> => r.status === 'fulfilled')
    if (done) return done.value
    const reasons = results.map((r) => ((r as PromiseRejectedResult).reason as Error).message)
    throw new BackendError(`publish failed on every backend: ${reasons.join('; ')}`)
  }

  onStatus(listener: (status: BackendStatus) => void): () => void {
    const offs = this.backends.map((b) => b.onStatus(listener))
    return () => offs.forEach((off) => off())
  }

  async close(): Promise<void> {
    await Promise.all(this.backends.map((b) => b.close()))
  }
}
