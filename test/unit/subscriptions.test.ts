// SubscriptionsRegistry (cunīcu's): who gets an envelope, how often, and what a failure reaches.
import { describe, expect, it, vi } from 'vitest'
import type { EnvelopeFailure, MessageHandler, ReceivedMessage } from '../../src/core/backend.js'
import { LISTENER_ERROR_CODE } from '../../src/core/emitter.js'
import { EnvelopeError, sealMessage } from '../../src/core/envelope.js'
import { PrivateKey, PublicKey } from '../../src/core/keys.js'
import { SharedKeyCache } from '../../src/core/shared-key-cache.js'
import { SubscriptionsRegistry } from '../../src/core/subscriptions.js'
import { Envelope, Message } from '../../src/gen/signaling/signaling.js'

const credentials = (ufrag: string): Message => Message.fromPartial({ credentials: { ufrag, pwd: 'p' } })

/** A handler that records what reached it. */
function recorder(): MessageHandler & { messages: ReceivedMessage[]; failures: EnvelopeFailure[] } {
  const messages: ReceivedMessage[] = []
  const failures: EnvelopeFailure[] = []
  return { messages, failures, onMessage: (m) => messages.push(m), onError: (f) => failures.push(f) }
}

/** A registry with one recorder for any sender to our key. */
function listeningToAnyone() {
  const registry = new SubscriptionsRegistry()
  const ours = PrivateKey.generate()
  const handler = recorder()
  registry.add({ ours, theirs: PublicKey.ANY }, handler)
  return { registry, ours, handler }
}

