// TLS end to end through the CLI: `signal --tls-cert/--tls-key`, clients trusting it through --ca-file or
// skipping verification, and a plain-text client told clearly what is wrong.
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, runCli, startCli, type CliProcess } from './helpers/cli.js'
import { hasOpenssl, selfSignedCert, type SelfSigned } from './helpers/tls.js'

afterEach(killAll)

let tls: SelfSigned
let server: CliProcess
let address: string
beforeAll(() => {
  if (!hasOpenssl()) throw new Error('the TLS tests make a self-signed certificate with openssl: apt-get install -y openssl')
  tls = selfSignedCert()
})
afterAll(() => tls?.cleanup())
// A server per test: afterEach kills every child the test started.
beforeEach(async () => {
  server = startCli(['signal', '--listen', '127.0.0.1:0', '--json', '--tls-cert', tls.certFile, '--tls-key', join(tls.certFile, '..', 'key.pem')])
  ;({ address } = await server.waitForEvent((e) => e.type === 'listening'))
})

async function roundTrip(url: string, extra: string[] = []): Promise<void> {
  const a = PrivateKey.generate()
  const b = PrivateKey.generate()
  const sub = startCli(['subscribe', '-b', url, '--count', '1', '--timeout', '20', '--json', ...extra], { env: { CUNICU_PRIVATE_KEY: b.toBase64() } })
  await sub.waitForEvent((e) => e.type === 'subscribed')
  const pub = await runCli(['publish', b.publicKey.toString(), '-b', url, '--message', '{"credentials":{"ufrag":"tls"}}', ...extra], { env: { CUNICU_PRIVATE_KEY: a.toBase64() } })
  expect(pub.code, pub.stderr).toBe(0)
  expect(await sub.exit()).toBe(0)
  expect(sub.events.find((e) => e.type === 'message')?.message).toEqual({ credentials: { ufrag: 'tls' } })
  // TLS to an IP address makes Node warn (DEP0123) on each connection; the CLI keeps that noise out.
  expect(sub.stderr + pub.stderr).not.toMatch(/DeprecationWarning/)
}

describe('signal with TLS', () => {
  it('says so in its listening line', () => {
    expect(server.events[0]).toMatchObject({ type: 'listening', tls: true })
  })

  it('is trusted through --ca-file', async () => {
    await roundTrip(`grpc://${address}`, ['--ca-file', tls.certFile])
  }, 30_000)

  it('works with ?skip_verify=true', async () => {
    await roundTrip(`grpc://${address}?skip_verify=true`)
  }, 30_000)

  it('refuses an unknown certificate by default, with a hint', async () => {
    const r = await runCli(['subscribe', '-b', `grpc://${address}`, '--timeout', '5'], { env: { CUNICU_PRIVATE_KEY: PrivateKey.generate().toBase64() }, timeoutMs: 20_000 })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/certificate/i)
    expect(r.stderr).toMatch(/skip_verify=true|CA file/)
  })

  it('tells a plain-text client what is wrong', async () => {
    const r = await runCli(['subscribe', '-b', `grpc://${address}?insecure=true`, '--timeout', '5'], { env: { CUNICU_PRIVATE_KEY: PrivateKey.generate().toBase64() }, timeoutMs: 20_000 })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(new RegExp(`grpc://${address.replace(/\./g, '\\.')}`))
    expect(r.stderr).toMatch(/is the server using TLS\? then drop \?insecure=true/)
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1)
    console.log(`plain text vs TLS: ${r.stderr.trim()}`)
  })
})
