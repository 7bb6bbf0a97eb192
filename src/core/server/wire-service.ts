// The Signaling service as this server speaks it on grpc-js: the generated definition, with Publish handing
// over the raw bytes (the service finds the recipient in them, envelope-scan.ts) and Subscribe writing
// pre-encoded frames, so the bytes on the wire are exactly those of the generated service while fan-out
// costs no re-encoding. Also the reflection package it announces.
import type { ServiceDefinition } from '@grpc/grpc-js'
import { load as loadProto, type PackageDefinition } from '@grpc/proto-loader'
import { Envelope, SignalingService, type SubscribeParams } from '../../gen/signaling/signaling.js'
import { protoDir, SIGNALING_PROTO } from '../package-root.js'
import { RELAY_PROTO, type RelayRegistry } from './relay-registry.js'

/** SubscribeParams, or why the bytes are not one. */
export type SubscribeRequest = SubscribeParams & { invalid?: string }

export const wireService = {
  ...SignalingService,
  publish: {
    ...SignalingService.publish,
    requestDeserialize: (bytes: Buffer): Buffer => bytes,
  },
  subscribe: {
    ...SignalingService.subscribe,
    // A throwing deserializer would end the call with INTERNAL; garbage from a client is INVALID_ARGUMENT.
    requestDeserialize: decodeSubscribeRequest,
    responseSerialize: (frame: Buffer): Buffer => frame,
  },
} as unknown as ServiceDefinition

/** SubscribeParams from a request message; never throws. */
export function decodeSubscribeRequest(bytes: Buffer): SubscribeRequest {
  try {
    return SignalingService.subscribe.requestDeserialize(bytes)
  } catch (err) {
    return { key: new Uint8Array(0), invalid: (err as Error).message }
  }
}

/** The live-subscription marker, as a frame: an Envelope with every field unset encodes to zero bytes. */
export const SYNC_FRAME = Buffer.concat([Buffer.alloc(5), Envelope.encode(Envelope.create()).finish()])

let reflectionPackage: Promise<PackageDefinition> | undefined
let reflectionWithRelays: Promise<PackageDefinition> | undefined

/** Reflection also lists RelayRegistry when this server offers it. */
export function loadReflectionPackageFor(relays: RelayRegistry | undefined): Promise<PackageDefinition> {
  if (!relays) return loadReflectionPackage()
  reflectionWithRelays ??= loadProto([SIGNALING_PROTO, RELAY_PROTO], { includeDirs: [protoDir()] })
  reflectionWithRelays.catch(() => (reflectionWithRelays = undefined))
  return reflectionWithRelays
}

function loadReflectionPackage(): Promise<PackageDefinition> {
  // signaling.proto only: reflection lists every service it is fed, and this server does not serve RelayRegistry.
  reflectionPackage ??= loadProto(SIGNALING_PROTO, { includeDirs: [protoDir()] })
  reflectionPackage.catch(() => (reflectionPackage = undefined))
  return reflectionPackage
}

/**
 * grpc-js 1.14 runs a handler even for a call that already ended with DEADLINE_EXCEEDED while waiting for
 * the end of the request, once the client resets the stream; that call never emits 'cancelled' or 'close',
 * so a subscriber added for it would hold its stream budgets forever (found by test/server-fuzz.test.ts).
 */
export function endedAtDeadline(call: { getDeadline(): Date | number }): boolean {
  const deadline = call.getDeadline()
  return (deadline instanceof Date ? deadline.getTime() : deadline) <= Date.now()
}
