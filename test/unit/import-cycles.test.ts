// No import cycle in src/, static or lazy: a cycle makes module load order matter and hides which file owns
// an idea (the old backend.ts named every backend, and every backend imported backend.ts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { importCycles, importGraph } from '../helpers/import-graph.js'

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))

describe('import cycles', () => {
  it('src/ has none, counting lazy import() edges', () => {
    const graph = importGraph(SRC)
    expect(graph.get('core/backend-registry.ts')).toContain('core/backends/multi.ts') // lazy edges are read
    expect(graph.get('core/backends/index.ts')).toContain('core/backends/grpc.ts')
    expect(importCycles(graph)).toEqual([])
  })

  describe('the checker', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-cycles-'))
    afterAll(() => rmSync(dir, { recursive: true, force: true }))

    it('finds a cycle closed by a lazy import, and a file that imports itself', () => {
      mkdirSync(join(dir, 'backends'))
      writeFileSync(join(dir, 'registry.ts'), "export const load = () => import('./backends/one.js')\n")
      writeFileSync(join(dir, 'backends/one.ts'), "import { load } from '../registry.js'\nexport const one = load\n")
      writeFileSync(join(dir, 'self.ts'), "export const self = () => import('./self.js')\n")
      writeFileSync(join(dir, 'leaf.ts'), "import type { one } from './backends/one.js'\nexport type Leaf = typeof one\n")
      expect(importCycles(importGraph(dir))).toEqual([['backends/one.ts', 'registry.ts'], ['self.ts']])
    })
  })
})
