// The edges of keys.ts and shared-key-cache.ts that the vector tests do not reach (mutation testing showed
// them untested): the zero key, comparison of keys that differ late or in length, the exact error texts
// users see, redaction, and the cache's LRU order.
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { generatePrivateKeyBytes } from '../../src/core/key-generation.js'
import { compareKeyBytes, iceRole, KeyError, PrivateKey, PublicKey } from '../../src/core/keys.js'
import { boxSharedKey, SharedKeyCache } from '../../src/core/shared-key-cache.js'

const bytes = (...values: number[]): Uint8Array => {
  const key = new Uint8Array(32)
  values.forEach((v, i) => (key[i] = v))
  return key
}
const lastByte = (value: number): Uint8Array => {
  const key = new Uint8Array(32)
  key[31] = value
  return key
}

describe('PublicKey', () => {
  it('isAny only for the all-zero key (cunīcu\'s any-sender key)', () => {
    expect(PublicKey.ANY.isAny).toBe(true)
    expect(new PublicKey(lastByte(1)).isAny).toBe(false)
    expect(new PublicKey(bytes(1)).isAny).toBe(false)
  })

  it('refuses anything but 32 bytes, naming the length', () => {
    expect(() => new PublicKey(new Uint8Array(31))).toThrow(new KeyError('a key must be 32 bytes, got 31'))
    expect(() => new PrivateKey(new Uint8Array(33))).toThrow(new KeyError('a key must be 32 bytes, got 33'))
  })

  it('copies its bytes, prints as base64, JSON as base64, and a short form of 8 characters', () => {
    const raw = bytes(0xfb, 0xff)
    const key = new PublicKey(raw)
    raw[0] = 0
    expect(key.bytes[0]).toBe(0xfb)
    expect(key.toString()).toBe('+/8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')
    expect(JSON.stringify({ key })).toBe('{"key":"+/8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}')
    expect(key.short).toBe('+/8AAAAA')
    expect(key.equals(bytes(0xfb, 0xff))).toBe(true)
    expect(key.equals(new PublicKey(bytes(0xfb, 0xfe)))).toBe(false)
  })

  it('parse errors name the input and say what was expected', () => {
    expect(() => PublicKey.parse('  ')).toThrow(new KeyError('public key is empty: expected 44 characters of base64 (like `wg genkey` prints)'))
    expect(() => PrivateKey.parse('')).toThrow(new KeyError('private key is empty: expected 44 characters of base64 (like `wg genkey` prints)'))
    expect(() => PublicKey.parse('AAA')).toThrow(new KeyError('public key "AAA" is not valid base64: expected 44 characters like `wg genkey` prints'))
    // Base64 characters inside other text are not base64: the whole text must be.
    expect(() => PublicKey.parse('!AAA')).toThrow(new KeyError('public key "!AAA" is not valid base64: expected 44 characters like `wg genkey` prints'))
    expect(() => PublicKey.parse('AAA!')).toThrow(new KeyError('public key "AAA!" is not valid base64: expected 44 characters like `wg genkey` prints'))
    // Long input is cut at 60 characters in the message.
    const long = 'A'.repeat(64)
    expect(() => PublicKey.parse(long)).toThrow(new KeyError(`public key "${'A'.repeat(60)}…" decodes to 48 bytes, but a key is 32 bytes`))
    const sixty = 'A'.repeat(60)
    expect(() => PublicKey.parse(sixty)).toThrow(new KeyError(`public key "${sixty}" decodes to 45 bytes, but a key is 32 bytes`))
    // Surrounding white space (a key file's newline) is not part of the key.
    const key = PrivateKey.generate()
    expect(PublicKey.parse(`  ${key.publicKey}\n`).equals(key.publicKey)).toBe(true)
    expect(PrivateKey.parse(`${key.toBase64()}\n`).toBase64()).toBe(key.toBase64())
  })

  it('errors are KeyErrors by name, so they print as such', () => {
    expect(new KeyError('x').name).toBe('KeyError')
  })
})

