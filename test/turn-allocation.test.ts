// A TURN allocation ends: aborted while the server stays silent, or refused by it, it leaves no socket behind
// (werift-ice's own createStunOverTurnClient kept the socket of a failed allocation open, so a session that
// had tried an unreachable TURN server never exited after --exit-on-connected).
import { createSocket, type Socket } from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { classes, Message, methods, parseMessage, RETRY_MAX } from 'werift-ice'
import type { TurnServer } from '../src/core/session/ice-servers.js'
import { allocateTurn } from '../src/core/session/turn-allocation.js'
import { waitUntil } from './helpers/wait.js'

const sockets: Socket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) await new Promise<void>((resolve) => socket.close(() => resolve()))
})

/** Whether nothing is bound to UDP `port` any more (werift binds its TURN socket to 0.0.0.0 and a random port). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createSocket('udp4')
    probe.once('error', () => probe.close(() => resolve(false)))
    probe.bind(port, '0.0.0.0', () => probe.close(() => resolve(true)))
  })
}

/** Waits (bounded: 20 × 100 ms) until the allocation's socket is closed; false if it never is. */
async function released(port: number): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    if (await portFree(port)) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

/** A UDP "TURN server" on loopback: silent, or refusing every request with 403. */
async function turnServer(mode: 'silent' | 'refuse'): Promise<{ server: TurnServer; requests: () => number; clientPort: () => number }> {
  const socket = createSocket('udp4')
  sockets.push(socket)
  let requests = 0
  let clientPort = 0
  socket.on('message', (data, from) => {
    requests++
    clientPort = from.port
    const request = parseMessage(data)
    if (mode === 'silent' || !request) return
    const refusal = new Message(methods.ALLOCATE, classes.ERROR, request.transactionId).setAttribute('ERROR-CODE', [403, 'Forbidden'])
    socket.send(refusal.bytes, from.port, from.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  return { server: { url: `turn:127.0.0.1:${port}?transport=udp`, host: '127.0.0.1', port, transport: 'udp', username: 'u', password: 'p' }, requests: () => requests, clientPort: () => clientPort }
}

describe('allocateTurn', () => {
  it('an abort ends an allocation the server never answers, at once, and closes its socket', async () => {
    const { server, requests, clientPort } = await turnServer('silent')
    const abort = new AbortController()
    const pending = allocateTurn(server, { signal: abort.signal })
    const settled = pending.then(
      () => 'allocated',
      (err: Error) => err.name,
    )
    await waitUntil(() => requests() > 0, 5000, 'the ALLOCATE request')
    expect(await portFree(clientPort())).toBe(false)
    abort.abort()
    expect(await settled).not.toBe('allocated')
    // Ended by the abort, not by werift giving up after its last retransmission (RETRY_MAX of them, ~6 s).
    expect(requests()).toBeLessThan(RETRY_MAX + 1)
    expect(await released(clientPort())).toBe(true)
  })

  it('a refused allocation rejects and closes its socket', async () => {
    const { server, requests, clientPort } = await turnServer('refuse')
    await expect(allocateTurn(server)).rejects.toBeDefined()
    expect(requests()).toBeGreaterThan(0)
    expect(await released(clientPort())).toBe(true)
  })

  it('an abort before the start allocates nothing', async () => {
    const { server, requests } = await turnServer('silent')
    await expect(allocateTurn(server, { signal: AbortSignal.abort() })).rejects.toThrow('aborted')
    expect(requests()).toBe(0)
  })
})
