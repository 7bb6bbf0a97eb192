// Raw gRPC clients against a SignalingServer: the wire as any cunīcu peer sees it.
import { randomBytes } from 'node:crypto'
import { credentials, Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js'
import { Envelope, SignalingClient } from '../../src/gen/signaling/signaling.js'
import { withTimeout } from './wait.js'

export const randomKey = (length = 32): Uint8Array => new Uint8Array(randomBytes(length))

export function rawClient(address: string, options: Record<string, unknown> = {}): SignalingClient {
  return new SignalingClient(address, credentials.createInsecure(), options)
}

export function envelopeTo(recipient: Uint8Array, sender = randomKey(), bodyBytes = 40): Envelope {
  return Envelope.create({ sender, recipient, contents: { body: randomKey(bodyBytes), nonce: randomKey(24) } })
}

/** The envelope's wire bytes in hex: decoded bytes fields may be Buffers, so compare these. */
export const wire = (envelope: Envelope): string => Buffer.from(Envelope.encode(envelope).finish()).toString('hex')

export function publish(client: SignalingClient, envelope: Envelope): Promise<void> {
  return new Promise((resolve, reject) =>
    client.publish(envelope, new Metadata(), { deadline: Date.now() + 10_000 }, (err) => (err ? reject(err) : resolve())),
  )
}

/** A Subscribe stream whose envelopes after the sync marker are collected. */
export interface Subscription {
  call: ClientReadableStream<Envelope>
  /** Resolves with the sync envelope. */
  synced: Promise<Envelope>
  received: Envelope[]
  /** Resolves once `count` envelopes (after sync) have arrived. */
  waitFor(count: number, ms?: number): Promise<Envelope[]>
  /** Resolves with the stream's error (status), e.g. INVALID_ARGUMENT. */
  failed: Promise<ServiceError>
}

export function subscribe(client: SignalingClient, key: Uint8Array, metadata = new Metadata()): Subscription {
  const call = client.subscribe({ key }, metadata)
  const received: Envelope[] = []
  let sync: ((env: Envelope) => void) | undefined
  const synced = new Promise<Envelope>((resolve) => (sync = resolve))
  let first = true
  const waiters: { count: number; resolve: () => void }[] = []
  call.on('data', (env: Envelope) => {
    if (first) {
      first = false
      return sync?.(env)
    }
    received.push(env)
    for (const w of waiters) if (received.length >= w.count) w.resolve()
  })
  const failed = new Promise<ServiceError>((resolve) => call.on('error', resolve))
  const syncedInTime = withTimeout(synced, 5000, 'the sync envelope')
  // A stream that is meant to fail never syncs; only a test that awaits `synced` should see that.
  syncedInTime.catch(() => {})
  return {
    call,
    synced: syncedInTime,
    received,
    failed,
    waitFor: (count, ms = 5000) =>
      withTimeout(
        new Promise<Envelope[]>((resolve) => {
          if (received.length >= count) return resolve(received)
          waiters.push({ count, resolve: () => resolve(received) })
        }),
        ms,
        `${count} envelopes (have ${received.length})`,
      ),
  }
}
