// Ctrl-C never waits for a timeout (issue 13, item 6): each command is started against a gRPC server that
// accepts TCP but never speaks HTTP/2, so every call it makes hangs until its deadline; SIGINT while that call
// is in flight must end the process with 130 before the deadline could have passed, and the deadline's own
// error ("no answer within …") must never appear. The CLI's stop has a fallback (BaseCommand ends a process
// whose clean-up left a handle, 1 s after it), so the core calls are also checked in the process, where only
// their own AbortSignal can end them.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../src/core/backends/grpc.js'
import { openBackend } from '../src/core/backends/index.js'
import { probeServer } from '../src/core/server-status.js'
import { DEFAULT_FETCH_RELAYS_TIMEOUT_MS, fetchRelays } from '../src/core/session/relays.js'
import { Message } from '../src/gen/signaling/signaling.js'
import { killAll, startCli } from './helpers/cli.js'
import { silentServer, type SilentServer } from './helpers/net.js'
import { waitUntil } from './helpers/wait.js'

let server: SilentServer | undefined
afterEach(async () => {
  await killAll()
  await server?.close()
  server = undefined
})

function keyFile(): { file: string; peer: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-cancel-'))
  const file = join(dir, 'a.key')
  writeFileSync(file, PrivateKey.generate().toBase64() + '\n', { mode: 0o600 })
  return { file, peer: PrivateKey.generate().publicKey.toString() }
}

// --publish-timeout is the longest deadline the commands take from a flag: an hour, so only an abort ends it.
const PUBLISH_TIMEOUT_S = 3600

const cases: { name: string; deadlineMs: number; args: (backend: string, k: { file: string; peer: string }) => string[] }[] = [
  {
    // The first thing session does on a grpc:// backend: RelayRegistry.GetRelays (relays.ts).
    name: 'session, during the relay fetch',
    deadlineMs: DEFAULT_FETCH_RELAYS_TIMEOUT_MS,
    args: (b, k) => ['session', k.peer, '-k', k.file, '-b', b, '--loopback', '--json'],
  },
  {
    name: 'session --no-server-relays, during the subscribe',
    deadlineMs: DEFAULT_CONNECT_TIMEOUT_MS,
    args: (b, k) => ['session', k.peer, '-k', k.file, '-b', b, '--loopback', '--json', '--no-server-relays'],
  },
  {
    name: 'subscribe, during the subscribe',
    deadlineMs: DEFAULT_CONNECT_TIMEOUT_MS,
    args: (b, k) => ['subscribe', '-k', k.file, '-b', b, '--json'],
  },
  {
    name: 'publish, during the publish',
    deadlineMs: PUBLISH_TIMEOUT_S * 1000,
    args: (b, k) => ['publish', k.peer, '-k', k.file, '-b', b, '--json', '--publish-timeout', String(PUBLISH_TIMEOUT_S), '-m', '{"candidate":{"address":"192.0.2.1","port":51820}}'],
  },
]

describe('SIGINT while a call hangs on a server that never answers', () => {
  it.each(cases)('$name: exit 130 before the call\'s deadline', async ({ name, args, deadlineMs }) => {
    server = await silentServer()
    const cli = startCli(args(`grpc://127.0.0.1:${server.port}?insecure=1`, keyFile()))
    // The call is in flight once the server accepted its connection (grpc-js connects lazily, on the first call).
    await waitUntil(() => server!.accepted.length > 0, 15_000, 'the command to connect')
    const connectedAt = server.accepted[0]!
    cli.child.kill('SIGINT')
    const code = await cli.exit(deadlineMs + 5000)
    const exitedAt = Date.now()
    expect(code, cli.stderr).toBe(130)
    // Property, not a guess: the call began at connectedAt and would end at its deadline; the process ended before.
    expect(exitedAt - connectedAt).toBeLessThan(deadlineMs)
    console.log(`[cancellation] ${name}: exit ${code} ${exitedAt - connectedAt} ms after the call began (its deadline: ${deadlineMs} ms)`)
    expect(`${cli.lines.join('\n')}\n${cli.stderr}`).not.toMatch(/no answer within|did not answer within|did not confirm/)
  })
})

// The same calls in the process, with deadlines of an hour: only the abort can end them within the test's timeout.
describe('an abort ends a call to a server that never answers', () => {
  const HOUR_MS = 3_600_000

  async function inFlight(start: (url: string, signal: AbortSignal) => Promise<unknown>): Promise<unknown> {
    server = await silentServer()
    const abort = new AbortController()
    const call = start(`grpc://127.0.0.1:${server.port}?insecure=1`, abort.signal).then(
      (value) => ({ value }),
      (err: Error) => ({ error: err.message }),
    )
    await waitUntil(() => server!.accepted.length > 0, 10_000, 'the call to connect')
    abort.abort()
    return call
  }

  it('GetRelays (the relay fetch)', async () => {
    const key = PrivateKey.generate().publicKey.bytes
    expect(await inFlight((url, signal) => fetchRelays(url, { publicKey: key, timeoutMs: HOUR_MS, signal }))).toEqual({
      error: `could not get relays from grpc://127.0.0.1:${server!.port}: aborted`,
    })
  })

  it('Publish', async () => {
    const ours = PrivateKey.generate()
    const outcome = await inFlight(async (url, signal) => {
      const backend = await openBackend(url, { publishTimeoutMs: HOUR_MS })
      try {
        return await backend.publish(ours, PrivateKey.generate().publicKey, Message.fromPartial({}), signal)
      } finally {
        await backend.close()
      }
    })
    expect(outcome).toEqual({ error: `publish to grpc://127.0.0.1:${server!.port} was aborted` })
  })

  it('status (health check)', async () => {
    const outcome = await inFlight((url, signal) => probeServer(url, { timeoutMs: HOUR_MS, signal }))
    expect(outcome).toMatchObject({ value: { reachable: false, ok: false, reason: 'aborted' } })
  })
})
