// What every backend inherits from EnvelopeBackend: one transport subscription per key of ours however many
// handlers, a retry after a failed one, no delivery and no calls after close, and a close that happens once.
import { describe, expect, it, vi } from 'vitest'
import { BackendError, type BackendStatus } from '../../src/core/backend.js'
import { EnvelopeBackend } from '../../src/core/backends/envelope-backend.js'
import { sealMessage } from '../../src/core/envelope.js'
import { PrivateKey, type PublicKey } from '../../src/core/keys.js'
import { Envelope, Message } from '../../src/gen/signaling/signaling.js'

/** A transport that records what the base class asks of it; its first `failures` subscriptions fail. */
class RecordingBackend extends EnvelopeBackend {
  readonly type = 'recording'
  readonly calls: string[] = []
  readonly published: Envelope[] = []

  constructor(private failures = 0) {
    super('recording:')
  }

  protected async subscribeTransport(ours: PublicKey): Promise<void> {
    this.calls.push(`subscribe ${ours.short}`)
    if (this.failures-- > 0) throw new BackendError('transport refused')
  }

  protected async unsubscribeTransport(ours: PublicKey): Promise<void> {
    this.calls.push(`unsubscribe ${ours.short}`)
  }

  protected async publishEnvelope(envelope: Envelope): Promise<void> {
    this.published.push(envelope)
  }

  protected async closeTransport(): Promise<void> {
    this.calls.push('close')
  }

  /** What a transport does with an envelope that arrived. */
  arrive(envelope: Envelope): void {
    this.receive(envelope)
  }
}

const message = Message.fromPartial({ credentials: { ufrag: 'abcd', pwd: 'p' } })

describe('EnvelopeBackend', () => {
  it('subscribes the transport once per key of ours, and unsubscribes it after the last handler', async () => {
    const backend = new RecordingBackend()
    const [ours, peer] = [PrivateKey.generate(), PrivateKey.generate()]
    const [h1, h2] = [{ onMessage: vi.fn() }, { onMessage: vi.fn() }]
    await backend.subscribe({ ours, theirs: peer.publicKey }, h1)
    await backend.subscribe({ ours, theirs: peer.publicKey }, h2)
    expect(backend.calls).toEqual([`subscribe ${ours.publicKey.short}`])
    await backend.unsubscribe({ ours, theirs: peer.publicKey }, h1)
    expect(backend.calls).toHaveLength(1)
    await backend.unsubscribe({ ours, theirs: peer.publicKey }, h2)
    expect(backend.calls).toEqual([`subscribe ${ours.publicKey.short}`, `unsubscribe ${ours.publicKey.short}`])
    // A new first handler subscribes the transport again.
    await backend.subscribe({ ours, theirs: peer.publicKey }, h1)
    expect(backend.calls).toHaveLength(3)
    await backend.close()
  })

  it('a failed transport subscription rejects, forgets the handler, and the next subscribe tries again', async () => {
    const backend = new RecordingBackend(1)
    const [ours, peer] = [PrivateKey.generate(), PrivateKey.generate()]
    const handler = { onMessage: vi.fn() }
    await expect(backend.subscribe({ ours, theirs: peer.publicKey }, handler)).rejects.toThrow(new BackendError('transport refused'))
    backend.arrive(sealMessage(message, peer, ours.publicKey))
    expect(handler.onMessage).not.toHaveBeenCalled()
    await backend.subscribe({ ours, theirs: peer.publicKey }, handler)
    expect(backend.calls).toEqual([`subscribe ${ours.publicKey.short}`, `subscribe ${ours.publicKey.short}`])
    backend.arrive(sealMessage(message, peer, ours.publicKey))
    expect(handler.onMessage).toHaveBeenCalledTimes(1)
    await backend.close()
  })

  it('publish seals to the recipient and reports the envelope size', async () => {
    const backend = new RecordingBackend()
    const [ours, peer] = [PrivateKey.generate(), PrivateKey.generate()]
    const { size } = await backend.publish(ours, peer.publicKey, message)
    const [envelope] = backend.published as [Envelope]
    expect(size).toBe(Envelope.encode(envelope).finish().length)
    expect(Buffer.from(envelope.recipient).equals(Buffer.from(peer.publicKey.bytes))).toBe(true)
    expect(Buffer.from(envelope.sender).equals(Buffer.from(ours.publicKey.bytes))).toBe(true)
  })

  it('close happens once: one closed status, no delivery, no transport calls and no publish afterwards', async () => {
    const backend = new RecordingBackend()
    const [ours, peer] = [PrivateKey.generate(), PrivateKey.generate()]
    const handler = { onMessage: vi.fn() }
    const statuses: BackendStatus[] = []
    backend.onStatus((s) => statuses.push(s))
    await backend.subscribe({ ours, theirs: peer.publicKey }, handler)
    expect(backend.closed).toBe(false)
    await backend.close()
    await backend.close()
    expect(backend.closed).toBe(true)
    expect(statuses).toEqual([{ state: 'closed', backend: 'recording:' }])
    expect(backend.calls).toEqual([`subscribe ${ours.publicKey.short}`, 'close'])

    backend.arrive(sealMessage(message, peer, ours.publicKey))
    expect(handler.onMessage).not.toHaveBeenCalled()
    await backend.unsubscribe({ ours, theirs: peer.publicKey }, handler)
    expect(backend.calls).toEqual([`subscribe ${ours.publicKey.short}`, 'close']) // no unsubscribe on a closed transport
    await expect(backend.publish(ours, peer.publicKey, message)).rejects.toThrow(new BackendError('backend recording: is closed'))
    await expect(backend.subscribe({ ours, theirs: peer.publicKey }, handler)).rejects.toThrow(new BackendError('backend recording: is closed'))
    expect(backend.published).toEqual([])
  })
})
