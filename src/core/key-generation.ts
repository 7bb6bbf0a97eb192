// A new private key is 32 CSPRNG bytes, clamped like `wg genkey` (WIRE.md §1). Kept apart from keys.ts,
// which loads the curve arithmetic: generating a key needs none, so `keygen` starts as fast as node.
import { randomBytes } from 'node:crypto'

export function generatePrivateKeyBytes(): Uint8Array {
  const k = new Uint8Array(randomBytes(32))
  k[0]! &= 248
  k[31]! &= 127
  k[31]! |= 64
  return k
}
