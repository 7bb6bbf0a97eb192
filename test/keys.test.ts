import { existsSync, readFileSync } from 'node:fs'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { iceRole, KeyError, PrivateKey, PublicKey } from '../src/core/keys.js'
import { keyPairs, rolePairs } from './helpers/vectors.js'

describe('keys (vectors/keys.json)', () => {
  it.each(keyPairs.map((p, i) => [i, p] as const))('pair %i: public key of the private key matches libsodium', (_, pair) => {
    const key = PrivateKey.parse(pair.private)
    expect(key.publicKey.toString()).toBe(pair.public)
    expect(key.toBase64()).toBe(pair.private)
  })

  it('generates clamped keys with a matching public key', () => {
    const key = PrivateKey.generate()
    const raw = Buffer.from(key.toBase64(), 'base64')
    expect(raw.length).toBe(32)
    expect(raw[0]! & 7).toBe(0)
    expect(raw[31]! & 128).toBe(0)
    expect(raw[31]! & 64).toBe(64)
    expect(key.toBase64()).toHaveLength(44)
    expect(PrivateKey.parse(key.toBase64()).publicKey.equals(key.publicKey)).toBe(true)
    expect(PrivateKey.generate().toBase64()).not.toBe(key.toBase64())
  })

  it('rejects text that is not base64 and names the input', () => {
    expect(() => PublicKey.parse('not a key!', '--from')).toThrow(/--from "not a key!" is not valid base64/)
  })

  it('rejects base64 of the wrong length with the byte count', () => {
    expect(() => PublicKey.parse('AAAA', 'argument PEER')).toThrow(/argument PEER "AAAA" decodes to 3 bytes, but a key is 32 bytes/)
    expect(() => PublicKey.parse('')).toThrow(KeyError)
  })

  it('never echoes private key text in errors, strings or JSON', () => {
    const secret = 'x'.repeat(42) + '=='
    expect(() => PrivateKey.parse(secret, 'key file k')).toThrow(/key file k decodes to/)
    try {
      PrivateKey.parse(secret)
    } catch (err) {
      expect((err as Error).message).not.toContain(secret)
    }
    const key = PrivateKey.generate()
    const shown = [String(key), JSON.stringify({ key }), inspect(key)].join(' ')
    expect(shown).not.toContain(key.toBase64())
    expect(shown).toContain(key.publicKey.toString())
  })
})

describe('ICE role (vectors/role.json)', () => {
  it.each(rolePairs.map((p) => [p.case, p] as const))('%s', (_, pair) => {
    const a = PublicKey.parse(pair.a)
    const b = PublicKey.parse(pair.b)
    expect(iceRole(a, b)).toBe(pair.roleOfA)
    expect(iceRole(b, a)).toBe(pair.roleOfA === 'controlling' ? 'controlled' : 'controlling')
  })

  it('refuses equal keys', () => {
    const a = PrivateKey.generate().publicKey
    expect(() => iceRole(a, new PublicKey(a.bytes))).toThrow(/cannot open a session with itself/)
  })
})

describe('vector copies', () => {
  // test/vectors is a copy of the shared, libsodium-made set; when the shared set is beside the clone, they must agree.
  const shared = new URL('../../shared/vectors/', import.meta.url)
  it.runIf(existsSync(shared))('match ../shared/vectors byte for byte', () => {
    for (const name of ['box.json', 'keys.json', 'role.json']) {
      expect(readFileSync(new URL(`vectors/${name}`, import.meta.url), 'utf8')).toBe(readFileSync(new URL(name, shared), 'utf8'))
    }
  })
})
