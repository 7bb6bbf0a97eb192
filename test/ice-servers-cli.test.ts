// `session`'s STUN/TURN input at the edge (issue 13 item 3, issue 9 item 3): a bad --stun/--turn, stuns: or
// turns: over udp ends the command with exit 2 and one line before anything is published; and the relay
// fetch reads the -b URL with the backend's own rules, so ?insecure=1 is plain text for GetRelays too.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { SignalingServer } from '../src/core/server/signaling-server.js'
import { killAll, runCli, startCli } from './helpers/cli.js'
import { envelopeTo, publish, rawClient, subscribe } from './helpers/signaling.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  await killAll()
  for (const close of closers.splice(0).reverse()) await close()
})

function keyFile(): { key: PrivateKey; file: string } {
  const key = PrivateKey.generate()
  const file = join(mkdtempSync(join(tmpdir(), 'cunicu-ts-ice-servers-')), 'a.key')
  writeFileSync(file, key.toBase64() + '\n', { mode: 0o600 })
  return { key, file }
}

async function server(relays?: string[]): Promise<SignalingServer> {
  const s = await SignalingServer.start({ listen: '127.0.0.1:0', ...(relays ? { relays } : {}) })
  closers.push(() => s.close(500))
  return s
}

describe('session: STUN/TURN URLs and interfaces are checked before anything starts', () => {
  const bad: [string[], RegExp][] = [
    [['--stun', 'stun:bad host'], /^--stun: "stun:bad host": "bad host" is not a host name or IP address$/],
    [['--stun', 'stuns:10.0.0.1'], /^--stun: STUN server "stuns:10\.0\.0\.1": stuns: \(STUN over TLS\) is not supported/],
    [['--turn', 'turns:10.0.0.1?transport=udp&username=u&password=p'], /^--turn: TURN server "turns:.*": turns: with transport=udp \(TURN over DTLS\) is not supported/],
    [['--turn', 'turn:10.0.0.1?username=u&pasword=p'], /^--turn: .*unknown parameter pasword=/],
    [['--interface', 'nosuch0'], /^--interface: interface "nosuch0" not found \(known: .*lo.*\)$/],
  ]

  for (const [flags, message] of bad) {
    it(`${flags.join(' ')}: exit 2, one line, nothing published`, async () => {
      const s = await server()
      const self = keyFile()
      const peer = PrivateKey.generate().publicKey
      const client = rawClient(s.address)
      closers.push(() => client.close())
      const watcher = subscribe(client, peer.bytes)
      await watcher.synced
      const started = Date.now()
      const result = await runCli(['session', peer.toString(), '-k', self.file, '-b', `grpc://${s.address}?insecure=true`, ...flags])
      const ms = Date.now() - started
      console.log(`[ice-servers-cli] ${flags.join(' ')}: exit ${result.code} after ${ms} ms`)
      expect(result.code).toBe(2)
      const lines = result.stderr.trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]!.replace(/^\s*›?\s*Error:\s*/, '')).toMatch(message)
      expect(result.stdout).toBe('')
      // The process is gone; a marker published now arrives after anything it could have sent.
      await publish(client, envelopeTo(peer.bytes))
      const received = await watcher.waitFor(1)
      expect(received).toHaveLength(1)
    })
  }
})

describe('session: the relay fetch uses the backend URL rules', () => {
  it("-b 'grpc://127.0.0.1:PORT?insecure=1' gets the server's relays in plain text", async () => {
    const s = await server(['turn:10.0.0.1:3478?secret=s&ttl=1h'])
    const self = keyFile()
    const peer = PrivateKey.generate().publicKey
    const p = startCli(['session', peer.toString(), '-k', self.file, '-b', `grpc://${s.address}?insecure=1`, '--loopback', '--json', '--timeout', '1'])
    const relays = await p.waitForEvent((e) => e.type === 'relays')
    expect(relays.turn).toEqual([expect.objectContaining({ url: 'turn:10.0.0.1:3478?transport=udp', source: 'server' })])
    expect(await p.exit(15_000)).toBe(4)
    expect(p.events.filter((e) => e.type === 'error' && /relays/.test(e.message))).toEqual([])
  })
})

describe('a mistyped grpc:// parameter is bad input for every command that takes -b', () => {
  it("?insecur=true: exit 2 naming the parameter, for session, subscribe and publish alike", async () => {
    const self = keyFile()
    const peer = PrivateKey.generate().publicKey.toString()
    const backend = ['-b', 'grpc://127.0.0.1:9?insecur=true']
    const runs = await Promise.all([
      runCli(['session', peer, '-k', self.file, ...backend]),
      runCli(['subscribe', '-k', self.file, ...backend]),
      runCli(['publish', peer, '-k', self.file, ...backend, '--message', '{"credentials":{}}']),
    ])
    for (const result of runs) {
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/unknown parameter insecur= \(expected insecure=, skip_verify=, auth_key=\)/)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
    }
  })
})
