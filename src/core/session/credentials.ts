// ICE credentials as cunīcu makes them (WIRE.md §7): 16-letter ufrag, 32-letter pwd, fresh for every agent.
// node:crypto's CSPRNG: noble's randomBytes goes through WebCrypto, whose first use loads its modules (~0.7 ms of a start).
import { randomBytes } from 'node:crypto'

export const UFRAG_LENGTH = 16
export const PWD_LENGTH = 32
export const CREDENTIAL_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'

export interface IceCredentials {
  ufrag: string
  pwd: string
}

// 52 letters: a byte maps evenly onto them only below 4 × 52 = 208; larger bytes are drawn again,
// so no letter is more likely than another (a plain `byte % 52` would favour the first 48).
const UNBIASED_LIMIT = Math.floor(256 / CREDENTIAL_ALPHABET.length) * CREDENTIAL_ALPHABET.length

/** `length` letters [a-zA-Z] from the CSPRNG, without modulo bias. */
export function randomLetters(length: number): string {
  let out = ''
  while (out.length < length) {
    for (const byte of randomBytes(Math.min(length - out.length + 8, 4096))) {
      if (byte >= UNBIASED_LIMIT) continue
      out += CREDENTIAL_ALPHABET[byte % CREDENTIAL_ALPHABET.length]
      if (out.length === length) break
    }
  }
  return out
}

export function generateCredentials(): IceCredentials {
  return { ufrag: randomLetters(UFRAG_LENGTH), pwd: randomLetters(PWD_LENGTH) }
}

export function sameCredentials(a: IceCredentials | undefined, b: IceCredentials | undefined): boolean {
  return a !== undefined && b !== undefined && a.ufrag === b.ufrag && a.pwd === b.pwd
}

/** Map key for a credential pair; ufrag and pwd never contain a newline in practice, and a collision only merges two keys. */
export function credentialsId(c: IceCredentials): string {
  return `${c.ufrag}\n${c.pwd}`
}

/** First characters of a ufrag, enough to tell agents apart in a log line without printing the whole value. */
export function shortUfrag(ufrag: string): string {
  return ufrag.length > 6 ? `${ufrag.slice(0, 6)}…` : ufrag
}
