// The built-in STUN server (`signal --stun-listen`): RFC 5389 Binding responses checked byte by byte here,
// then by an independent client (aioice, through test/interop/peer.py), handed out by GetRelays, and
// rate-limited per source address.
import { createSocket, type Socket } from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { bindingSuccess, MAGIC_COOKIE, parseBindingRequest } from '../src/core/server/stun-message.js'
import { StunServer } from '../src/core/server/stun-server.js'
import { RelayRegistryClient, type GetRelaysResp } from '../src/gen/signaling/relay.js'
import { killAll, runCli, startCli } from './helpers/cli.js'
import { preparePython, runPython, type PythonEnv } from './helpers/interop.js'
import { scrape } from './helpers/metrics.js'
import { withTimeout } from './helpers/wait.js'

const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await killAll()
})

function bindingRequest(transactionId = randomBytes(12), extra = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(20)
  header.writeUInt16BE(0x0001, 0)
  header.writeUInt16BE(extra.length, 2)
  header.writeUInt32BE(MAGIC_COOKIE, 4)
  transactionId.copy(header, 8)
  return Buffer.concat([header, extra])
}

/** The attributes of a STUN message, by type. */
function attributes(message: Buffer): Map<number, Buffer> {
  const found = new Map<number, Buffer>()
  for (let at = 20; at + 4 <= message.length; ) {
    const type = message.readUInt16BE(at)
    const length = message.readUInt16BE(at + 2)
    found.set(type, message.subarray(at + 4, at + 4 + length))
    at += 4 + Math.ceil(length / 4) * 4
  }
  return found
}

describe('STUN messages (RFC 5389)', () => {
  it('recognises Binding requests and nothing else', () => {
    const id = randomBytes(12)
    expect(parseBindingRequest(bindingRequest(id))).toEqual({ kind: 'binding-request', transactionId: id })
    expect(parseBindingRequest(Buffer.alloc(10)).kind).toBe('not-binding-request')
    const noCookie = bindingRequest()
    noCookie.writeUInt32BE(0, 4)
    expect(parseBindingRequest(noCookie)).toMatchObject({ reason: 'no RFC 5389 magic cookie' })
    const response = bindingRequest()
    response.writeUInt16BE(0x0101, 0)
    expect(parseBindingRequest(response)).toMatchObject({ reason: 'message type 0x0101 is not a Binding request' })
    const badLength = bindingRequest()
    badLength.writeUInt16BE(8, 2)
    expect(parseBindingRequest(badLength)).toMatchObject({ reason: 'length field does not match the datagram' })
    expect(parseBindingRequest(Buffer.concat([Buffer.from([0xc0]), bindingRequest().subarray(1)])).kind).toBe('not-binding-request')
  })

  const cases = [
    ['192.0.2.77', 54321, 'c000024d'],
    ['2001:db8::17:4', 3478, '20010db8000000000000000000170004'],
    ['::ffff:10.1.2.3', 1, '00000000000000000000ffff0a010203'],
  ] as const
  for (const [address, port, bytes] of cases) {
    it(`answers ${address}:${port} with XOR-MAPPED-ADDRESS, MAPPED-ADDRESS and a valid FINGERPRINT`, () => {
      const id = randomBytes(12)
      const response = bindingSuccess(id, address, port)
      expect(response.readUInt16BE(0)).toBe(0x0101)
      expect(response.readUInt16BE(2)).toBe(response.length - 20)
      expect(response.readUInt32BE(4)).toBe(MAGIC_COOKIE)
      expect(response.subarray(8, 20)).toEqual(id)
      const attrs = attributes(response)
      const xored = attrs.get(0x0020)!
      const key = Buffer.concat([Buffer.from('2112a442', 'hex'), id])
      expect(xored.readUInt16BE(2) ^ 0x2112).toBe(port)
      const raw = Buffer.from(xored.subarray(4).map((b, i) => b ^ key[i]!))
      expect(raw.toString('hex')).toBe(bytes)
      expect(attrs.get(0x0020)!.readUInt8(1)).toBe(bytes.length === 8 ? 1 : 2)
      expect(attrs.get(0x0001)!.subarray(4)).toEqual(raw)
      expect(attrs.get(0x0001)!.readUInt16BE(2)).toBe(port)
      // The fingerprint covers everything before it, with the length field already counting it.
      const fingerprintAt = response.length - 8
      expect(response.readUInt32BE(fingerprintAt + 4)).toBe((crc32(response.subarray(0, fingerprintAt)) ^ 0x5354554e) >>> 0)
    })
  }
})

