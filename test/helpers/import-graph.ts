// The import graph of a TypeScript tree, static and lazy (`import()`) edges alike, and its cycles. Only
// relative imports count: packages cannot import us back. Type-only imports count too (`import type` is
// erased, but a cycle of types is still two files that cannot be understood one without the other).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'

export type ImportGraph = Map<string, Set<string>>

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return /\.tsx?$/.test(name) && !name.endsWith('.d.ts') ? [path] : []
  })
}

/** "./x.js" written in a .ts file names ./x.ts or ./x.tsx (NodeNext resolution). */
function resolveRelative(from: string, specifier: string): string | undefined {
  const base = resolve(dirname(from), specifier)
  const stem = base.replace(/\.(m|c)?js$/, '')
  return [`${stem}.ts`, `${stem}.tsx`, base, join(base, 'index.ts')].find((p) => existsSync(p) && statSync(p).isFile())
}

/** Edges between files of `root`, keyed and valued by paths relative to it. */
export function importGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map()
  for (const file of sourceFiles(root)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
    const targets = new Set<string>()
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue
      const target = resolveRelative(file, fileName)
      if (target) targets.add(relative(root, target))
    }
    graph.set(relative(root, file), targets)
  }
  return graph
}

/** The strongly connected components with more than one file, or one file that imports itself (Tarjan). */
export function importCycles(graph: ImportGraph): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (node: string): void => {
    index.set(node, next)
    low.set(node, next++)
    stack.push(node)
    onStack.add(node)
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to)
        low.set(node, Math.min(low.get(node)!, low.get(to)!))
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!))
      }
    }
    if (low.get(node) !== index.get(node)) return
    const component: string[] = []
    let member: string
    do {
      member = stack.pop()!
      onStack.delete(member)
      component.push(member)
    } while (member !== node)
    if (component.length > 1 || graph.get(node)?.has(node)) cycles.push(component.sort())
  }
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node)
  return cycles
}
