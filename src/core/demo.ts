// The demo as an engine: an embedded signaling server on an ephemeral loopback port and two fresh peers
// that run complete sessions through it. The `demo` command only picks a renderer and an exit code.
import type { Backend } from './backend.js'
import { openBackend } from './backends/index.js'
import { Emitter } from './emitter.js'
import { PrivateKey } from './keys.js'
import type { SessionEvent } from './session/events.js'
import { Session } from './session/session.js'
import { SignalingServer } from './server/signaling-server.js'

export type DemoPeer = 'A' | 'B'

export type DemoEvent =
  | { type: 'server'; address: string; at: string }
  | { type: 'peer'; peer: DemoPeer; event: SessionEvent }
  | { type: 'done'; ok: boolean; reason: string; elapsedMs: number; at: string }

export interface DemoOptions {
  timeoutMs: number
  /** Wait for the path probes (verified or given up) before reporting success. */
  waitForVerification?: boolean
  signal?: AbortSignal
}

export interface DemoResult {
  ok: boolean
  reason: string
  /** The timeout passed first (not a failure or an interruption). */
  timedOut?: true
}

export class Demo {
  readonly events = new Emitter<DemoEvent>()

  /** Resolves with the outcome; never throws for a failed session, only reports it. */
  async run({ timeoutMs, waitForVerification = true, signal }: DemoOptions): Promise<DemoResult> {
    const started = performance.now()
    const at = () => new Date().toISOString()
    const server = await SignalingServer.start({ listen: '127.0.0.1:0' })
    this.events.emit({ type: 'server', address: server.address, at: at() })
    let timer: NodeJS.Timeout | undefined
    const backends: Backend[] = []
    const sessions: Session[] = []
    try {
      const keys = { A: PrivateKey.generate(), B: PrivateKey.generate() }
      for (const [peer, theirs] of [['A', 'B'], ['B', 'A']] as const) {
        const backend = await openBackend(`grpc://${server.address}?insecure=true`)
        backends.push(backend)
        const session = new Session({ backend, ours: keys[peer], theirs: keys[theirs].publicKey, ice: { loopback: true }, ...(signal ? { signal } : {}) })
        session.events.on((event) => this.events.emit({ type: 'peer', peer, event }))
        sessions.push(session)
      }
      const outcome = new Promise<DemoResult>((resolve) => {
        // Connected but not yet verified is a different story from not connected: tell which one it was.
        const connected = new Set<DemoPeer>()
        timer = setTimeout(() => {
          const what = connected.size === 2 && waitForVerification ? 'not verified' : 'not connected'
          resolve({ ok: false, reason: `${what} within ${timeoutMs / 1000} s`, timedOut: true })
        }, timeoutMs)
        signal?.addEventListener('abort', () => resolve({ ok: false, reason: 'interrupted' }), { once: true })
        const finished = new Set<DemoPeer>()
        this.events.on((e) => {
          if (e.type !== 'peer') return
          const { peer, event } = e
          if (event.type === 'state' && event.state === 'connected') connected.add(peer)
          const done = waitForVerification ? event.type === 'verified' || event.type === 'unverified' : event.type === 'state' && event.state === 'connected'
          if (done) finished.add(peer)
          if (finished.size === 2) resolve({ ok: true, reason: 'both peers connected' })
          if (event.type === 'state' && event.state === 'failed') resolve({ ok: false, reason: `peer ${peer} failed: ${event.reason ?? 'unknown reason'}` })
        })
        for (const [i, session] of sessions.entries()) {
          session.start().catch((err: Error) => resolve({ ok: false, reason: `peer ${i ? 'B' : 'A'}: ${err.message}` }))
        }
      })
      const result = await outcome
      this.events.emit({ type: 'done', ok: result.ok, reason: result.reason, elapsedMs: Math.round(performance.now() - started), at: at() })
      return result
    } finally {
      clearTimeout(timer)
      await Promise.allSettled(sessions.map((s) => s.close()))
      await Promise.allSettled(backends.map((b) => b.close()))
      await server.close()
    }
  }
}
