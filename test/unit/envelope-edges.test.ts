// The edges of envelope.ts that the vector tests leave open (mutation testing showed them untested): the
// nonce pool across refills, the exact one-line errors a user sees for each broken envelope, and the sync
// envelope that must be told apart from any envelope with content.
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js'
import { describe, expect, it } from 'vitest'
import { EnvelopeError, isSyncEnvelope, NONCE_LENGTH, openEnvelope, randomNonce, sealMessage } from '../../src/core/envelope.js'
import { PrivateKey } from '../../src/core/keys.js'
import { boxSharedKey } from '../../src/core/shared-key-cache.js'
import { Envelope, Message } from '../../src/gen/signaling/signaling.js'

const message = Message.fromPartial({ credentials: { ufrag: 'abcd', pwd: 'p' } })

describe('randomNonce', () => {
  it('hands out 24-byte nonces that never repeat, across several pool refills, each a copy', () => {
    const seen = new Set<string>()
    const nonces: Uint8Array[] = []
    for (let i = 0; i < 1000; i++) {
      const nonce = randomNonce()
      expect(nonce).toHaveLength(NONCE_LENGTH)
      nonces.push(nonce)
      seen.add(Buffer.from(nonce).toString('hex'))
    }
    expect(seen.size).toBe(1000)
    // A copy: changing one handed out does not change the next (no shared view of the pool).
    const first = nonces[0]!
    const copy = Uint8Array.from(nonces[1]!)
    first.fill(0)
    expect(nonces[1]).toEqual(copy)
    expect(nonces[1]!.buffer).not.toBe(first.buffer)
  })
})

describe('openEnvelope errors', () => {
  const alice = PrivateKey.generate()
  const bob = PrivateKey.generate()
  const sealed = (): Envelope => sealMessage(message, alice, bob.publicKey)
  const failure = (envelope: Envelope, ours = bob): EnvelopeError => {
    try {
      openEnvelope(envelope, ours)
    } catch (err) {
      return err as EnvelopeError
    }
    throw new Error('opened')
  }

  it('name the sender and what is wrong, one reason each', () => {
    const cases: [string, (e: Envelope) => void, string, string][] = [
      ['short sender', (e) => (e.sender = e.sender.subarray(0, 3)), 'malformed', 'envelope sender is 3 bytes, not 32'],
      ['no contents', (e) => (e.contents = undefined), 'malformed', `envelope from ${alice.publicKey} has no contents`],
      ['short nonce', (e) => (e.contents!.nonce = e.contents!.nonce.subarray(0, 23)), 'bad-nonce', `envelope from ${alice.publicKey} has a 23-byte nonce, not 24`],
      ['short body', (e) => (e.contents!.body = e.contents!.body.subarray(0, 15)), 'truncated', `envelope from ${alice.publicKey} has a 15-byte body, shorter than the 16-byte tag`],
      ['low-order sender', (e) => (e.sender = new Uint8Array(32)), 'bad-key', 'envelope sender AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= is not a usable Curve25519 public key'],
    ]
    for (const [what, damage, reason, text] of cases) {
      const envelope = sealed()
      damage(envelope)
      const err = failure(envelope)
      expect(err, what).toBeInstanceOf(EnvelopeError)
      expect(err.name).toBe('EnvelopeError')
      expect([err.reason, err.message], what).toEqual([reason, text])
    }
  })

  it('a wrong recipient names it, as a key or by its length', () => {
    const carol = PrivateKey.generate()
    expect(failure(sealed(), carol).message).toBe(`envelope is addressed to ${bob.publicKey}, not to us (${carol.publicKey})`)
    const odd = sealed()
    odd.recipient = odd.recipient.subarray(0, 7)
    const err = failure(odd)
    expect([err.reason, err.message]).toEqual(['wrong-recipient', `envelope is addressed to a 7-byte key, not to us (${bob.publicKey})`])
  })

  it('a body that opens but is no Message is bad-message', () => {
    const envelope = sealed()
    // Bytes that are not protobuf (wire type 7 does not exist), sealed with the real key pair.
    const key = boxSharedKey(alice, bob.publicKey)
    envelope.contents!.body = xsalsa20poly1305(key, envelope.contents!.nonce).encrypt(Uint8Array.of(0x0f))
    const err = failure(envelope)
    expect(err.reason).toBe('bad-message')
    expect(err.message).toMatch(new RegExp(`^envelope from ${alice.publicKey.toString().replace(/[+/]/g, '\\$&')} opened but holds no valid Message: .+`))
  })
})

describe('isSyncEnvelope', () => {
  it('only the envelope with no sender, no recipient and no contents', () => {
    const sealed = sealMessage(message, PrivateKey.generate(), PrivateKey.generate().publicKey)
    expect(isSyncEnvelope(Envelope.create())).toBe(true)
    expect(isSyncEnvelope(Envelope.decode(Envelope.encode(Envelope.create()).finish()))).toBe(true)
    expect(isSyncEnvelope({ ...Envelope.create(), sender: sealed.sender })).toBe(false)
    expect(isSyncEnvelope({ ...Envelope.create(), recipient: sealed.recipient })).toBe(false)
    expect(isSyncEnvelope({ ...Envelope.create(), contents: sealed.contents })).toBe(false)
    expect(isSyncEnvelope(sealed)).toBe(false)
  })
})
