import { describe, expect, it } from 'vitest'
import { Envelope, Message } from '../src/gen/signaling/signaling.js'
import { EnvelopeError, isSyncEnvelope, openEnvelope, sealMessage } from '../src/core/envelope.js'
import { PrivateKey, PublicKey } from '../src/core/keys.js'
import { messageFromJson, messageToJson } from '../src/core/message-json.js'
import { SharedKeyCache } from '../src/core/shared-key-cache.js'
import { b64, boxVectors, toB64 } from './helpers/vectors.js'

describe('envelopes (vectors/box.json, made with libsodium)', () => {
  for (const v of boxVectors) {
    describe(v.name, () => {
      const sender = PrivateKey.parse(v.senderPrivate)
      const recipient = PrivateKey.parse(v.recipientPrivate)

      it('the vector keys are consistent', () => {
        expect(sender.publicKey.toString()).toBe(v.senderPublic)
        expect(recipient.publicKey.toString()).toBe(v.recipientPublic)
      })

      it('messageJson encodes to messageProtobuf', () => {
        expect(toB64(Message.encode(messageFromJson(v.messageJson)).finish())).toBe(v.messageProtobuf)
      })

      it('sealing gives body and envelopeProtobuf byte for byte', () => {
        const envelope = sealMessage(messageFromJson(v.messageJson), sender, recipient.publicKey, { nonce: b64(v.nonce) })
        expect(toB64(envelope.contents!.body)).toBe(v.body)
        expect(toB64(Envelope.encode(envelope).finish())).toBe(v.envelopeProtobuf)
      })

      it('opening envelopeProtobuf gives messageJson', () => {
        const message = openEnvelope(Envelope.decode(b64(v.envelopeProtobuf)), recipient)
        expect(messageToJson(message)).toEqual(v.messageJson)
      })
    })
  }
})

describe('opening failures', () => {
  const v = boxVectors[0]!
  const recipient = PrivateKey.parse(v.recipientPrivate)
  const envelope = () => Envelope.decode(b64(v.envelopeProtobuf))
  const reasonOf = (fn: () => unknown) => {
    try {
      fn()
    } catch (err) {
      expect(err).toBeInstanceOf(EnvelopeError)
      return { reason: (err as EnvelopeError).reason, message: (err as Error).message }
    }
    throw new Error('expected an EnvelopeError')
  }

  it('a tampered body fails authentication', () => {
    const e = envelope()
    e.contents!.body[20]! ^= 1
    expect(reasonOf(() => openEnvelope(e, recipient))).toMatchObject({ reason: 'authentication-failed', message: expect.stringContaining(v.senderPublic) })
  })

  it('a forged sender fails authentication', () => {
    const e = envelope()
    e.sender = PrivateKey.generate().publicKey.bytes
    expect(reasonOf(() => openEnvelope(e, recipient)).reason).toBe('authentication-failed')
  })

  it('the wrong private key is a wrong recipient', () => {
    expect(reasonOf(() => openEnvelope(envelope(), PrivateKey.generate())).reason).toBe('wrong-recipient')
  })

  it('sealed for another key (recipient field rewritten) fails authentication', () => {
    const other = PrivateKey.generate()
    const e = envelope()
    e.recipient = other.publicKey.bytes
    expect(reasonOf(() => openEnvelope(e, other)).reason).toBe('authentication-failed')
  })

  it.each([0, 23, 25])('a %i-byte nonce is rejected', (n) => {
    const e = envelope()
    e.contents!.nonce = new Uint8Array(n)
    expect(reasonOf(() => openEnvelope(e, recipient))).toMatchObject({ reason: 'bad-nonce', message: expect.stringContaining(`${n}-byte nonce`) })
  })

  it('a body shorter than the tag is truncated', () => {
    const e = envelope()
    e.contents!.body = e.contents!.body.slice(0, 15)
    expect(reasonOf(() => openEnvelope(e, recipient)).reason).toBe('truncated')
  })

  it('a sender that is not 32 bytes or no contents is malformed', () => {
    const e = envelope()
    e.sender = new Uint8Array(5)
    expect(reasonOf(() => openEnvelope(e, recipient)).reason).toBe('malformed')
    const f = envelope()
    f.contents = undefined
    expect(reasonOf(() => openEnvelope(f, recipient)).reason).toBe('malformed')
  })

  it('a low-order sender key is refused', () => {
    const e = envelope()
    e.sender = new Uint8Array(32)
    expect(reasonOf(() => openEnvelope(e, recipient)).reason).toBe('bad-key')
  })

  it('recognises the empty sync envelope', () => {
    expect(isSyncEnvelope(Envelope.decode(Envelope.encode(Envelope.create()).finish()))).toBe(true)
    expect(isSyncEnvelope(envelope())).toBe(false)
  })
})

describe('shared-key cache', () => {
  it('gives the same bytes as an uncached seal, and stays bounded', () => {
    const a = PrivateKey.generate()
    const cache = new SharedKeyCache(3)
    const peers = Array.from({ length: 5 }, () => PrivateKey.generate())
    const nonce = new Uint8Array(24).fill(7)
    const message = Message.create({ credentials: { ufrag: 'u', pwd: 'p', needCreds: true } })
    for (const peer of peers) {
      const cached = sealMessage(message, a, peer.publicKey, { nonce, cache })
      const fresh = sealMessage(message, a, peer.publicKey, { nonce, cache: new SharedKeyCache() })
      expect(toB64(cached.contents!.body)).toBe(toB64(fresh.contents!.body))
      expect(openEnvelope(cached, peer, cache)).toEqual(message)
    }
    expect(cache.size).toBe(3)
  })

  it('round-trips between fresh keys', () => {
    const a = PrivateKey.generate()
    const b = PrivateKey.generate()
    const message = Message.create({ candidate: { port: 4242, address: '127.0.0.1', component: 1 } })
    const opened = openEnvelope(sealMessage(message, a, b.publicKey), b)
    expect(opened.candidate?.port).toBe(4242)
    expect(PublicKey.ANY.isAny).toBe(true)
  })
})
