import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { BackendError, type Backend, type BackendOptions, type BackendStatus, type ReceivedMessage } from '../src/core/backend.js'
import { openBackend } from '../src/core/backends/index.js'
import { PrivateKey } from '../src/core/keys.js'
import { SignalingServer, type SignalingServerOptions } from '../src/core/server/signaling-server.js'
import { Message } from '../src/gen/signaling/signaling.js'
import { silentServer, unusedPort, type SilentServer } from './helpers/net.js'
import { hasOpenssl, selfSignedCert, type SelfSigned } from './helpers/tls.js'
import { deferred, waitUntil, withTimeout } from './helpers/wait.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function startServer(options: Partial<SignalingServerOptions> = {}): Promise<SignalingServer> {
  const server = await SignalingServer.start({ listen: '127.0.0.1:0', ...options })
  closers.push(() => server.close(200))
  return server
}

async function backend(url: string, options?: BackendOptions): Promise<Backend> {
  const b = await openBackend(url, options)
  closers.push(() => b.close())
  return b
}

const insecureUrl = (address: string): string => `grpc://${address}?insecure=true`
const candidate = (port: number): Message => Message.create({ candidate: { port } })

/** Subscribes `ours` to messages from `theirs`; `first` resolves on the first message. */
async function subscribeOnce(b: Backend, ours: PrivateKey, theirs: PrivateKey): Promise<{ first: Promise<ReceivedMessage> }> {
  const got = deferred<ReceivedMessage>()
  await b.subscribe({ ours, theirs: theirs.publicKey }, { onMessage: got.resolve })
  return { first: withTimeout(got.promise, 10_000, 'a message') }
}

function nextStatus(b: Backend, state: BackendStatus['state'], ms: number): Promise<BackendStatus> {
  const seen = deferred<BackendStatus>()
  const off = b.onStatus((s) => {
    if (s.state === state) seen.resolve(s)
  })
  return withTimeout(seen.promise, ms, `status ${state}`).finally(off)
}

