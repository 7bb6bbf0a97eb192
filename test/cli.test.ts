// End-to-end: the built CLI as users and scripts run it.
import { mkdtempSync, statSync, writeFileSync, readFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, runCli, startCli } from './helpers/cli.js'

afterEach(killAll)

const tmp = () => mkdtempSync(join(tmpdir(), 'cunicu-ts-'))

describe('keygen and pubkey', () => {
  it('keygen | pubkey works like wg genkey | wg pubkey', async () => {
    const gen = await runCli(['keygen'])
    expect(gen.code).toBe(0)
    expect(gen.stdout).toMatch(/^[A-Za-z0-9+/]{43}=$/)
    const pub = await runCli(['pubkey'], { input: gen.stdout + '\n' })
    expect(pub.code).toBe(0)
    expect(pub.stdout).toBe(PrivateKey.parse(gen.stdout).publicKey.toString())
  })

  it('keygen --json prints both keys, consistent', async () => {
    const { code, stdout } = await runCli(['keygen', '--json'])
    expect(code).toBe(0)
    const { privateKey, publicKey } = JSON.parse(stdout)
    expect(PrivateKey.parse(privateKey).publicKey.toString()).toBe(publicKey)
  })

  it('keygen -o writes mode 0600 and refuses to overwrite without --force', async () => {
    const file = join(tmp(), 'peer.key')
    expect((await runCli(['keygen', '-o', file])).code).toBe(0)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const first = readFileSync(file, 'utf8')
    const again = await runCli(['keygen', '-o', file])
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/exists; pass --force/)
    expect(readFileSync(file, 'utf8')).toBe(first)
    expect((await runCli(['keygen', '-o', file, '--force'])).code).toBe(0)
    expect(readFileSync(file, 'utf8')).not.toBe(first)
    expect(statSync(file).mode & 0o777).toBe(0o600)
  })

  it('pubkey rejects bad input with exit 2 and a clear message, never echoing the secret', async () => {
    const bad = await runCli(['pubkey'], { input: 'c2VjcmV0\n' })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/private key on stdin decodes to 6 bytes, but a key is 32 bytes/)
    expect(bad.stderr).not.toContain('c2VjcmV0')
  })

  it('shows examples in --help', async () => {
    const help = await runCli(['keygen', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/EXAMPLES/)
    expect(help.stdout).toMatch(/keygen \| tee peer.key/)
  })

  it('keygen loads neither gRPC, Ink, React nor the ICE agent; without flags not even oclif', async () => {
    // Module by module (CUNICU_BUNDLE=0): in dist/bundle/cli.cjs the code is one file, so a trace of module
    // files cannot tell what ran (test/startup.test.ts checks the bundled start for what stays outside it).
    const imports = async (args: string[], bundle = '0') => {
      const trace = join(tmp(), 'imports.txt')
      const hook = new URL('./helpers/trace-imports.mjs', import.meta.url).pathname
      const { code, stdout } = await runCli(args, { env: { NODE_OPTIONS: `--import ${hook}`, TRACE_IMPORTS_FILE: trace, CUNICU_BUNDLE: bundle } })
      expect(code).toBe(0)
      expect(stdout).toContain('=')
      return readFileSync(trace, 'utf8')
    }
    const fast = await imports(['keygen'], '1') // the bundle is never read without flags
    expect(fast).toContain('/dist/core/key-generation.js') // the trace works
    expect(fast).not.toMatch(/@oclif|@grpc|\/ink\/|\/react\/|werift|@noble\/curves|bundle\/loader/)
    const withFlags = await imports(['keygen', '--json'])
    expect(withFlags).toContain('@oclif/core')
    expect(withFlags).not.toMatch(/@grpc|\/ink\/|\/react\/|werift/)
  })
})

