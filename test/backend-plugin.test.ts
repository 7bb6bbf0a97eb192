// A backend written outside src/ (test/fixtures/spool-backend*.mjs) is registered through
// CUNICU_BACKEND_MODULES and used by the built CLI through `-b`, like a built-in one; its module, like the
// built-in ones, is loaded only when its scheme is used.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, runCli, startCli } from './helpers/cli.js'

const REGISTER = fileURLToPath(new URL('./fixtures/spool-backend.register.mjs', import.meta.url))
const TRACE_HOOK = fileURLToPath(new URL('./helpers/trace-imports.mjs', import.meta.url))

const dirs: string[] = []
const tmp = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-plugin-'))
  dirs.push(dir)
  return dir
}

afterEach(async () => {
  await killAll()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('a backend registered from outside the package', () => {
  it('carries a message from publish to subscribe through -b spool:///DIR, and loads no built-in backend', async () => {
    const dir = tmp()
    const spool = `spool://${join(dir, 'spool')}`
    const trace = join(dir, 'imports.txt')
    const a = PrivateKey.generate()
    const b = PrivateKey.generate()
    const env = { CUNICU_BACKEND_MODULES: REGISTER }

    const sub = startCli(['subscribe', '-b', spool, '--from', a.publicKey.toString(), '--count', '1', '--json'], {
      env: { ...env, CUNICU_PRIVATE_KEY: b.toBase64(), NODE_OPTIONS: `--import ${TRACE_HOOK}`, TRACE_IMPORTS_FILE: trace },
    })
    await sub.waitForEvent((e) => e.type === 'subscribed')

    const published = await runCli(['publish', '-b', spool, b.publicKey.toString(), '--message', '{"credentials":{"ufrag":"abcd","pwd":"p"}}'], {
      env: { ...env, CUNICU_PRIVATE_KEY: a.toBase64() },
    })
    expect(published.stderr).toBe('')
    expect(published.code).toBe(0)

    expect(await sub.exit()).toBe(0)
    const message = sub.events.find((e) => e.type === 'message')
    expect(message).toMatchObject({ from: a.publicKey.toString(), to: b.publicKey.toString(), backend: spool, message: { credentials: { ufrag: 'abcd', pwd: 'p' } } })

    const loaded = readFileSync(trace, 'utf8')
    expect(loaded).toContain('/test/fixtures/spool-backend.mjs')
    // (grpc-js itself is loaded anyway: the generated Envelope codec lives beside the gRPC client stubs.)
    expect(loaded).not.toMatch(/\/dist\/core\/backends\/(grpc|multicast|inprocess)\.js/)
  })

  it('is registered but not loaded while another scheme is used', async () => {
    const dir = tmp()
    const trace = join(dir, 'imports.txt')
    const key = PrivateKey.generate()
    // An inprocess publish has nobody to reach, but it opens the backend and succeeds.
    const result = await runCli(['publish', '-b', 'inprocess:', key.publicKey.toString(), '--message', '{"credentials":{"ufrag":"abcd","pwd":"p"}}'], {
      env: { CUNICU_BACKEND_MODULES: REGISTER, CUNICU_PRIVATE_KEY: key.toBase64(), NODE_OPTIONS: `--import ${TRACE_HOOK}`, TRACE_IMPORTS_FILE: trace },
    })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const loaded = readFileSync(trace, 'utf8')
    expect(loaded).toContain('/test/fixtures/spool-backend.register.mjs')
    expect(loaded).toContain('/dist/core/backends/inprocess.js')
    expect(loaded).not.toContain('/test/fixtures/spool-backend.mjs')
  })

  it('without the variable, the scheme is unknown: exit 2 naming it and the known ones', async () => {
    const key = PrivateKey.generate()
    const result = await runCli(['publish', '-b', 'spool:///tmp/nowhere', key.publicKey.toString(), '--message', '{"credentials":{"ufrag":"abcd","pwd":"p"}}'], {
      env: { CUNICU_PRIVATE_KEY: key.toBase64() },
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/unknown scheme "spool:" \(known: grpc:, inprocess:, multicast:\)/)
  })

  it('a module that cannot be loaded, or that registers a built-in scheme again, is exit 2 with one line', async () => {
    const dir = tmp()
    const missing = await runCli(['publish', '--help'], { env: { CUNICU_BACKEND_MODULES: join(dir, 'nosuch.mjs') } })
    expect(missing.code).toBe(2)
    expect(missing.stderr.trim()).toMatch(new RegExp(`^Error: CUNICU_BACKEND_MODULES: cannot load ${join(dir, 'nosuch.mjs')}: `))
    expect(missing.stderr.trim().split('\n')).toHaveLength(1)

    const clash = join(dir, 'clash.mjs')
    const registry = new URL('../dist/core/backends/index.js', import.meta.url).href
    writeFileSync(clash, `import { registerBackend } from '${registry}'\nregisterBackend('grpc', () => import('./nothing.mjs'))\n`)
    const clashed = await runCli(['publish', '--help'], { env: { CUNICU_BACKEND_MODULES: clash } })
    expect(clashed.code).toBe(2)
    expect(clashed.stderr.trim()).toBe(`Error: CUNICU_BACKEND_MODULES: cannot load ${clash}: backend scheme "grpc:" is already registered`)
  })
})