describe('GrpcBackend', () => {
  it('resolves subscribe only once live, so a publish right after it arrives', async () => {
    const server = await startServer()
    const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
    const a = await backend(insecureUrl(server.address))
    const b = await backend(insecureUrl(server.address))
    const { first } = await subscribeOnce(a, alice, bob)
    expect(server.stats().subscribers).toBe(1)
    await b.publish(bob, alice.publicKey, candidate(4242))
    const msg = await first
    expect(msg.message.candidate?.port).toBe(4242)
    expect(msg.from.equals(bob.publicKey)).toBe(true)
    expect(msg.backend).toBe(insecureUrl(server.address))
  })

  it('opens one stream per key of ours, and unsubscribe cancels it', async () => {
    const server = await startServer()
    const [alice, bob, carol] = [PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()]
    const a = await backend(insecureUrl(server.address))
    const h1 = { onMessage: () => {} }
    const h2 = { onMessage: () => {} }
    await a.subscribe({ ours: alice, theirs: bob.publicKey }, h1)
    await a.subscribe({ ours: alice, theirs: carol.publicKey }, h2)
    expect(server.stats().subscribers).toBe(1)
    await a.unsubscribe({ ours: alice, theirs: bob.publicKey }, h1)
    expect(server.stats().subscribers).toBe(1)
    await a.unsubscribe({ ours: alice, theirs: carol.publicKey }, h2)
    await waitUntil(() => server.stats().subscribers === 0, 5000, 'the stream to be cancelled')
  })

  it('rejects subscribe to a port nobody listens on, quickly and clearly', async () => {
    const port = await unusedPort()
    const a = await backend(`grpc://127.0.0.1:${port}?insecure=true`, { connectTimeoutMs: 5000 })
    const err = await a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} }).catch((e) => e)
    expect(err).toBeInstanceOf(BackendError)
    // "Quickly" is the reason, not a clock: the refusal itself ended the attempt, not the 5 s connect deadline
    // (which would say "did not confirm the subscription within").
    expect(err.message).toMatch(new RegExp(`^backend grpc://127\\.0\\.0\\.1:${port} unreachable: connection refused \\(is \`cunicu-ts signal\` running\\?\\)`))
  })

  describe('against a server that accepts TCP but never answers', () => {
    let silent: SilentServer
    beforeAll(async () => {
      silent = await silentServer()
    })
    afterAll(() => silent.close())

    it('rejects subscribe after connectTimeoutMs', async () => {
      const a = await backend(`grpc://127.0.0.1:${silent.port}?insecure=true`, { connectTimeoutMs: 300 })
      const err = await a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} }).catch((e) => e)
      expect(err).toBeInstanceOf(BackendError)
      expect(err.message).toMatch(new RegExp(`backend grpc://127\\.0\\.0\\.1:${silent.port} did not confirm the subscription within 300 ms`))
    })

    it('settles a pending subscribe when the backend is closed', async () => {
      const a = await openBackend(`grpc://127.0.0.1:${silent.port}?insecure=true`, { connectTimeoutMs: 20_000 })
      const pending = a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} })
      await a.close()
      // Settled by the close (its reason), long before the 20 s connect deadline could have.
      await expect(withTimeout(pending, 5000, 'subscribe to settle')).rejects.toThrow(/closed before the subscription was live/)
    })

    it('rejects a pending subscribe when its signal aborts', async () => {
      const a = await backend(`grpc://127.0.0.1:${silent.port}?insecure=true`, { connectTimeoutMs: 20_000 })
      const abort = new AbortController()
      const pending = a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} }, abort.signal)
      abort.abort()
      await expect(withTimeout(pending, 5000, 'subscribe to settle')).rejects.toThrow(/aborted/)
    })

    it('rejects publish after publishTimeoutMs', async () => {
      const a = await backend(`grpc://127.0.0.1:${silent.port}?insecure=true`, { publishTimeoutMs: 300 })
      const err = await a.publish(PrivateKey.generate(), PrivateKey.generate().publicKey, candidate(1)).catch((e) => e)
      expect(err).toBeInstanceOf(BackendError)
      expect(err.message).toMatch(new RegExp(`publish to grpc://127\\.0\\.0\\.1:${silent.port} failed: did not answer within 300 ms`))
    })
  })

  it('rejects publish to a port nobody listens on, naming backend and reason', async () => {
    const port = await unusedPort()
    const a = await backend(`grpc://127.0.0.1:${port}?insecure=true`)
    const err = await a.publish(PrivateKey.generate(), PrivateKey.generate().publicKey, candidate(1)).catch((e) => e)
    expect(err).toBeInstanceOf(BackendError)
    expect(err.message).toMatch(new RegExp(`publish to grpc://127\\.0\\.0\\.1:${port} failed: unreachable: connection refused`))
  })

  it('reports a server-side rejection with its status', async () => {
    const server = await startServer({ limits: { maxEnvelopeBytes: 100 } })
    const a = await backend(insecureUrl(server.address))
    const big = Message.create({ credentials: { ufrag: 'x'.repeat(200), pwd: 'y' } })
    const err = await a.publish(PrivateKey.generate(), PrivateKey.generate().publicKey, big).catch((e) => e)
    expect(err).toBeInstanceOf(BackendError)
    expect(err.message).toMatch(/failed: RESOURCE_EXHAUSTED: envelope is \d+ bytes, over this server's limit of 100 bytes/)
  })

  it('re-subscribes after the server restarts on the same port', async () => {
    const first = await SignalingServer.start({ listen: '127.0.0.1:0' })
    closers.push(() => first.close(200))
    const port = first.address.split(':')[1]
    const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
    const a = await backend(insecureUrl(first.address), { connectTimeoutMs: 2000 })
    const messages: ReceivedMessage[] = []
    const arrived = deferred()
    await a.subscribe({ ours: alice, theirs: bob.publicKey }, {
      onMessage: (m) => {
        messages.push(m)
        arrived.resolve()
      },
    })

    const reconnecting = nextStatus(a, 'reconnecting', 10_000)
    await first.close(200)
    const status = await reconnecting
    expect(status).toMatchObject({ state: 'reconnecting', backend: insecureUrl(first.address) })
    if (status.state === 'reconnecting') {
      expect(status.reason).toMatch(/grpc:\/\/127\.0\.0\.1:\d+ /)
      expect(status.retryInMs).toBeGreaterThan(0)
      expect(status.retryInMs).toBeLessThanOrEqual(5000)
    }

    const connected = nextStatus(a, 'connected', 20_000)
    const second = await startServer({ listen: `127.0.0.1:${port}` })
    await connected
    expect(second.stats().subscribers).toBe(1)
    const b = await backend(insecureUrl(second.address))
    await b.publish(bob, alice.publicKey, candidate(7))
    await withTimeout(arrived.promise, 10_000, 'the message after the restart')
    expect(messages.map((m) => m.message.candidate?.port)).toEqual([7])
  }, 40_000)

  it('stops reconnecting on close, and close is idempotent', async () => {
    const server = await SignalingServer.start({ listen: '127.0.0.1:0' })
    closers.push(() => server.close(200))
    const a = await openBackend(insecureUrl(server.address))
    await a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} })
    const reconnecting = nextStatus(a, 'reconnecting', 10_000)
    await server.close(200)
    await reconnecting
    const closed = nextStatus(a, 'closed', 5000)
    await Promise.all([a.close(), a.close()])
    await closed
    await a.close()
    await expect(a.publish(PrivateKey.generate(), PrivateKey.generate().publicKey, candidate(1))).rejects.toThrow(/is closed/)
    await expect(a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} })).rejects.toThrow(/is closed/)
  })

  it('leaves no handle behind: a process that closed server and backends exits by itself', async () => {
    const script = fileURLToPath(new URL('./helpers/exit-check.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    closers.push(() => child.exitCode === null && child.kill())
    const code = await withTimeout(exit, 20_000, `the child to exit (output so far: ${output})`)
    expect(output).toContain('closed')
    expect(code).toBe(0)
  }, 30_000)

  it('rejects a bad query value', async () => {
    await expect(openBackend('grpc://127.0.0.1:1?insecure=maybe')).rejects.toThrow(/insecure=maybe is not true or false/)
  })

  describe('TLS', () => {
    let tls: SelfSigned
    beforeAll(() => {
      if (!hasOpenssl()) throw new Error('the TLS tests make a self-signed certificate with openssl: apt-get install -y openssl')
      tls = selfSignedCert()
    })
    afterAll(() => tls.cleanup())

    async function roundTrip(url: string, options?: BackendOptions): Promise<void> {
      const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
      const a = await backend(url, options)
      const { first } = await subscribeOnce(a, alice, bob)
      await a.publish(bob, alice.publicKey, candidate(443))
      expect((await first).message.candidate?.port).toBe(443)
    }

    it('connects with skip_verify=true to a self-signed server', async () => {
      const server = await startServer({ tls })
      await roundTrip(`grpc://${server.address}?skip_verify=true`)
    })

    it('verifies the server against caFile', async () => {
      const server = await startServer({ tls })
      await roundTrip(`grpc://${server.address}`, { caFile: tls.certFile })
    })

    it('rejects a self-signed server with system roots, saying how to proceed', async () => {
      const server = await startServer({ tls })
      const a = await backend(`grpc://${server.address}`, { connectTimeoutMs: 5000 })
      const err = await a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} }).catch((e) => e)
      expect(err).toBeInstanceOf(BackendError)
      expect(err.message).toMatch(/certificate/i)
      expect(err.message).toMatch(/skip_verify=true/)
    })

    it('fails clearly when a plain-text client meets a TLS server', async () => {
      const server = await startServer({ tls })
      const a = await backend(insecureUrl(server.address), { connectTimeoutMs: 1500 })
      const err = await a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} }).catch((e) => e)
      expect(err).toBeInstanceOf(BackendError)
      expect(err.message).toMatch(/TLS/)
      expect(err.message).toMatch(/insecure=true/)
    })

    it('fails clearly when a TLS client meets a plain-text server', async () => {
      const server = await startServer()
      const a = await backend(`grpc://${server.address}?skip_verify=true`, { connectTimeoutMs: 1500 })
      const err = await a.subscribe({ ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }, { onMessage: () => {} }).catch((e) => e)
      expect(err).toBeInstanceOf(BackendError)
      expect(err.message).toMatch(/plain text/)
      expect(err.message).toMatch(/insecure=true/)
    })
  })
})