describe('SubscriptionsRegistry', () => {
  it('add says when our key gets its first handler, remove when it loses its last', () => {
    const registry = new SubscriptionsRegistry()
    const ours = PrivateKey.generate()
    const [peerA, peerB] = [PrivateKey.generate().publicKey, PrivateKey.generate().publicKey]
    const [h1, h2] = [recorder(), recorder()]
    expect(registry.has(ours.publicKey)).toBe(false)
    expect(registry.add({ ours, theirs: peerA }, h1)).toBe(true)
    expect(registry.add({ ours, theirs: peerA }, h2)).toBe(false)
    expect(registry.add({ ours, theirs: peerB }, h1)).toBe(false)
    expect(registry.has(ours.publicKey)).toBe(true)
    expect(registry.ourKeys().map(String)).toEqual([ours.publicKey.toString()])

    expect(registry.remove({ ours, theirs: peerA }, h1)).toBe(false)
    expect(registry.remove({ ours, theirs: peerA }, h2)).toBe(false) // peerB's handler is left
    expect(registry.remove({ ours, theirs: peerA }, h2)).toBe(false) // removing twice changes nothing
    expect(registry.remove({ ours, theirs: peerB }, h1)).toBe(true)
    expect(registry.has(ours.publicKey)).toBe(false)
    expect(registry.ourKeys()).toEqual([])
    expect(registry.remove({ ours, theirs: peerB }, h1)).toBe(false) // unknown key
  })

  it('delivers an envelope, opened, to the handlers of its sender and of any sender, and to no one else', () => {
    const registry = new SubscriptionsRegistry(new SharedKeyCache())
    const ours = PrivateKey.generate()
    const sender = PrivateKey.generate()
    const [bySender, byAny, byOther] = [recorder(), recorder(), recorder()]
    registry.add({ ours, theirs: sender.publicKey }, bySender)
    registry.add({ ours, theirs: PublicKey.ANY }, byAny)
    registry.add({ ours, theirs: PrivateKey.generate().publicKey }, byOther)

    const envelope = sealMessage(credentials('abcd'), sender, ours.publicKey)
    const before = Date.now()
    registry.deliver(envelope, 'test:')
    for (const handler of [bySender, byAny]) {
      expect(handler.messages).toHaveLength(1)
      const [received] = handler.messages as [ReceivedMessage]
      expect(received.from.equals(sender.publicKey)).toBe(true)
      expect(received.to.equals(ours.publicKey)).toBe(true)
      expect(received.message).toEqual(credentials('abcd'))
      expect(received.backend).toBe('test:')
      expect(received.size).toBe(Envelope.encode(envelope).finish().length)
      expect(received.receivedAt.getTime()).toBeGreaterThanOrEqual(before)
    }
    expect(byOther.messages).toEqual([])
    registry.deliver(envelope, 'test:', 1234)
    expect(bySender.messages[1]!.size).toBe(1234)
  })

  it('any-sender handlers alone get every sender\'s envelopes', () => {
    const { registry, ours, handler } = listeningToAnyone()
    const [x, y] = [PrivateKey.generate(), PrivateKey.generate()]
    registry.deliver(sealMessage(credentials('x'), x, ours.publicKey), 'test:')
    registry.deliver(sealMessage(credentials('y'), y, ours.publicKey), 'test:')
    expect(handler.messages.map((m) => [m.from.toString(), m.message.credentials?.ufrag])).toEqual([
      [x.publicKey.toString(), 'x'],
      [y.publicKey.toString(), 'y'],
    ])
  })

  it('ignores envelopes for keys it does not hold, and recipients that are not keys', () => {
    const { registry, ours, handler } = listeningToAnyone()
    const sender = PrivateKey.generate()
    registry.deliver(sealMessage(credentials('x'), sender, PrivateKey.generate().publicKey), 'test:')
    const short = sealMessage(credentials('x'), sender, ours.publicKey)
    short.recipient = short.recipient.subarray(0, 31)
    registry.deliver(short, 'test:')
    expect(handler.messages).toEqual([])
    expect(handler.failures).toEqual([])
  })

  it('a sender claiming the zero key reaches the any-sender handlers once', () => {
    const { registry, ours, handler } = listeningToAnyone()
    const forged = sealMessage(credentials('x'), PrivateKey.generate(), ours.publicKey)
    forged.sender = new Uint8Array(32)
    registry.deliver(forged, 'test:')
    expect(handler.messages).toEqual([])
    expect(handler.failures).toHaveLength(1)
  })

  it('an envelope that does not open goes to onError with its claimed sender, never to onMessage', () => {
    const registry = new SubscriptionsRegistry()
    const ours = PrivateKey.generate()
    const sender = PrivateKey.generate()
    const [bySender, byAny, byOther] = [recorder(), recorder(), recorder()]
    const withoutOnError: MessageHandler = { onMessage: vi.fn() }
    registry.add({ ours, theirs: sender.publicKey }, bySender)
    registry.add({ ours, theirs: sender.publicKey }, withoutOnError)
    registry.add({ ours, theirs: PublicKey.ANY }, byAny)
    registry.add({ ours, theirs: PrivateKey.generate().publicKey }, byOther)
    const tampered = sealMessage(credentials('x'), sender, ours.publicKey)
    tampered.contents!.body[0]! ^= 1
    registry.deliver(tampered, 'test:')
    for (const handler of [bySender, byAny]) {
      expect(handler.messages).toEqual([])
      expect(handler.failures).toHaveLength(1)
      const [failure] = handler.failures as [EnvelopeFailure]
      expect(failure.error).toBeInstanceOf(EnvelopeError)
      expect(failure.backend).toBe('test:')
      expect(failure.claimedSender?.equals(sender.publicKey)).toBe(true)
    }
    expect(byOther.failures).toEqual([])
    expect(withoutOnError.onMessage).not.toHaveBeenCalled()
  })

  it('a malformed sender is a failure without a claimed sender', () => {
    const { registry, ours, handler } = listeningToAnyone()
    const bad = sealMessage(credentials('x'), PrivateKey.generate(), ours.publicKey)
    bad.sender = bad.sender.subarray(0, 5)
    registry.deliver(bad, 'test:')
    expect(handler.failures).toHaveLength(1)
    expect(handler.failures[0]!.error.reason).toBe('malformed')
    expect(handler.failures[0]).not.toHaveProperty('claimedSender')
  })

  it('a throwing handler is reported (the emitter policy), not as an envelope failure; the others still get the message', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const registry = new SubscriptionsRegistry()
      const ours = PrivateKey.generate()
      const sender = PrivateKey.generate()
      const onError = vi.fn()
      registry.add({ ours, theirs: sender.publicKey }, {
        onMessage: () => {
          throw new TypeError('handler bug')
        },
        onError,
      })
      const other = recorder()
      registry.add({ ours, theirs: PublicKey.ANY }, other)
      expect(() => registry.deliver(sealMessage(credentials('x'), sender, ours.publicKey), 'test:')).not.toThrow()
      expect(() => registry.deliver(sealMessage(credentials('y'), sender, ours.publicKey), 'test:')).not.toThrow()
      expect(other.messages.map((m) => m.message.credentials?.ufrag)).toEqual(['x', 'y'])
      expect(onError).not.toHaveBeenCalled()
      // Once per registry, naming the listener's error.
      expect(warn).toHaveBeenCalledTimes(1)
      expect(String(warn.mock.calls[0]![0])).toContain('handler bug')
      expect(warn.mock.calls[0]![1]).toMatchObject({ code: LISTENER_ERROR_CODE })
    } finally {
      warn.mockRestore()
    }
  })

  it('a throwing onError is reported the same way; the other handlers still hear of the failure', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const registry = new SubscriptionsRegistry()
      const ours = PrivateKey.generate()
      // The throwing handler first: the one after it must still be told.
      registry.add({ ours, theirs: PublicKey.ANY }, {
        onMessage: () => {},
        onError: () => {
          throw new Error('onError bug')
        },
      })
      const handler = recorder()
      registry.add({ ours, theirs: PublicKey.ANY }, handler)
      const broken = sealMessage(credentials('x'), PrivateKey.generate(), ours.publicKey)
      broken.contents!.body[0]! ^= 1
      expect(() => registry.deliver(broken, 'test:')).not.toThrow()
      expect(handler.failures).toHaveLength(1)
      expect(warn).toHaveBeenCalledTimes(1)
    } finally {
      warn.mockRestore()
    }
  })
})
