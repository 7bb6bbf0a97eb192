// More than the first STUN/TURN server (server-gathering.ts): werift-ice would ask only the first of each.
// The order logic on its own, then an ICE agent on loopback whose first STUN server never answers and
// whose first TURN server is not there, next to working ones (a STUN stand-in; coturn on 127.0.0.1).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { classes, Message, methods, parseMessage } from 'werift-ice'
import { turnRestCredentials } from '../src/core/server/relay-registry.js'
import type { CandidateInfo } from '../src/core/session/events.js'
import { generateCredentials } from '../src/core/session/credentials.js'
import { IceAgent } from '../src/core/session/ice-agent.js'
import { parseStunServer, parseTurnServer } from '../src/core/session/ice-servers.js'
import { firstThatWorks } from '../src/core/session/server-gathering.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('firstThatWorks', () => {
  it('tries the servers in order and stops at the first result; each failure is told with its reason and the next server', async () => {
    const tried: string[] = []
    const failures: string[] = []
    const found = await firstThatWorks(
      ['down', 'empty', 'slow', 'good', 'unused'],
      async (server) => {
        tried.push(server)
        if (server === 'down') throw new Error('connection refused')
        if (server === 'empty') return undefined
        if (server === 'slow') return new Promise<string>(() => {})
        return `answer from ${server}`
      },
      { timeoutMs: 50, onFailure: ({ server, reason }, next) => failures.push(`${server}: ${reason} -> ${next}`) },
    )
    expect(found).toEqual({ server: 'good', result: 'answer from good' })
    expect(tried).toEqual(['down', 'empty', 'slow', 'good'])
    expect(failures).toEqual(['down: connection refused -> empty', 'empty: no answer -> slow', 'slow: no answer within 0.05 s -> good'])
  })

  it('gives undefined when every server fails, and stops early once aborted', async () => {
    const failures: (string | undefined)[] = []
    expect(await firstThatWorks(['a', 'b'], async () => undefined, { timeoutMs: 50, onFailure: (_f, next) => failures.push(next) })).toBeUndefined()
    expect(failures).toEqual(['b', undefined])
    let calls = 0
    const abort = new AbortController()
    const result = await firstThatWorks(['a', 'b', 'c'], async () => ((calls++, abort.abort()), undefined), { timeoutMs: 50, signal: abort.signal })
    expect(result).toBeUndefined()
    expect(calls).toBe(1)
  })

  it('an abort ends the wait for a server that never answers at once: no timeout, no failure reported', async () => {
    const abort = new AbortController()
    const failures: string[] = []
    // The server's timeout is an hour: had the abort not ended the wait, the test's own timeout would fail it.
    const timeoutMs = 3_600_000
    const tried: string[] = []
    const found = firstThatWorks(['silent', 'next'], (server) => (tried.push(server), new Promise<never>(() => {})), {
      timeoutMs,
      signal: abort.signal,
      onFailure: ({ reason }) => failures.push(reason),
    })
    setImmediate(() => abort.abort())
    expect(await found).toBeUndefined()
    expect(tried).toEqual(['silent'])
    expect(failures).toEqual([])
  })
})

/** A UDP socket on loopback; `answer` makes it a STUN server that reports the sender's address. */
async function udpServer(answer: boolean): Promise<{ socket: Socket; port: number; requests: number }> {
  const socket = createSocket('udp4')
  const state = { socket, port: 0, requests: 0 }
  socket.on('message', (data, rinfo) => {
    const request = parseMessage(data)
    if (!request || request.messageMethod !== methods.BINDING) return
    state.requests++
    if (!answer) return
    const response = new Message(methods.BINDING, classes.RESPONSE, request.transactionId).setAttribute('XOR-MAPPED-ADDRESS', [rinfo.address, rinfo.port]).addFingerprint()
    socket.send(response.bytes, rinfo.port, rinfo.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  state.port = socket.address().port
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())))
  return state
}

function agentWith(ice: ConstructorParameters<typeof IceAgent>[0]['ice']): { agent: IceAgent; candidates: CandidateInfo[]; errors: string[] } {
  const agent = new IceAgent({ controlling: true, local: generateCredentials(), remote: generateCredentials(), ice: { loopback: true, ...ice } })
  cleanups.push(() => agent.close())
  const candidates: CandidateInfo[] = []
  const errors: string[] = []
  agent.localCandidates.on((c) => candidates.push(c))
  agent.serverErrors.on((m) => errors.push(m))
  return { agent, candidates, errors }
}