describe('PrivateKey redaction', () => {
  it('toString, JSON and inspect show only the public key', () => {
    const key = PrivateKey.generate()
    const shown = `PrivateKey(public=${key.publicKey})`
    expect(String(key)).toBe(shown)
    expect(key.toJSON()).toBe(shown)
    expect(JSON.stringify([key])).toBe(JSON.stringify([shown]))
    expect(inspect(key)).toBe(shown)
  })
})

describe('compareKeyBytes and iceRole', () => {
  it('compares unsigned, byte by byte, up to the last byte, then by length', () => {
    expect(compareKeyBytes(lastByte(1), lastByte(2))).toBeLessThan(0)
    expect(compareKeyBytes(lastByte(2), lastByte(1))).toBeGreaterThan(0)
    expect(compareKeyBytes(bytes(0x80), bytes(0x7f))).toBeGreaterThan(0)
    expect(compareKeyBytes(lastByte(7), lastByte(7))).toBe(0)
    expect(compareKeyBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBeLessThan(0)
    expect(compareKeyBytes(new Uint8Array([1, 2, 0]), new Uint8Array([1, 2]))).toBeGreaterThan(0)
    expect(compareKeyBytes(new Uint8Array([1, 3]), new Uint8Array([1, 2, 0]))).toBeGreaterThan(0)
  })

  it('the smaller key controls, also when the keys differ only in the last byte', () => {
    const small = new PublicKey(lastByte(1))
    const large = new PublicKey(lastByte(2))
    expect(iceRole(small, large)).toBe('controlling')
    expect(iceRole(large, small)).toBe('controlled')
    expect(() => iceRole(small, new PublicKey(lastByte(1)))).toThrow(new KeyError(`our public key and the peer's are the same (${small}): a peer cannot open a session with itself`))
  })
})

describe('SharedKeyCache', () => {
  it('returns the computed crypto_box_beforenm key and the same key on a hit', () => {
    const cache = new SharedKeyCache(2)
    const a = PrivateKey.generate()
    const b = PrivateKey.generate()
    const first = cache.get(a, b.publicKey)
    expect(first).toEqual(boxSharedKey(a, b.publicKey))
    expect(cache.get(a, b.publicKey)).toBe(first) // the cached array, not a recomputation
    expect(boxSharedKey(b, a.publicKey)).toEqual(first) // both ends share it
    expect(cache.size).toBe(1)
  })

  it('evicts the least recently used pair, where a hit counts as a use', () => {
    const cache = new SharedKeyCache(2)
    const ours = PrivateKey.generate()
    const [x, y, z] = [PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()].map((k) => k.publicKey) as [PublicKey, PublicKey, PublicKey]
    const kx = cache.get(ours, x)
    const ky = cache.get(ours, y)
    expect(cache.get(ours, x)).toBe(kx) // x is now the most recently used
    cache.get(ours, z) // evicts y, not x
    expect(cache.size).toBe(2)
    expect(cache.get(ours, x)).toBe(kx)
    const again = cache.get(ours, y)
    expect(again).not.toBe(ky) // recomputed: it had been evicted
    expect(again).toEqual(ky)
  })
})

describe('generatePrivateKeyBytes', () => {
  it('clamps like wg genkey: low 3 bits and the top bit clear, bit 254 set; the rest stays random', () => {
    const keys = Array.from({ length: 64 }, () => generatePrivateKeyBytes())
    for (const k of keys) {
      expect(k).toHaveLength(32)
      expect(k[0]! & 0b111).toBe(0)
      expect(k[31]! & 0x80).toBe(0)
      expect(k[31]! & 0x40).toBe(0x40)
    }
    // Clamping touches 5 bits; 64 keys alike in what is left would mean the clamp overwrote it.
    expect(new Set(keys.map((k) => k[31]! & 0x3f)).size).toBeGreaterThan(1)
    expect(new Set(keys.map((k) => k[0]! >> 3)).size).toBeGreaterThan(1)
  })
})
