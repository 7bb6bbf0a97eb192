// The benchmark payload: a real Message of an exact protobuf size (the issue asks for 200 bytes).
import { Message } from '../dist/gen/signaling/signaling.js'

export const MESSAGE_BYTES = 200

/** A Message whose protobuf encoding is exactly `bytes` long: ICE credentials with a padded password. */
export function messageOfSize(bytes = MESSAGE_BYTES) {
  for (let pwd = 1; pwd < bytes; pwd++) {
    const m = Message.fromPartial({ credentials: { ufrag: 'benchufragbenchu', pwd: 'p'.repeat(pwd), needCreds: true } })
    const size = Message.encode(m).finish().length
    if (size === bytes) return m
    if (size > bytes) break
  }
  throw new Error(`no Message of exactly ${bytes} bytes`)
}
