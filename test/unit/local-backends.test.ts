// The two backends without a network: inprocess (one hub per process) and multi (several as one).
import { describe, expect, it, vi } from 'vitest'
import { BackendError, type Backend, type BackendStatus, type MessageHandler, type ReceivedMessage } from '../../src/core/backend.js'
import { createBackend, InprocessBackend } from '../../src/core/backends/inprocess.js'
import { MultiBackend } from '../../src/core/backends/multi.js'
import { PrivateKey } from '../../src/core/keys.js'
import { Message } from '../../src/gen/signaling/signaling.js'
import { withTimeout } from '../helpers/wait.js'

const candidate = (port: number): Message => Message.fromPartial({ candidate: { port } })

/** Resolves with the next `count` messages a handler receives. */
function inbox(count: number): { handler: MessageHandler; received: Promise<ReceivedMessage[]> } {
  const messages: ReceivedMessage[] = []
  let done!: (m: ReceivedMessage[]) => void
  const received = new Promise<ReceivedMessage[]>((resolve) => (done = resolve))
  return {
    handler: {
      onMessage: (m) => {
        messages.push(m)
        if (messages.length === count) done(messages)
      },
    },
    received: withTimeout(received, 5000, `${count} messages`),
  }
}

/** Lets pending setImmediate callbacks run (inprocess delivers on the next turn, like a network). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('InprocessBackend', () => {
  it('carries a sealed message to every backend subscribed with the recipient key, never inside publish()', async () => {
    const [a, b1, b2] = [new InprocessBackend(), new InprocessBackend('inprocess:second'), createBackend(new URL('inprocess:'), {}) as InprocessBackend]
    const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
    try {
      expect([a.url, b1.url, b2.url, a.type]).toEqual(['inprocess:', 'inprocess:second', 'inprocess:', 'inprocess'])
      const first = inbox(1)
      const second = inbox(1)
      await b1.subscribe({ ours: bob, theirs: alice.publicKey }, first.handler)
      await b2.subscribe({ ours: bob, theirs: alice.publicKey }, second.handler)
      let inside = true
      const sync = vi.fn(() => expect(inside).toBe(false))
      await b1.subscribe({ ours: bob, theirs: alice.publicKey }, { onMessage: sync })
      const { size } = await a.publish(alice, bob.publicKey, candidate(1))
      inside = false
      const [[m1], [m2]] = await Promise.all([first.received, second.received])
      expect(m1!.message).toEqual(candidate(1))
      expect(m2!.message).toEqual(candidate(1))
      expect(m1!.from.equals(alice.publicKey)).toBe(true)
      expect(m1!.size).toBe(size)
      expect(m1!.backend).toBe('inprocess:second')
      expect(sync).toHaveBeenCalledTimes(1)
    } finally {
      await Promise.all([a.close(), b1.close(), b2.close()])
    }
  })

  it('stops delivering after unsubscribe and after close, and publishing to nobody succeeds', async () => {
    const [a, b, c] = [new InprocessBackend(), new InprocessBackend(), new InprocessBackend()]
    const [alice, bob] = [PrivateKey.generate(), PrivateKey.generate()]
    const onB = { onMessage: vi.fn() }
    const onC = { onMessage: vi.fn() }
    const key = { ours: bob, theirs: alice.publicKey }
    try {
      await b.subscribe(key, onB)
      await c.subscribe(key, onC)
      await b.unsubscribe(key, { onMessage: vi.fn() }) // a handler it never had: no change
      await a.publish(alice, bob.publicKey, candidate(1))
      await nextTurn()
      expect([onB.onMessage.mock.calls.length, onC.onMessage.mock.calls.length]).toEqual([1, 1])

      await c.close()
      await a.publish(alice, bob.publicKey, candidate(2))
      await nextTurn()
      expect([onB.onMessage.mock.calls.length, onC.onMessage.mock.calls.length]).toEqual([2, 1]) // c is closed

      await b.unsubscribe(key, onB)
      await a.publish(alice, bob.publicKey, candidate(3))
      await nextTurn()
      expect(onB.onMessage).toHaveBeenCalledTimes(2)
      await expect(a.publish(alice, PrivateKey.generate().publicKey, candidate(4))).resolves.toMatchObject({ size: expect.any(Number) })
    } finally {
      await Promise.all([a.close(), b.close(), c.close()])
    }
  })

  it('a backend that unsubscribed its last handler, or closed, receives nothing, and others still do', async () => {
    const [a, b, c] = [new InprocessBackend(), new InprocessBackend(), new InprocessBackend()]
    const [alice, bob, carol] = [PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()]
    const handler = { onMessage: vi.fn() }
    const carolHandler = { onMessage: vi.fn() }
    try {
      await b.subscribe({ ours: bob, theirs: alice.publicKey }, handler)
      await b.subscribe({ ours: carol, theirs: alice.publicKey }, carolHandler)
      await c.subscribe({ ours: carol, theirs: alice.publicKey }, carolHandler)
      await b.unsubscribe({ ours: bob, theirs: alice.publicKey }, handler)
      await b.close()
      await a.publish(alice, bob.publicKey, candidate(1))
      await a.publish(alice, carol.publicKey, candidate(2))
      await nextTurn()
      expect(handler.onMessage).not.toHaveBeenCalled()
      expect(carolHandler.onMessage).toHaveBeenCalledTimes(1) // through c only
      // A new subscription after the hub entry was removed works again.
      const again = inbox(1)
      await c.subscribe({ ours: bob, theirs: alice.publicKey }, again.handler)
      await a.publish(alice, bob.publicKey, candidate(3))
      expect((await again.received)[0]!.message).toEqual(candidate(3))
    } finally {
      await Promise.all([a.close(), b.close(), c.close()])
    }
  })
})

/** A backend double for MultiBackend: records calls, publishes or fails as told. */
function fake(url: string, publish: 'ok' | Error, size = 10): Backend & { calls: string[]; status: Set<(s: BackendStatus) => void> } {
  const calls: string[] = []
  const status = new Set<(s: BackendStatus) => void>()
  return {
    url,
    type: 'fake',
    calls,
    status,
    subscribe: async () => void calls.push('subscribe'),
    unsubscribe: async () => void calls.push('unsubscribe'),
    publish: async () => {
      calls.push('publish')
      if (publish instanceof Error) throw publish
      return { size }
    },
    onStatus: (listener) => {
      status.add(listener)
      return () => status.delete(listener)
    },
    close: async () => void calls.push('close'),
  }
}