describe('signal, subscribe and publish', () => {
  it('a message published by one peer reaches the other, decrypted, as NDJSON', async () => {
    const dir = tmp()
    const a = PrivateKey.generate()
    const b = PrivateKey.generate()
    writeFileSync(join(dir, 'a.key'), a.toBase64(), { mode: 0o600 })
    writeFileSync(join(dir, 'b.key'), b.toBase64(), { mode: 0o600 })

    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
    const { address } = await server.waitForEvent((e) => e.type === 'listening')
    expect(server.events[0]).toMatchObject({ type: 'listening', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) })
    const backend = `grpc://${address}?insecure=true`

    const sub = startCli(['subscribe', '-k', join(dir, 'b.key'), '-b', backend, '--from', a.publicKey.toString(), '--count', '2', '--json'])
    const subscribed = await sub.waitForEvent((e) => e.type === 'subscribed')
    expect(subscribed.key).toBe(b.publicKey.toString())

    const one = await runCli(['publish', '-k', join(dir, 'a.key'), '-b', backend, b.publicKey.toString(), '--message', '{"credentials":{"ufrag":"abcdefghijklmnop","pwd":"p","needCreds":true}}'])
    expect(one.code).toBe(0)
    const stream = await runCli(['publish', b.publicKey.toString()], {
      input: '{"candidate":{"type":"HOST","networkType":"UDP4","address":"127.0.0.1","port":51820,"component":1}}\n',
      env: { CUNICU_PRIVATE_KEY: a.toBase64(), CUNICU_BACKEND: backend },
    })
    expect(stream.code).toBe(0)
    expect(JSON.parse(stream.stdout)).toMatchObject({ type: 'published', to: b.publicKey.toString(), kind: 'candidate', line: 1 })

    expect(await sub.exit()).toBe(0)
    const messages = sub.events.filter((e) => e.type === 'message')
    expect(messages.map((m) => m.message)).toEqual([
      { credentials: { ufrag: 'abcdefghijklmnop', pwd: 'p', needCreds: true } },
      { candidate: { type: 'HOST', networkType: 'UDP4', address: '127.0.0.1', port: 51820, component: 1 } },
    ])
    expect(messages[0]).toMatchObject({ from: a.publicKey.toString(), to: b.publicKey.toString(), backend })

    server.child.kill('SIGTERM')
    expect(await server.exit()).toBe(143)
  })

  it('publish names the bad line, reports what was published, and exits 2', async () => {
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
    const { address } = await server.waitForEvent((e) => e.type === 'listening')
    const peer = PrivateKey.generate().publicKey.toString()
    const result = await runCli(['publish', '-b', `grpc://${address}?insecure=true`, peer], {
      input: '{"credentials":{"ufrag":"a"}}\n{"credentials":{"ufrag":"a","colour":"blue"}}\n{}\n',
      env: { CUNICU_PRIVATE_KEY: PrivateKey.generate().toBase64() },
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/line 2: unknown field "credentials.colour".*published 1 before it/s)
    expect(result.stdout.split('\n').filter(Boolean)).toHaveLength(1)
  })

  it('a flag oclif cannot parse is a usage error on one line (exit 2)', async () => {
    const r = await runCli(['session', '--timeout', 'abc', PrivateKey.generate().publicKey.toString()])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe('Error: Parsing --timeout: Expected an integer but received: abc: See more help with --help\n')
  })

  it('a bad peer key is a usage error naming the argument', async () => {
    const r = await runCli(['publish', 'not-a-key', '--message', '{}'], { env: { CUNICU_PRIVATE_KEY: PrivateKey.generate().toBase64() } })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/PEER_PK #1 "not-a-key" is not valid base64/)
  })

  it('a missing key is a one-line error with a hint', async () => {
    const r = await runCli(['subscribe', '--timeout', '1'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no private key: pass -k FILE/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('an unreachable backend fails with exit 3 and names the backend', async () => {
    const r = await runCli(['subscribe', '-b', 'grpc://127.0.0.1:9?insecure=true'], { env: { CUNICU_PRIVATE_KEY: PrivateKey.generate().toBase64() }, timeoutMs: 20_000 })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/grpc:\/\/127\.0\.0\.1:9/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('warns about a key file others can read', async () => {
    const file = join(tmp(), 'loose.key')
    writeFileSync(file, PrivateKey.generate().toBase64())
    chmodSync(file, 0o644)
    const r = await runCli(['subscribe', '-k', file, '-b', 'grpc://127.0.0.1:9?insecure=true'], { timeoutMs: 20_000 })
    expect(r.stderr).toMatch(/accessible by group or others \(mode 0644\)/)
  })
})
