// Runs dist/bundle/cli.cjs with V8's code cache: Node 20 caches no compiled code by itself (its compile
// cache came in Node 22), so a start would parse and compile ~2 MB of JavaScript again each time. The build
// writes the cache (scripts/bundle.js runs `demo` once, which uses the code of the peer and server paths);
// a run whose cache V8 rejects (another Node, a changed bundle) or finds missing writes it anew, half a
// second after its start (a process killed with SIGKILL, as benchmarks and supervisors do, still leaves
// one) and again when it ends. V8 also rejects a cache made under other flags, so a run with its own Node
// options (NODE_OPTIONS, node --flag) keeps a cache file of its own instead of replacing the plain one.
// Where the directory is not writable (a global install run by another user) nothing is cached and the
// start is only slower.
import { createHash } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import Module from 'node:module'
import { dirname } from 'node:path'
import vm from 'node:vm'

interface BundleExports {
  runBundled(id: string, argv: string[], root: string): Promise<void>
  BUNDLED_COMMANDS: Readonly<Record<string, unknown>>
}

/**
 * The name the bundle calls instead of `import()` (scripts/bundle.js rewrites its dynamic imports of what
 * stays outside: Ink views, grpc-health-check). A vm.Script's own import() needs Node's experimental
 * vm loader option, which V8's code cache drops; a function of this module (dist/bundle/loader.cjs, beside
 * the bundle) has none of that, and the paths ('../ui/…', package names) resolve from there as they do
 * from the bundle.
 */
export const BUNDLE_IMPORT = '__cunicuImport'

function importOnDemand(specifier: string): Promise<unknown> {
  return import(specifier)
}

export type CodeCacheState = 'accepted' | 'rejected' | 'absent' | 'off'

export interface LoadedBundle {
  exports: BundleExports
  cache: CodeCacheState
}

/** Where the code cache of `bundleFile` is kept for this process's Node options. */
export function codeCacheFile(bundleFile: string, nodeOptions = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ').trim()): string {
  if (!nodeOptions) return `${bundleFile}.cache`
  return `${bundleFile}.${createHash('sha256').update(nodeOptions).digest('hex').slice(0, 12)}.cache`
}

const EARLY_WRITE_MS = 500

/** Compiles and evaluates the bundle, with its code cache (codeCacheFile) if V8 accepts it. */
export function loadBundle(bundleFile: string, useCache = process.env.CUNICU_CODE_CACHE !== '0'): LoadedBundle {
  const cacheFile = codeCacheFile(bundleFile)
  let cachedData: Buffer | undefined
  if (useCache) {
    try {
      cachedData = readFileSync(cacheFile)
    } catch {
      // No cache yet: this run writes one.
    }
  }
  // latin1: the build writes the bundle in ASCII only (scripts/bundle.js), so this is exact and skips UTF-8 decoding.
  const source = `(function (exports, require, module, __filename, __dirname, ${BUNDLE_IMPORT}) {${readFileSync(bundleFile, 'latin1')}\n})`
  const script = new vm.Script(source, { filename: bundleFile, ...(cachedData ? { cachedData } : {}) })
  const cache: CodeCacheState = !useCache ? 'off' : !cachedData ? 'absent' : script.cachedDataRejected ? 'rejected' : 'accepted'
  const module = { exports: {} as BundleExports }
  const wrapper = script.runInThisContext() as (exports: unknown, require: NodeRequire, module: unknown, filename: string, dirname: string, load: typeof importOnDemand) => void
  wrapper.call(module.exports, module.exports, Module.createRequire(bundleFile), module, bundleFile, dirname(bundleFile), importOnDemand)
  // At exit every function this run used is compiled: that is what the next start should not compile again.
  if (cache === 'absent' || cache === 'rejected' || process.env.CUNICU_CODE_CACHE === 'write') {
    setTimeout(() => writeCodeCache(cacheFile, script), EARLY_WRITE_MS).unref()
    process.once('exit', () => writeCodeCache(cacheFile, script))
  }
  return { exports: module.exports, cache }
}

function writeCodeCache(cacheFile: string, script: vm.Script): void {
  try {
    const temporary = `${cacheFile}.${process.pid}.tmp`
    writeFileSync(temporary, script.createCachedData())
    renameSync(temporary, cacheFile) // atomic: a concurrent start reads the old file or the new one, never half
  } catch {
    // Read-only install: run without a cache.
  }
}