describe('an ICE agent with several STUN/TURN servers', () => {
  it('the first STUN server never answers: the second one gives the server-reflexive candidate', async () => {
    const silent = await udpServer(false)
    const live = await udpServer(true)
    const stunServers = [silent, live].map((s) => parseStunServer(`stun:127.0.0.1:${s.port}`))
    const { agent, candidates, errors } = agentWith({ stunServers, serverTimeoutMs: 500 })
    await agent.gather()
    const host = candidates.find((c) => c.type === 'host')!
    expect(candidates.filter((c) => c.type === 'srflx')).toEqual([expect.objectContaining({ address: '127.0.0.1', port: host.port, relatedPort: host.port })])
    expect(silent.requests).toBeGreaterThan(0)
    expect(live.requests).toBeGreaterThan(0)
    expect(errors).toEqual([`STUN server stun:127.0.0.1:${silent.port}: no answer within 0.5 s; trying stun:127.0.0.1:${live.port}`])
  })

  it('the first STUN server answers: the others are never asked', async () => {
    const live = await udpServer(true)
    const spare = await udpServer(true)
    const { agent, candidates, errors } = agentWith({ stunServers: [live, spare].map((s) => parseStunServer(`stun:127.0.0.1:${s.port}`)), serverTimeoutMs: 500 })
    await agent.gather()
    expect(candidates.filter((c) => c.type === 'srflx')).toHaveLength(1)
    expect(spare.requests).toBe(0)
    expect(errors).toEqual([])
  })

  it('the first TURN server is not there: the relayed candidate comes from the second (coturn on 127.0.0.1)', async () => {
    const secret = 'server-gathering-test'
    const coturn = await startLoopbackCoturn(secret)
    const dead = await udpServer(false)
    const { username, password } = turnRestCredentials(secret, 'test', Math.floor(Date.now() / 1000) + 600)
    const turnServers = [dead.port, coturn.port].map((port) => parseTurnServer(`turn:127.0.0.1:${port}?username=${encodeURIComponent(username)}&password=${encodeURIComponent(password)}`))
    const { agent, candidates, errors } = agentWith({ turnServers, serverTimeoutMs: 1000 })
    await agent.gather()
    expect(candidates.filter((c) => c.type === 'relay')).toEqual([expect.objectContaining({ address: '127.0.0.1', relayProtocol: 'udp' })])
    expect(errors).toEqual([`TURN server turn:127.0.0.1:${dead.port}?transport=udp: no answer within 1 s; trying turn:127.0.0.1:${coturn.port}?transport=udp`])
  }, 30_000)

  it('turns: a relayed candidate over TLS (coturn on 127.0.0.1, our own CA); a certificate we do not trust is a failure', async () => {
    const secret = 'server-gathering-tls-test'
    const tls = selfSignedCertificate()
    const coturn = await startLoopbackCoturn(secret, { tls })
    const { username, password } = turnRestCredentials(secret, 'test', Math.floor(Date.now() / 1000) + 600)
    const server = parseTurnServer(`turns:127.0.0.1:${coturn.tlsPort}?username=${encodeURIComponent(username)}&password=${encodeURIComponent(password)}`)
    expect(server.transport).toBe('tls')
    const trusted = agentWith({ turnServers: [server], tlsCa: readFileSync(tls.cert), serverTimeoutMs: 3000 })
    await trusted.agent.gather()
    expect(trusted.candidates.filter((c) => c.type === 'relay')).toEqual([expect.objectContaining({ address: '127.0.0.1', relayProtocol: 'tls' })])
    expect(trusted.errors).toEqual([])
    // Without our CA the system roots do not know the certificate: no relay, and the reason is told.
    const untrusted = agentWith({ turnServers: [server], serverTimeoutMs: 3000 })
    await untrusted.agent.gather()
    expect(untrusted.candidates.filter((c) => c.type === 'relay')).toEqual([])
    expect(untrusted.errors).toEqual([expect.stringMatching(new RegExp(`^TURN server turns:127\\.0\\.0\\.1:${coturn.tlsPort}\\?transport=tcp: .*(certificate|self.signed)`, 'i'))])
  }, 30_000)

  it('the TURN server restarts: the refresh goes unanswered, renewed credentials (of that server, by URL) are tried, the candidate is reported lost', async () => {
    const secret = 'server-gathering-refresh-test'
    // Allocations of 6 s, refreshed after 5 s (5/6 of the lifetime).
    const extraConfig = ['max-allocate-lifetime=6']
    const first = await startLoopbackCoturn(secret, { extraConfig })
    const valid = () => turnRestCredentials(secret, 'test', Math.floor(Date.now() / 1000) + 600)
    const original = valid()
    const server = parseTurnServer(`turn:127.0.0.1:${first.port}?username=${encodeURIComponent(original.username)}&password=${encodeURIComponent(original.password)}`)
    const asked: string[] = []
    const renewed = turnRestCredentials(secret, 'renewed', Math.floor(Date.now() / 1000) + 900)
    const agent = new IceAgent({
      controlling: true,
      local: generateCredentials(),
      remote: generateCredentials(),
      ice: { loopback: true, turnServers: [server], serverTimeoutMs: 2000 },
      renewedTurnCredentials: (url) => (asked.push(url), renewed),
    })
    cleanups.push(() => agent.close())
    const relays: CandidateInfo[] = []
    agent.localCandidates.on((c) => c.type === 'relay' && relays.push(c))
    const lost = new Promise<{ candidate: CandidateInfo; reason: string }>((resolve) => agent.relayLost.on(resolve))
    await agent.gather()
    expect(relays).toHaveLength(1)
    // The TURN server restarts: its allocations are gone, so the next refresh is refused.
    first.stop()
    await startLoopbackCoturn(secret, { port: first.port, extraConfig })
    const { candidate, reason } = await withDeadline(lost, 25_000, 'the relayed candidate reported lost')
    expect(candidate).toEqual(relays[0])
    expect(asked).toContain(server.url)
    expect(new Set(asked)).toEqual(new Set([server.url]))
    // werift drops the new server's unauthenticated error answers, so the refusal arrives as silence.
    expect(reason).toMatch(/^the TURN server (refused to refresh the allocation \(4\d\d|did not answer refreshes before the allocation expired)/)
    console.log(`[server-gathering] relayed candidate lost after the TURN server restarted: ${reason}`)
  }, 45_000)
})

async function freePort(): Promise<number> {
  const probe = createSocket('udp4')
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve))
  const port = probe.address().port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