describe('MultiBackend', () => {
  const key = { ours: PrivateKey.generate(), theirs: PrivateKey.generate().publicKey }
  const handler: MessageHandler = { onMessage: () => {} }

  it('subscribes, unsubscribes, publishes and closes on every backend; its URL lists them', async () => {
    const [x, y] = [fake('x:', 'ok', 7), fake('y:', 'ok', 9)]
    const multi = new MultiBackend([x, y])
    expect([multi.url, multi.type]).toEqual(['x:,y:', 'multi'])
    await multi.subscribe(key, handler)
    expect(await multi.publish(key.ours, key.theirs, candidate(1))).toEqual({ size: 7 })
    await multi.unsubscribe(key, handler)
    await multi.close()
    for (const b of [x, y]) expect(b.calls).toEqual(['subscribe', 'publish', 'unsubscribe', 'close'])
  })

  it('a publish succeeds when one backend took it, and fails with every reason when none did', async () => {
    const some = new MultiBackend([fake('x:', new Error('x down')), fake('y:', 'ok', 5)])
    expect(await some.publish(key.ours, key.theirs, candidate(1))).toEqual({ size: 5 })
    const none = new MultiBackend([fake('x:', new Error('x down')), fake('y:', new Error('y down'))])
    await expect(none.publish(key.ours, key.theirs, candidate(1))).rejects.toThrow(new BackendError('publish failed on every backend: x down; y down'))
  })

  it('reports the status of every backend, and stops on unsubscribe', () => {
    const [x, y] = [fake('x:', 'ok'), fake('y:', 'ok')]
    const multi = new MultiBackend([x, y])
    const seen: BackendStatus[] = []
    const off = multi.onStatus((s) => seen.push(s))
    for (const b of [x, y]) for (const listener of b.status) listener({ state: 'connected', backend: b.url })
    expect(seen).toEqual([
      { state: 'connected', backend: 'x:' },
      { state: 'connected', backend: 'y:' },
    ])
    off()
    expect([x.status.size, y.status.size]).toEqual([0, 0])
  })
})
