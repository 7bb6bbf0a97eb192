// The libsodium-made vectors, copied from shared/vectors into test/vectors so a clone tests on its own.
import { readFileSync } from 'node:fs'

const load = (name: string) => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8'))

export interface BoxVector {
  name: string
  senderPrivate: string
  senderPublic: string
  recipientPrivate: string
  recipientPublic: string
  nonce: string
  messageJson: unknown
  messageProtobuf: string
  body: string
  envelopeProtobuf: string
}

export const boxVectors: BoxVector[] = load('box.json').vectors
export const keyPairs: { private: string; public: string }[] = load('keys.json').pairs
export const rolePairs: { case: string; a: string; b: string; roleOfA: 'controlling' | 'controlled' }[] = load('role.json').pairs

export const b64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'))
export const toB64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')
