// What a command loads is what its flags need: NDJSON output loads no Ink/React, no backend's code loads
// without that backend, the Redis client only with `signal --cluster`, and werift-ice's mDNS resolver
// (multicast-dns) only when an mDNS candidate must be resolved, never on the way to the first envelope.
// Both ways a command starts are checked: from dist/bundle/cli.cjs (the default: one file, V8's code cache;
// Ink, Redis and multicast-dns stay outside it, so the traces see them if they load) and module by module
// (CUNICU_BUNDLE=0, which is also how outside backends run).
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { afterEach, describe, expect, it } from 'vitest'
import { deferMulticastDns } from '../src/cli/defer-multicast-dns.js'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, runCli, startCli } from './helpers/cli.js'

afterEach(killAll)

const ESM_HOOK = new URL('./helpers/trace-imports.mjs', import.meta.url).pathname
const CJS_HOOK = new URL('./helpers/trace-requires.cjs', import.meta.url).pathname

/** Runs the CLI with both module tracers; returns its exit code and every module file it loaded. */
async function loaded(args: string[], env: Record<string, string> = {}, bundled = false): Promise<{ code: number | null; modules: string }> {
  const trace = join(mkdtempSync(join(tmpdir(), 'cunicu-ts-startup-')), 'modules.txt')
  const { code } = await runCli(args, { env: { ...env, NODE_OPTIONS: `--import ${ESM_HOOK} --require ${CJS_HOOK}`, TRACE_IMPORTS_FILE: trace, CUNICU_BUNDLE: bundled ? '1' : '0' }, timeoutMs: 30_000 })
  return { code, modules: readFileSync(trace, 'utf8') }
}

const VIEWS = /\/node_modules\/(ink|react|yoga-layout)\//
const MDNS = /\/node_modules\/(multicast-dns|dns-packet|thunky)\//

const BUNDLE_LOADER = /\/dist\/bundle\/loader\.cjs/
const UNBUNDLED_CORE = /\/dist\/core\//

describe.each([
  { way: 'bundled', bundled: true },
  { way: 'module by module', bundled: false },
])('start-up loads only what the flags need ($way)', ({ bundled }) => {
  /** The traces see the code: module files when unbundled, the bundle's loader and its requires when bundled. */
  function expectWay(modules: string): void {
    if (bundled) {
      expect(modules).toMatch(BUNDLE_LOADER)
      expect(modules).not.toMatch(UNBUNDLED_CORE)
    } else {
      expect(modules).not.toMatch(BUNDLE_LOADER)
    }
  }

  it('session --json to a grpc:// server: gRPC and werift-ice, but no Ink/React, no multicast code, no Redis', async () => {
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
    const { address } = await server.waitForEvent((e) => e.type === 'listening')
    const { code, modules } = await loaded(
      ['session', PrivateKey.generate().publicKey.toString(), '-b', `grpc://${address}?insecure=true`, '--loopback', '--timeout', '1', '--json'],
      { CUNICU_PRIVATE_KEY: PrivateKey.generate().toBase64() },
      bundled,
    )
    expect(code).toBe(4) // no peer came: the timeout, after the first envelope went out
    expectWay(modules)
    if (!bundled) {
      expect(modules).toMatch(/\/node_modules\/@grpc\/grpc-js\//) // the traces work, for ESM and CommonJS
      expect(modules).toMatch(/\/node_modules\/werift-ice\/lib\/ice\/src\/dns\/lookup\.js/)
    } else {
      expect(modules).toMatch(/^(node:)?(http2|dgram)$/m) // the bundle's gRPC client and ICE agent ran
    }
    expect(modules).not.toMatch(MDNS)
    expect(modules).not.toMatch(VIEWS)
    expect(modules).not.toMatch(/\/dist\/core\/backends\/(multicast|inprocess|multi)\.js|\/node_modules\/(@redis|redis)\//)
  })

  it('subscribe --json loads no ICE agent and no views', async () => {
    const { code, modules } = await loaded(['subscribe', '-b', 'grpc://127.0.0.1:9?insecure=true', '--timeout', '1', '--json'], { CUNICU_PRIVATE_KEY: PrivateKey.generate().toBase64() }, bundled)
    expect(code).toBe(3) // nothing listens on port 9
    expectWay(modules)
    if (!bundled) expect(modules).toMatch(/\/dist\/core\/backends\/grpc\.js/)
    else expect(modules).not.toMatch(/^(node:)?dgram$/m) // no ICE agent ran in the bundle
    expect(modules).not.toMatch(/werift-ice|\/dist\/core\/session\//)
    expect(modules).not.toMatch(VIEWS)
  })

  it('signal without --cluster loads no Redis client; status loads no ICE agent', async () => {
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
    const { address } = await server.waitForEvent((e) => e.type === 'listening')
    const status = await loaded(['status', '-b', `grpc://${address}?insecure=true`, '--json'], {}, bundled)
    expect(status.code).toBe(0)
    expectWay(status.modules)
    expect(status.modules).toMatch(/grpc-health-check/)
    expect(status.modules).not.toMatch(/werift-ice|\/node_modules\/(@redis|redis)\/|\/node_modules\/(ink|react)\//)
    if (bundled) expect(status.modules).not.toMatch(/^(node:)?dgram$/m)
  })
})

describe('the multicast-dns stand-in werift-ice gets', () => {
  it('loads the real module on its first call, and works', async () => {
    deferMulticastDns()
    deferMulticastDns() // idempotent
    const fromWerift = createRequire(new URL('../node_modules/werift-ice/lib/ice/src/dns/lookup.js', import.meta.url))
    const real = fromWerift.resolve('multicast-dns')
    delete fromWerift.cache[real]
    const standIn = fromWerift('multicast-dns') as (options: object) => { destroy(cb: () => void): void; on(e: string, f: () => void): void }
    expect(fromWerift.cache[real]).toBeUndefined()
    // Unicast on loopback, port 0: no multicast group is joined, nothing leaves the host.
    const mdns = standIn({ multicast: false, bind: '127.0.0.1', interface: '127.0.0.1', port: 0 })
    expect(fromWerift.cache[real]).toBeDefined()
    await new Promise<void>((resolve) => mdns.on('ready', resolve))
    await new Promise<void>((resolve) => mdns.destroy(resolve))
    expect(createRequire(import.meta.url)('node:path')).toBeDefined() // other requests pass through
  })
})
