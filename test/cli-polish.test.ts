// What a user meets around the commands: a port in use, keygen's -o edge cases, a mistyped command,
// colours off on request, -q/-v.
import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PrivateKey } from '../src/core/keys.js'
import { killAll, RUN, runCli, startCli } from './helpers/cli.js'
import { Terminal } from './helpers/terminal.js'

afterEach(killAll)

describe('signal on a port in use', () => {
  it('says so in one line and exits 3', async () => {
    const busy: Server = createServer()
    const port = await new Promise<number>((resolve) => busy.listen(0, '127.0.0.1', () => resolve((busy.address() as { port: number }).port)))
    try {
      const r = await runCli(['signal', '--listen', `127.0.0.1:${port}`])
      expect(r.code).toBe(3)
      expect(r.stderr).toBe(`Error: port ${port} is in use (is another signal running?)\n`)
      const json = await runCli(['signal', '--listen', `127.0.0.1:${port}`, '--json'])
      expect(json.code).toBe(3)
      expect(JSON.parse(json.stdout)).toMatchObject({ type: 'error', message: `port ${port} is in use (is another signal running?)`, exit: 3 })
    } finally {
      busy.close()
    }
  })

  it('a listen address that is not the port\'s fault is still a usage error (exit 2)', async () => {
    const r = await runCli(['signal', '--listen', '198.51.100.7:8080']) // TEST-NET-2, no address of this host: EADDRNOTAVAIL (nothing is sent)
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/^Error: cannot listen on 198\.51\.100\.7:8080: /)
  })
})

describe('keygen -o', () => {
  it('"-" writes the key to stdout and creates no file', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cunicu-ts-keygen-'))
    const r = await runCli(['keygen', '-o', '-'], { cwd })
    expect(r.code).toBe(0)
    expect(() => PrivateKey.parse(r.stdout.trim())).not.toThrow()
    expect(readdirSync(cwd)).toEqual([])
  })

  it('a directory that does not exist is one line and exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cunicu-ts-keygen-'))
    const file = join(dir, 'that/does/not/exist/peer.key')
    const r = await runCli(['keygen', '-o', file])
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(`Error: cannot write ${file}: directory ${join(dir, 'that/does/not/exist')} does not exist\n`)
    expect(existsSync(file)).toBe(false)
  })

  it('-q writes the file and prints nothing', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cunicu-ts-keygen-')), 'peer.key')
    expect(await runCli(['keygen', '-q', '-o', file])).toMatchObject({ code: 0, stdout: '', stderr: '' })
    expect(existsSync(file)).toBe(true)
  })
})

describe('a mistyped command', () => {
  it('gets "did you mean" and exit 2', async () => {
    for (const [typed, meant] of [['sesion', 'session'], ['sigal', 'signal'], ['statsu', 'status'], ['subscibe', 'subscribe'], ['keyegn', 'keygen']]) {
      const r = await runCli([typed!])
      expect(r.code, typed).toBe(2)
      expect(r.stderr).toBe(`Error: unknown command "${typed}"; did you mean "${meant}"? (cunicu-ts --help lists them all)\n`)
    }
  })

  it('far from any command, it lists them', async () => {
    const r = await runCli(['frobnicate'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^Error: unknown command "frobnicate"; commands: demo, keygen, .*status, subscribe/)
  })
})

describe('publish -q / -v', () => {
  it('-q prints no per-envelope lines, -v tells what was sealed on stderr', async () => {
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--json'])
    const { address } = await server.waitForEvent((e) => e.type === 'listening')
    const backend = `grpc://${address}?insecure=true`
    const env = { CUNICU_PRIVATE_KEY: PrivateKey.generate().toBase64() }
    const peer = PrivateKey.generate().publicKey.toString()
    const message = '{"credentials":{"ufrag":"q"}}'
    // -q silences the text lines a terminal gets; in a pipe the NDJSON lines are the data asked for and stay.
    const quiet = await runCli(['publish', peer, '-b', backend, '-m', message, '-q'], { env })
    expect(quiet.code, quiet.stderr).toBe(0)
    expect(quiet.stdout.split('\n').map((l) => JSON.parse(l).type)).toEqual(['published']) // NDJSON stays: it is data
    const verbose = await runCli(['publish', peer, '-b', backend, '-m', message, '-v'], { env })
    expect(verbose.code).toBe(0)
    expect(verbose.stderr).toBe(`sealed to ${peer}, ${JSON.parse(verbose.stdout).size} B via ${backend}: ${message}\n`)
    expect((await runCli(['publish', peer, '-q', '-v', '-m', message], { env })).code).toBe(2)
  })
})

describe('colours', () => {
  // The demo's view on a real terminal (tmux), captured with its escape sequences.
  async function demoScreen(prefix: string, flags: string): Promise<string> {
    const command = `env -u NO_COLOR -u FORCE_COLOR ${prefix} NODE_ENV=production ${process.execPath} ${RUN} demo ${flags}; echo DEMO-EXIT=$?; sleep 30`
    const terminal = Terminal.open(command, { cols: 120, rows: 40 })
    try {
      const screen = await terminal.waitFor((s) => /DEMO-EXIT=/.test(s), 30_000, { escapes: true })
      expect(screen).toMatch(/DEMO-EXIT=0/)
      return screen
    } finally {
      terminal.close()
    }
  }
  const COLOUR = /\x1b\[(3[0-7]|9[0-7]|38;)/ // a foreground colour

  it('are on by default, off with NO_COLOR or --no-color', async () => {
    expect(await demoScreen('', '')).toMatch(COLOUR)
    expect(await demoScreen('NO_COLOR=1', '')).not.toMatch(COLOUR)
    expect(await demoScreen('', '--no-color')).not.toMatch(COLOUR)
  }, 100_000)
})