async function freeTcpPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** A self-signed certificate for 127.0.0.1 (the test's own CA), made with openssl. */
function selfSignedCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-turns-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' })
  if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr}`)
  return { cert, key }
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer))
}

/** Debian's turnserver on 127.0.0.1 (a port of its own), TURN REST credentials, killed by PID afterwards. */
async function startLoopbackCoturn(secret: string, options: { port?: number; extraConfig?: string[]; tls?: { cert: string; key: string } } = {}): Promise<{ port: number; tlsPort: number; stop: () => void }> {
  if (spawnSync('sh', ['-c', 'command -v turnserver']).status !== 0) throw new Error('missing turnserver (apt-get install coturn): .ci/run installs it')
  const port = options.port ?? (await freePort())
  const tlsPort = options.tls ? await freeTcpPort() : 0
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-coturn-lo-'))
  const config = [
    'listening-ip=127.0.0.1',
    'relay-ip=127.0.0.1',
    `listening-port=${port}`,
    'min-port=49152',
    'max-port=65535',
    'use-auth-secret',
    `static-auth-secret=${secret}`,
    'realm=cunicu-ts.test',
    'allow-loopback-peers',
    ...(options.tls ? [`tls-listening-port=${tlsPort}`, `cert=${options.tls.cert}`, `pkey=${options.tls.key}`] : ['no-tls', 'no-tcp']),
    'no-dtls',
    'no-cli',
    `userdb=${join(dir, 'turndb')}`,
    `pidfile=${join(dir, 'turn.pid')}`,
    `log-file=${join(dir, 'turn.log')}`,
    'simple-log', // the log file is exactly turn.log (its tail goes into a start-up failure)
    ...(options.extraConfig ?? []),
  ]
  writeFileSync(join(dir, 'turnserver.conf'), config.join('\n') + '\n')
  const child: ChildProcess = spawn('turnserver', ['-c', join(dir, 'turnserver.conf')], { stdio: 'ignore' })
  const stop = () => {
    if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  cleanups.push(stop)
  // Ready once it answers a STUN binding request (bounded: 300 tries, 100 ms apart: coturn with TLS can take
  // several seconds to start while the suite's other files load the cores).
  const socket = createSocket('udp4')
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())))
  const answered = new Promise<void>((resolve) => socket.on('message', () => resolve()))
  const logTail = () => {
    try {
      return readFileSync(join(dir, 'turn.log'), 'utf8').trim().split('\n').slice(-5).join(' | ')
    } catch {
      return 'no log'
    }
  }
  for (let i = 0; i < 300; i++) {
    socket.send(new Message(methods.BINDING, classes.REQUEST).addFingerprint().bytes, port, '127.0.0.1')
    const ready = await Promise.race([answered.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 100))])
    if (ready) return { port, tlsPort, stop }
    if (child.exitCode !== null) throw new Error(`turnserver exited with ${child.exitCode}: ${logTail()}`)
  }
  throw new Error(`turnserver did not answer on 127.0.0.1:${port} within 30 s: ${logTail()}`)
}
