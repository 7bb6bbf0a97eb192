// `status -b URL`: health, build and round trip of a signaling server, for scripts: exit 0 when it
// serves, 3 when it cannot be reached; tried against a running server, a stopped one and a TLS one.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { killAll, runCli, startCli, type CliProcess } from './helpers/cli.js'
import { hasOpenssl, selfSignedCert, type SelfSigned } from './helpers/tls.js'

afterEach(killAll)

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

async function signal(extra: string[] = []): Promise<{ server: CliProcess; address: string }> {
  const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json', ...extra])
  const { address } = await server.waitForEvent((e) => e.type === 'listening')
  return { server, address }
}

describe('status', () => {
  it('a running signal: exit 0, serving, its build and a round-trip time', async () => {
    const { address } = await signal()
    const url = `grpc://${address}?insecure=true`
    const r = await runCli(['status', '-b', url, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const status = JSON.parse(r.stdout)
    expect(status).toMatchObject({ type: 'status', backend: url, reachable: true, ok: true, health: 'SERVING', build: { version } })
    expect(status.rttMs).toBeGreaterThan(0)
    expect(status.rttMs).toBeLessThan(5000)
  })

  it('a stopped signal: exit 3 with the reason; -q prints nothing', async () => {
    const { server, address } = await signal()
    process.kill(server.child.pid!, 'SIGTERM')
    expect(await server.exit()).toBe(143)
    const url = `grpc://${address}?insecure=true`
    const r = await runCli(['status', '-b', url, '--json'])
    expect(r.code).toBe(3)
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'status', reachable: false, ok: false, reason: 'unreachable: connection refused' })
    const quiet = await runCli(['status', '-q', '-b', url])
    expect(quiet).toMatchObject({ code: 3, stdout: '', stderr: '' })
  })

  it('several servers: exit 3 when any one is down, a line for each', async () => {
    const { address } = await signal()
    const r = await runCli(['status', '-b', `grpc://${address}?insecure=true`, '-b', 'grpc://127.0.0.1:9?insecure=true', '--json'])
    expect(r.code).toBe(3)
    expect(r.stdout.split('\n').map((l) => JSON.parse(l).ok)).toEqual([true, false])
  })

  it('a URL it cannot ask is a usage error (exit 2)', async () => {
    for (const url of ['inprocess:', 'not a url', 'grpc://127.0.0.1:8080?insecure=maybe']) {
      const r = await runCli(['status', '-b', url])
      expect(r.code, url).toBe(2)
      expect(r.stderr.trim().split('\n'), url).toHaveLength(1)
    }
  })
})

describe('status of a TLS signal', () => {
  let tls: SelfSigned
  beforeAll(() => {
    if (!hasOpenssl()) throw new Error('the TLS tests make a self-signed certificate with openssl: apt-get install -y openssl')
    tls = selfSignedCert()
  })
  afterAll(() => tls?.cleanup())

  it('serves with --ca-file or skip_verify; an unknown certificate is unreachable (exit 3) and says why', async () => {
    const { address } = await signal(['--tls-cert', tls.certFile, '--tls-key', join(tls.certFile, '..', 'key.pem')])
    const trusted = await runCli(['status', '-b', `grpc://${address}`, '--ca-file', tls.certFile, '--json'])
    expect(trusted.code, trusted.stderr).toBe(0)
    expect(JSON.parse(trusted.stdout)).toMatchObject({ ok: true, health: 'SERVING', build: { version } })
    expect((await runCli(['status', '-b', `grpc://${address}?skip_verify=true`])).code).toBe(0)
    const refused = await runCli(['status', '-b', `grpc://${address}`, '--json'])
    expect(refused.code).toBe(3)
    expect(JSON.parse(refused.stdout)).toMatchObject({ reachable: false, reason: expect.stringMatching(/certificate/i) })
    const plain = await runCli(['status', '-b', `grpc://${address}?insecure=true`, '--json', '--timeout', '3'])
    expect(plain.code).toBe(3)
  })
})
