// RespConnection (src/core/server/cluster/resp-connection.ts) against a scripted server on loopback: publish
// replies are counted in order between other commands' replies, a lost connection fails what is pending
// (publishes reported failed, commands rejected, `closed` once), close() reports nothing, AUTH errors end
// open(), and a subscriber connection tells confirmations, messages and Redis-initiated unsubscribes apart.
import { createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { commandPrefix, encodePublish } from '../../src/core/server/cluster/channel.js'
import { RespParser, type RespValue } from '../../src/core/server/cluster/resp.js'
import { PublishBatches } from '../../src/core/server/cluster/publish-batches.js'
import { RespConnection, type RespConnectionEvents } from '../../src/core/server/cluster/resp-connection.js'

interface Scripted {
  port: number
  /** Commands received so far, as string arrays. */
  commands: string[][]
  socket(): Promise<Socket>
  /** Resolves once `n` commands have arrived. */
  received(n: number): Promise<void>
}

let servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  servers = []
})

/** A server that records the commands it gets; `reply` answers each (or not, if it returns undefined). */
async function scripted(reply: (command: string[]) => string | undefined): Promise<Scripted> {
  const commands: string[][] = []
  const sockets: Socket[] = []
  let waiters: (() => void)[] = []
  const server = createServer((socket) => {
    sockets.push(socket)
    const parser = new RespParser({
      integer: () => {},
      message: () => {},
      value: (value: RespValue) => {
        const command = (value as Buffer[]).map((part) => part.toString('latin1'))
        commands.push(command)
        for (const w of waiters) w()
        const answer = reply(command)
        if (answer !== undefined) socket.write(answer)
      },
    })
    socket.on('data', (chunk) => parser.feed(chunk))
    socket.on('error', () => {})
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    port,
    commands,
    socket: async () => {
      while (sockets.length === 0) await new Promise((r) => setTimeout(r, 5))
      return sockets[sockets.length - 1]!
    },
    received: async (n) => {
      const deadline = Date.now() + 5000
      while (commands.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${commands.length} of ${n} commands arrived`)
        await new Promise<void>((r) => {
          waiters.push(r)
          setTimeout(r, 50)
        })
        waiters = []
      }
    },
  }
}

function recordedEvents(): { events: RespConnectionEvents; log: unknown[] } {
  const log: unknown[] = []
  return {
    log,
    events: {
      closed: (reason) => log.push(['closed', reason]),
      published: (ok, failed, reason) => log.push(['published', ok, failed, reason]),
      unanswered: (count, reason) => log.push(['unanswered', count, reason]),
      message: (buffer, cs, ce, ps, pe) => log.push(['message', buffer.toString('latin1', cs, ce), buffer.toString('latin1', ps, pe)]),
      unsubscribed: (kind, channel) => log.push(['unsubscribed', kind, channel]),
    },
  }
}

const PUBLISH = commandPrefix('PUBLISH')
const key = new Uint8Array(32).fill(7)
const origin = Buffer.alloc(8, 1)

function publish(connection: RespConnection, text: string): void {
  encodePublish(connection.writer, PUBLISH, key, origin, undefined, Buffer.from(text))
  connection.sentPublish()
}

describe('RespConnection', () => {
  it('counts publish replies in order around a command’s reply; publishes of a tick go out together', async () => {
    const server = await scripted((c) => (c[0] === 'PING' ? '+PONG\r\n' : c[2]!.endsWith('bad') ? '-MOVED 1 127.0.0.1:1\r\n' : ':1\r\n'))
    const { events, log } = recordedEvents()
    const connection = await RespConnection.open({ host: '127.0.0.1', port: server.port }, events)
    publish(connection, 'one')
    publish(connection, 'bad')
    expect(connection.pendingPublishes).toBe(2)
    const pong = connection.command(['PING'])
    publish(connection, 'three')
    expect(await pong).toBe('PONG')
    await server.received(4)
    while (connection.pendingPublishes > 0) await new Promise((r) => setTimeout(r, 5))
    // PING was sent at once, with the two publishes encoded before it; the third followed in the tick's batch.
    expect(server.commands.map((c) => c[0])).toEqual(['PUBLISH', 'PUBLISH', 'PING', 'PUBLISH'])
    expect(server.commands[0]![1]).toBe('cunicu:env:' + Buffer.from(key).toString('base64'))
    expect(log).toEqual([
      ['published', 1, 0, undefined],
      ['published', 0, 1, 'MOVED 1 127.0.0.1:1'],
      ['published', 1, 0, undefined],
    ])
    connection.close()
    expect(log).toHaveLength(3) // close() by us: no `closed`
    expect(connection.ready).toBe(false)
  })

  it('a lost connection fails every pending publish and command, and says so once', async () => {
    const server = await scripted(() => undefined) // never answers
    const { events, log } = recordedEvents()
    const connection = await RespConnection.open({ host: '127.0.0.1', port: server.port }, events)
    publish(connection, 'a')
    publish(connection, 'b')
    const command = connection.command(['PING'])
    await server.received(3)
    ;(await server.socket()).destroy()
    await expect(command).rejects.toThrow(/closed/)
    expect(log).toEqual([
      ['unanswered', 2, 'connection closed'],
      ['closed', 'connection closed'],
    ])
    expect(connection.ready).toBe(false)
    expect(connection.pendingPublishes).toBe(0)
    await expect(connection.command(['PING'])).rejects.toThrow(/closed/)
  })

  it('close() reports the publishes it drops as failed (a drain does not hang), but no `closed`', async () => {
    const server = await scripted(() => undefined)
    const { events, log } = recordedEvents()
    const connection = await RespConnection.open({ host: '127.0.0.1', port: server.port }, events)
    publish(connection, 'a')
    connection.close()
    connection.close()
    expect(log).toEqual([['unanswered', 1, 'connection closed by us']])
  })

  it('AUTH goes first; a refused AUTH ends open() with Redis’s reason', async () => {
    const server = await scripted((c) => (c[0] === 'AUTH' ? (c[2] === 'right' ? '+OK\r\n' : '-WRONGPASS invalid username-password pair\r\n') : ':1\r\n'))
    const ok = await RespConnection.open({ host: '127.0.0.1', port: server.port, username: 'u', password: 'right' }, {})
    expect(server.commands[0]).toEqual(['AUTH', 'u', 'right'])
    ok.close()
    await expect(RespConnection.open({ host: '127.0.0.1', port: server.port, username: 'u', password: 'wrong' }, {})).rejects.toThrow(/WRONGPASS/)
  })

  it('open() fails with the reason when nothing listens', async () => {
    const server = await scripted(() => undefined)
    const port = server.port
    await new Promise((resolve) => servers.pop()!.close(resolve))
    await expect(RespConnection.open({ host: '127.0.0.1', port }, {})).rejects.toThrow(/ECONNREFUSED/)
  })

  it('subscriber: a confirmation answers its command, messages go to `message`, an unasked sunsubscribe to `unsubscribed`', async () => {
    const server = await scripted((c) => {
      if (c[0] === 'SSUBSCRIBE') return `*3\r\n$10\r\nssubscribe\r\n$${c[1]!.length}\r\n${c[1]}\r\n:1\r\n`
      return undefined
    })
    const { events, log } = recordedEvents()
    const connection = await RespConnection.open({ host: '127.0.0.1', port: server.port }, events, { subscriber: true })
    const confirmed = await connection.command(['SSUBSCRIBE', 'ch'])
    expect(confirmed).toEqual([Buffer.from('ssubscribe'), Buffer.from('ch'), 1])
    const socket = await server.socket()
    const pending = connection.command(['SSUBSCRIBE', 'other'])
    // Before "other" is confirmed: a message, and Redis dropping "ch" on its own (its slot moved). Neither
    // may be taken for the confirmation of "other".
    socket.write('*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n*3\r\n$12\r\nsunsubscribe\r\n$2\r\nch\r\n:0\r\n')
    expect(await pending).toEqual([Buffer.from('ssubscribe'), Buffer.from('other'), 1])
    expect(log).toEqual([
      ['message', 'ch', 'hello'],
      ['unsubscribed', 'sunsubscribe', 'ch'],
    ])
    connection.close()
  })
})

describe('PublishBatches', () => {
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

  it('idle: flushes at the end of the tick, every connection of the batch together', async () => {
    const batches = new PublishBatches()
    const flushed: string[] = []
    batches.add({ flush: () => flushed.push('a') })
    batches.add({ flush: () => flushed.push('b') })
    expect(flushed).toEqual([])
    await tick()
    expect(flushed).toEqual(['a', 'b'])
    batches.close()
  })

  it('busy: the next batch leaves no sooner than 1 ms after the last one', async () => {
    const batches = new PublishBatches()
    const at: number[] = []
    const connection = { flush: () => at.push(performance.now()) }
    batches.add(connection)
    await tick()
    batches.add(connection)
    while (at.length < 2) await new Promise((resolve) => setTimeout(resolve, 1))
    // Held back, not sent in the next tick (which comes within microseconds on an idle loop).
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(0.9)
    batches.close()
  })

  it('close() drops what was due and leaves no timer', async () => {
    const batches = new PublishBatches()
    let flushes = 0
    batches.add({ flush: () => flushes++ })
    batches.close()
    batches.add({ flush: () => flushes++ })
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(flushes).toBe(0)
  })
})
