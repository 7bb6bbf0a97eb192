// The cluster transports' RESP code (src/core/server/cluster/resp.ts): the incremental parser gives the same
// replies however the bytes are split (every byte boundary, one byte at a time), in order when pipelined;
// Pub/Sub messages in RESP2 and RESP3 come out as offsets; bad bytes fail loudly; the writer encodes what
// Redis expects (checked by parsing it back) without strings for base64 and numbers.
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { channelName, channelSlot, commandPrefix, encodePublish } from '../../src/core/server/cluster/channel.js'
import { keySlot } from '../../src/core/server/cluster/key-slot.js'
import { RespError, RespParser, RespProtocolError, RespWriter, type RespValue } from '../../src/core/server/cluster/resp.js'
import { slotMapFrom } from '../../src/core/server/cluster/slot-map.js'

type Event = ['integer', number] | ['value', RespValue, boolean] | ['message', string, string]

function recordingParser(messages: boolean): { parser: RespParser; events: Event[] } {
  const events: Event[] = []
  const parser = new RespParser(
    {
      integer: (n) => events.push(['integer', n]),
      value: (v, push) => events.push(['value', v, push]),
      message: (buffer, cs, ce, ps, pe) => events.push(['message', buffer.toString('latin1', cs, ce), buffer.toString('latin1', ps, pe)]),
    },
    messages,
  )
  return { parser, events }
}

function parseAll(chunks: Buffer[], messages = false): Event[] {
  const { parser, events } = recordingParser(messages)
  for (const chunk of chunks) parser.feed(chunk)
  return events
}

