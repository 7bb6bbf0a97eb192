// The start-up shortcut around oclif's command sort (src/cli/plain-id-order.ts) must give localeCompare's
// order exactly, and only while it runs.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { plainIdOrder, withPlainIdOrder } from '../../src/cli/plain-id-order.js'

const manifest = JSON.parse(readFileSync(new URL('../../oclif.manifest.json', import.meta.url), 'utf8')) as { commands: Record<string, unknown> }

function randomId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz:'
  return Array.from({ length: 1 + Math.floor(Math.random() * 8) }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('')
}

describe('plain id order', () => {
  it("orders our command ids and 5,000 random ids over [a-z:] exactly as ICU's localeCompare does", () => {
    const ids = Object.keys(manifest.commands)
    expect(ids.length).toBeGreaterThan(5)
    const pairs: [string, string][] = ids.flatMap((a) => ids.map((b): [string, string] => [a, b]))
    for (let i = 0; i < 5000; i++) pairs.push([randomId(), randomId()])
    pairs.push(['pub', 'pubkey'], ['a:b', 'ab'], [':', 'a'], ['', 'a'])
    for (const [a, b] of pairs) expect(plainIdOrder(a, b), `${a} vs ${b}`).toBe(Math.sign(a.localeCompare(b)))
  })

  it('leaves anything else to ICU (upper case, digits, other characters, locales)', () => {
    expect(plainIdOrder('a', 'B')).toBeUndefined()
    expect(plainIdOrder('a1', 'a')).toBeUndefined()
    expect(plainIdOrder('a-b', 'a')).toBeUndefined()
    expect(plainIdOrder('é', 'e')).toBeUndefined()
  })

  it('applies only while its function runs, and the sort inside it matches the sort outside', async () => {
    const original = String.prototype.localeCompare
    const ids = Object.keys(manifest.commands).reverse()
    const outside = [...ids].sort((a, b) => a.localeCompare(b))
    const inside = await withPlainIdOrder(async () => {
      expect(String.prototype.localeCompare).not.toBe(original)
      expect('B'.localeCompare('a')).toBe(original.call('B', 'a')) // not a plain id: ICU's answer
      expect('a'.localeCompare('b', 'sv')).toBe(original.call('a', 'b', 'sv'))
      return [...ids].sort((a, b) => a.localeCompare(b))
    })
    expect(inside).toEqual(outside)
    expect(String.prototype.localeCompare).toBe(original)
  })
})
