// inprocess: one process-wide hub (WIRE.md §6), for tests and embedding. Envelopes travel as bytes, so
// the inprocess path exercises the same encoding as a real wire.
import { Envelope } from '../../gen/signaling/signaling.js'
import type { BackendFactory } from '../backend.js'
import type { PublicKey } from '../keys.js'
import { EnvelopeBackend } from './envelope-backend.js'

const hub = new Map<string, Set<InprocessBackend>>()

export class InprocessBackend extends EnvelopeBackend {
  readonly type = 'inprocess' as const

  constructor(url: URL | string = 'inprocess:') {
    super(String(url))
  }

  protected async subscribeTransport(ours: PublicKey): Promise<void> {
    const id = ours.toString()
    let set = hub.get(id)
    if (!set) hub.set(id, (set = new Set()))
    set.add(this)
  }

  protected async unsubscribeTransport(ours: PublicKey): Promise<void> {
    const id = ours.toString()
    hub.get(id)?.delete(this)
    if (hub.get(id)?.size === 0) hub.delete(id)
  }

  protected async publishEnvelope(envelope: Envelope): Promise<void> {
    const bytes = Envelope.encode(envelope).finish()
    const recipient = Buffer.from(envelope.recipient).toString('base64')
    for (const backend of hub.get(recipient) ?? []) {
      // Asynchronous like a network: a handler never runs inside the publisher's call stack.
      setImmediate(() => backend.receive(Envelope.decode(bytes), bytes.length))
    }
  }

  protected async closeTransport(): Promise<void> {
    for (const [id, set] of hub) {
      set.delete(this)
      if (set.size === 0) hub.delete(id)
    }
  }
}

/** The registry's entry point (backends/index.ts). */
export const createBackend: BackendFactory = (url) => new InprocessBackend(url)