/** Every way of cutting `bytes` in two, and one byte at a time: each must give `expected`. */
function expectSplitInvariant(bytes: Buffer, expected: Event[], messages = false): void {
  expect(parseAll([bytes], messages)).toEqual(expected)
  for (let cut = 1; cut < bytes.length; cut++) {
    expect(parseAll([bytes.subarray(0, cut), bytes.subarray(cut)], messages), `cut at ${cut}`).toEqual(expected)
  }
  expect(parseAll([...bytes].map((b) => Buffer.from([b])), messages)).toEqual(expected)
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1')

describe('RespParser', () => {
  it('RESP2 replies, pipelined, split at every byte boundary', () => {
    const stream = b(':1\r\n:-42\r\n+OK\r\n-MOVED 3999 127.0.0.1:6381\r\n$5\r\nhe\r\no\r\n$-1\r\n$0\r\n\r\n*2\r\n*1\r\n:7\r\n$3\r\nabc\r\n*-1\r\n*0\r\n:1234567890\r\n')
    expectSplitInvariant(stream, [
      ['integer', 1],
      ['integer', -42],
      ['value', 'OK', false],
      ['value', new RespError('MOVED 3999 127.0.0.1:6381'), false],
      ['value', b('he\r\no'), false],
      ['value', null, false],
      ['value', b(''), false],
      ['value', [[7], b('abc')], false],
      ['value', null, false],
      ['value', [], false],
      ['integer', 1234567890],
    ])
  })

  it('error replies keep their text (what the transports match MOVED/ASK on)', () => {
    const [event] = parseAll([b('-ASK 12 10.0.0.1:7000\r\n')])
    expect(event![1]).toBeInstanceOf(RespError)
    expect((event![1] as RespError).message).toBe('ASK 12 10.0.0.1:7000')
  })

  it('RESP3 types, split at every byte boundary', () => {
    const stream = b(
      '_\r\n#t\r\n#f\r\n,1.5\r\n,-inf\r\n(3492890328409238509324850943850943825024385\r\n=8\r\ntxt:hiya\r\n!5\r\nERR x\r\n' +
        '%2\r\n+server\r\n$5\r\nredis\r\n+proto\r\n:3\r\n~2\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:9\r\n',
    )
    expectSplitInvariant(stream, [
      ['value', null, false],
      ['value', true, false],
      ['value', false, false],
      ['value', 1.5, false],
      ['value', -Infinity, false],
      ['value', 3492890328409238509324850943850943825024385n, false],
      ['value', 'hiya', false],
      ['value', new RespError('ERR x'), false],
      ['value', ['server', b('redis'), 'proto', 3], false],
      ['value', [1, 2], false],
      ['value', 9, false], // the attribute before it is dropped; a top-level integer after an attribute is a value
    ])
  })

  it('Pub/Sub messages, RESP2 arrays and RESP3 pushes, come out as channel and payload; confirmations as values', () => {
    const payload = '\r\n$3\r\n*2\r\nbinary\x00\xff'
    const stream = b(
      '*3\r\n$9\r\nsubscribe\r\n$4\r\nchan\r\n:1\r\n' +
        `*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$${payload.length}\r\n${payload}\r\n` +
        `>3\r\n$8\r\nsmessage\r\n$5\r\nshard\r\n$3\r\nxyz\r\n` +
        '>3\r\n$12\r\nsunsubscribe\r\n$5\r\nshard\r\n:0\r\n' +
        '*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$0\r\n\r\n' +
        ':5\r\n',
    )
    expectSplitInvariant(
      stream,
      [
        ['value', [b('subscribe'), b('chan'), 1], false],
        ['message', 'chan', payload],
        ['message', 'shard', 'xyz'],
        ['value', [b('sunsubscribe'), b('shard'), 0], true],
        ['message', 'chan', ''],
        ['integer', 5],
      ],
      true,
    )
    // Not a subscriber connection: the same bytes are plain arrays (a message kind is no special word there).
    const plain = parseAll([b(`*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$3\r\nxyz\r\n`)])
    expect(plain).toEqual([['value', [b('message'), b('chan'), b('xyz')], false]])
    // A pmessage (4 elements) or another array of 3 is no message either.
    expect(parseAll([b('*3\r\n$7\r\nmessagf\r\n$1\r\na\r\n$1\r\nb\r\n')], true)).toEqual([['value', [b('messagf'), b('a'), b('b')], false]])
  })

  it('a large bulk string in many chunks arrives whole and once', () => {
    const big = randomBytes(200_000)
    const stream = Buffer.concat([b(`$${big.length}\r\n`), big, b('\r\n:1\r\n')])
    const chunks: Buffer[] = []
    for (let at = 0; at < stream.length; at += 1000) chunks.push(stream.subarray(at, at + 1000))
    const events = parseAll(chunks)
    expect(events).toHaveLength(2)
    expect((events[0]![1] as Buffer).equals(big)).toBe(true)
    expect(events[1]).toEqual(['integer', 1])
  })

  it('bytes that are no RESP throw RespProtocolError', () => {
    for (const bad of ['?x\r\n', ':1\rx', ':1x\r\n', '$3\r\nabcde\r\n', '*1\r\n$1\r\na\r\n$x\r\n']) {
      expect(() => parseAll([b(bad)]), bad).toThrow(RespProtocolError)
    }
  })
})

describe('RespWriter and the publish encoding', () => {
  it('base64 and decimal without strings equal Node’s', () => {
    for (let n = 0; n <= 40; n++) {
      const bytes = randomBytes(n)
      const w = new RespWriter().reserve(64)
      w.base64(bytes)
      expect(w.take().toString('latin1')).toBe(bytes.toString('base64'))
    }
    for (const n of [0, 7, 10, 99, 316, 65536, 4294967295]) expect(new RespWriter().reserve(16).decimal(n).take().toString()).toBe(String(n))
  })

  it('command() is RESP as Redis reads it; the writer grows and starts afresh after take()', () => {
    const w = new RespWriter()
    w.command(['AUTH', 'user', Buffer.from('p\r\nw')])
    expect(w.take().toString('latin1')).toBe('*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$4\r\np\r\nw\r\n')
    expect(w.length).toBe(0)
    const big = randomBytes(100_000)
    w.command(['SET', 'k', big])
    expect(parseAll([w.take()])).toEqual([['value', [b('SET'), b('k'), big], false]])
  })

  it('encodePublish writes PUBLISH/SPUBLISH channel, header, sequence and envelope, several per batch', () => {
    const w = new RespWriter()
    const [key1, key2] = [randomBytes(32), randomBytes(32)]
    const origin = randomBytes(8)
    const envelope = randomBytes(316)
    encodePublish(w, commandPrefix('PUBLISH'), key1, origin, undefined, envelope)
    encodePublish(w, commandPrefix('SPUBLISH'), key2, origin, 0xdeadbeef, envelope.subarray(10))
    const sequence = Buffer.alloc(4)
    sequence.writeUInt32BE(0xdeadbeef)
    expect(parseAll([w.take()])).toEqual([
      ['value', [b('PUBLISH'), b(channelName(key1)), Buffer.concat([origin, envelope])], false],
      ['value', [b('SPUBLISH'), b(channelName(key2)), Buffer.concat([origin, sequence, envelope.subarray(10)])], false],
    ])
  })

  it('channelSlot (from the key’s bytes) equals keySlot of the channel name', () => {
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(32)
      expect(channelSlot(key)).toBe(keySlot(channelName(key)))
    }
  })
})

describe('slotMapFrom (CLUSTER SLOTS)', () => {
  it('reads ranges and nodes; an unknown endpoint is the node asked', () => {
    const reply: RespValue = [
      [0, 5460, [b('127.0.0.1'), 7000, b('id1')], [b('127.0.0.1'), 7003, b('id4')]],
      [5461, 10922, [b('?'), 7001, b('id2')]],
      [10923, 16383, [b(''), 7002, b('id3'), []]],
    ]
    expect(slotMapFrom(reply, '10.1.1.1')).toEqual({
      ranges: [
        { from: 0, to: 5460, master: { host: '127.0.0.1', port: 7000 } },
        { from: 5461, to: 10922, master: { host: '10.1.1.1', port: 7001 } },
        { from: 10923, to: 16383, master: { host: '10.1.1.1', port: 7002 } },
      ],
      nodes: ['127.0.0.1:7000', '127.0.0.1:7003', '10.1.1.1:7001', '10.1.1.1:7002'],
    })
    expect(() => slotMapFrom(new RespError('ERR This instance has cluster support disabled'), 'h')).toThrow(/not an array/)
    expect(() => slotMapFrom([[0, 20000, [b('h'), 1]]], 'h')).toThrow(/bad slot range/)
  })
})