describe('StunServer', () => {
  async function client(local = '127.0.0.1'): Promise<Socket> {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve) => socket.bind(0, local, resolve))
    closers.push(() => socket.close())
    return socket
  }

  it('answers each source address up to its rate, drops the rest, and counts both', async () => {
    const results: string[] = []
    const server = await StunServer.start({ host: '127.0.0.1', port: 0, ratePerSecond: 0.001, burst: 3, onRequest: (r) => results.push(r) })
    closers.push(() => server.close())
    const flooder = await client()
    const answers: Buffer[] = []
    flooder.on('message', (m) => answers.push(m))
    for (let i = 0; i < 10; i++) flooder.send(bindingRequest(), server.port, '127.0.0.1')
    flooder.send(Buffer.from('not stun at all, long enough to look like one'), server.port, '127.0.0.1')
    // Another source address has its own budget.
    const other = await client('127.0.0.2')
    const answered = new Promise<Buffer>((resolve) => other.once('message', resolve))
    const id = randomBytes(12)
    other.send(bindingRequest(id), server.port, '127.0.0.1')
    const response = await withTimeout(answered, 5000, 'the answer to another source')
    expect(response.subarray(8, 20)).toEqual(id)
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = () => (results.length >= 12 ? resolve() : setTimeout(check, 10))
        check()
      }),
      5000,
      'every datagram to be handled',
    )
    expect(answers).toHaveLength(3)
    expect(results.filter((r) => r === 'answered')).toHaveLength(4)
    // The non-STUN datagram came after the budget was spent: rate-limited before it was even parsed.
    expect(results.filter((r) => r === 'rate_limited')).toHaveLength(8)
  })
})

describe('signal --stun-listen', () => {
  let py: PythonEnv | undefined
  beforeAll(() => {
    py = preparePython()
  })
  afterAll(() => py?.cleanup())

  function getRelays(address: string): Promise<GetRelaysResp> {
    const relays = new RelayRegistryClient(address, credentials.createInsecure())
    closers.push(() => relays.close())
    return new Promise((resolve, reject) =>
      relays.getRelays({ publicKey: new Uint8Array(32).fill(1) }, new Metadata(), { deadline: Date.now() + 5000 }, (e: ServiceError | null, r: GetRelaysResp) => (e ? reject(e) : resolve(r))),
    )
  }

  it("answers aioice's server-reflexive query, and GetRelays hands out its stun: URL", async () => {
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--stun-listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--json'])
    const { address, stun, metrics } = await server.waitForEvent((e) => e.type === 'listening', 20_000)
    expect(stun).toMatch(/^127\.0\.0\.1:\d+$/)
    const [host, port] = (stun as string).split(':') as [string, string]
    const result = await runPython(py!, 'peer.py', ['stun', '--host', host, '--port', port])
    expect(result.code, result.stderr).toBe(0)
    const srflx = result.events.find((e) => e.type === 'srflx')!
    // On loopback the server sees the client's own socket: the reflexive address is the local one.
    expect(srflx).toMatchObject({ address: '127.0.0.1', port: srflx.localPort })
    expect(srflx.candidate).toMatch(/ typ srflx raddr 127\.0\.0\.1 rport \d+/)
    expect((await getRelays(address)).relays.map((r) => r.url)).toEqual([`stun:${stun}`])
    expect((await scrape(metrics)).byLabel('cunicu_signal_stun_requests_total', 'result')).toEqual({ answered: 1, rate_limited: 0, malformed: 0 })
  }, 60_000)

  it('--stun-advertise is what GetRelays hands out; a wildcard listen address needs it (exit 2)', async () => {
    const server = startCli(['signal', '--listen', '127.0.0.1:0', '--stun-listen', '127.0.0.1:0', '--stun-advertise', '203.0.113.5:3478', '--relay', 'stun:198.51.100.1:3478', '--json'])
    const { address } = await server.waitForEvent((e) => e.type === 'listening', 20_000)
    expect((await getRelays(address)).relays.map((r) => r.url)).toEqual(['stun:198.51.100.1:3478', 'stun:203.0.113.5:3478'])
    const wildcard = await runCli(['signal', '--listen', '127.0.0.1:0', '--stun-listen', '0.0.0.0:0'])
    expect(wildcard.code).toBe(2)
    expect(wildcard.stderr).toMatch(/STUN listen address 0\.0\.0\.0:0 is a wildcard.*--stun-advertise HOST:PORT/)
    const bad = await runCli(['signal', '--listen', '127.0.0.1:0', '--stun-listen', 'nope'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--stun-listen: listen address "nope" is not HOST:PORT/)
  }, 60_000)
})
