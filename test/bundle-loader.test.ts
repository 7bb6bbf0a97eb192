// The bundled start (bin/run.js → src/cli/bundle-loader.ts → dist/bundle/cli.cjs): V8's code cache is written
// when missing, used when valid, replaced when V8 rejects it, and the bundle's dynamic imports (the Ink views,
// grpc-health-check) work with and without a cache. Each load runs in a fresh node process, as a start does.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BUNDLE_IMPORT, codeCacheFile } from '../src/cli/bundle-loader.js'

const LOADER = new URL('../dist/bundle/loader.cjs', import.meta.url).href // what bin/run.js loads
const CLI = new URL('../bin/run.js', import.meta.url).pathname
const BUILT_BUNDLE = new URL('../dist/bundle/cli.cjs', import.meta.url).pathname

/** Loads `bundle` in a new process; returns the cache state it reported and what the bundle printed. */
function load(bundle: string, nodeOptions: string[] = []): { cache: string; out: string } {
  // A script file, not -e: Node options (execArgv) choose the cache file, and this run should have none.
  const script = join(dirname(bundle), 'load.mjs')
  writeFileSync(script, `const { loadBundle } = await import(${JSON.stringify(LOADER)}); const b = loadBundle(${JSON.stringify(bundle)}); console.log('cache=' + b.cache); await b.exports.done`)
  const env: NodeJS.ProcessEnv = { ...process.env, CUNICU_CODE_CACHE: '1' }
  delete env.NODE_OPTIONS
  const r = spawnSync(process.execPath, [...nodeOptions, script], { encoding: 'utf8', timeout: 20_000, env })
  expect(r.status, r.stderr).toBe(0)
  return { cache: /cache=(\w+)/.exec(r.stdout)?.[1] ?? '', out: r.stdout }
}

describe('bundle loader', () => {
  it('writes the code cache when missing, uses it next time, and replaces it when the bundle changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-bundle-'))
    const bundle = join(dir, 'cli.cjs')
    // A dynamic import through the loader's function, as scripts/bundle.js rewrites them.
    const body = (n: number) =>
      `function work(x) { return x * ${n} }\nexports.done = ${BUNDLE_IMPORT}('node:path').then((p) => console.log('imported=' + typeof p.join + ' work=' + work(2)))\n`
    writeFileSync(bundle, body(21))
    const first = load(bundle)
    expect(first.cache).toBe('absent')
    expect(first.out).toContain('imported=function work=42')
    expect(existsSync(`${bundle}.cache`)).toBe(true)

    const second = load(bundle)
    expect(second.cache).toBe('accepted')
    expect(second.out).toContain('imported=function work=42')

    const before = readFileSync(`${bundle}.cache`)
    writeFileSync(bundle, body(2) + '// another build\n'.repeat(50))
    const third = load(bundle)
    expect(third.cache).toBe('rejected') // V8 checks the source: an old cache is never run against new code
    expect(third.out).toContain('imported=function work=4')
    expect(readFileSync(`${bundle}.cache`).equals(before)).toBe(false)
    expect(load(bundle).cache).toBe('accepted')

    // Other Node options (V8 would reject the plain cache): a cache file of their own, the plain one kept.
    const plain = readFileSync(`${bundle}.cache`)
    const flagged = load(bundle, ['--stack-size=2000'])
    expect(flagged.cache).toBe('absent')
    expect(existsSync(codeCacheFile(bundle, '--stack-size=2000'))).toBe(true)
    expect(load(bundle, ['--stack-size=2000']).cache).toBe('accepted')
    expect(readFileSync(`${bundle}.cache`).equals(plain)).toBe(true)
    expect(load(bundle).cache).toBe('accepted')
  })

  it('names the cache by the Node options: none is the plain file, each set of options its own', () => {
    expect(codeCacheFile('/x/cli.cjs', '')).toBe('/x/cli.cjs.cache')
    const a = codeCacheFile('/x/cli.cjs', '--max-old-space-size=64')
    const b = codeCacheFile('/x/cli.cjs', '--stack-size=2000')
    expect(a).toMatch(/^\/x\/cli\.cjs\.[0-9a-f]{12}\.cache$/)
    expect(a).not.toBe(b)
    expect(codeCacheFile('/x/cli.cjs', '--stack-size=2000')).toBe(b)
  })

  it('a run killed before it ends has still written the cache (half a second in)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-bundle-kill-'))
    const bundle = join(dir, 'cli.cjs')
    writeFileSync(bundle, `exports.done = new Promise(() => setInterval(() => {}, 1000))\n`) // runs until killed
    writeFileSync(join(dir, 'load.mjs'), `const { loadBundle } = await import(${JSON.stringify(LOADER)}); loadBundle(${JSON.stringify(bundle)}); console.log('loaded')`)
    const env: NodeJS.ProcessEnv = { ...process.env, CUNICU_CODE_CACHE: '1' }
    delete env.NODE_OPTIONS
    const child = spawn(process.execPath, [join(dir, 'load.mjs')], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
      for (let i = 0; i < 50 && !existsSync(`${bundle}.cache`); i++) await new Promise((r) => setTimeout(r, 100))
      expect(existsSync(`${bundle}.cache`)).toBe(true)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('the built CLI starts from the bundle with the cache the build wrote; --help and CUNICU_BUNDLE=0 do not', () => {
    expect(existsSync(BUILT_BUNDLE)).toBe(true)
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-bundle-cli-'))
    const run = (args: string[], extra: Record<string, string> = {}) =>
      spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, CUNICU_DEBUG_START: '1', ...extra } })
    const keygen = run(['keygen', '-o', join(dir, 'a.key')])
    expect(keygen.status, keygen.stderr).toBe(0)
    expect(keygen.stderr).toContain('bundle: keygen, code cache accepted')
    const help = run(['session', '--help'])
    expect(help.status).toBe(0)
    expect(help.stderr).not.toContain('bundle:')
    expect(help.stdout).toContain('USAGE')
    const off = run(['keygen', '-o', join(dir, 'b.key')], { CUNICU_BUNDLE: '0' })
    expect(off.status).toBe(0)
    expect(off.stderr).not.toContain('bundle:')
    for (const key of ['a.key', 'b.key']) expect(readFileSync(join(dir, key), 'utf8')).toMatch(/^[A-Za-z0-9+/]{43}=\n$/) // both ways write a key
  })

  it('the built bundle is ASCII only, so reading it as latin1 (the loader does) gives exactly its text', () => {
    const bytes = readFileSync(BUILT_BUNDLE)
    const firstNonAscii = bytes.findIndex((byte) => byte > 0x7f)
    expect(firstNonAscii, firstNonAscii >= 0 ? bytes.subarray(Math.max(0, firstNonAscii - 60), firstNonAscii + 20).toString('utf8') : '').toBe(-1)
    expect(bytes.toString('latin1')).toBe(bytes.toString('utf8'))
  })
})
