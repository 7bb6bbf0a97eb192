// Flags shared by the commands that talk to a backend, and how they become keys and backends.
import { Flags } from '@oclif/core'
import { readKeyFile } from '../core/key-file.js'
import { PrivateKey } from '../core/keys.js'

/** For commands that log lines of their own (not views, not data): how much of it. */
export const logFlags = {
  quiet: Flags.boolean({ char: 'q', summary: 'Print only errors (and the data asked for).', exclusive: ['verbose'] }),
  verbose: Flags.boolean({ char: 'v', summary: 'Print more about what happens, on stderr.' }),
}

export const DEFAULT_BACKEND = 'grpc://127.0.0.1:8080?insecure=true'

export const keyFlags = {
  'key-file': Flags.string({
    char: 'k',
    summary: 'File with our private key (base64, as `keygen` writes it); "-" reads it from stdin.',
    env: 'CUNICU_KEY_FILE',
  }),
}

export const backendFlags = {
  backend: Flags.string({
    char: 'b',
    summary: 'Signaling backend URL; repeat for several at once.',
    description: `grpc://HOST:PORT (TLS; ?insecure=true for plain text, ?skip_verify=true to skip certificate checks), multicast://GROUP:PORT?interface=NAME&loopback=true (LAN, no server), inprocess:. Env CUNICU_BACKEND takes a comma-separated list. Default: ${DEFAULT_BACKEND}`,
    multiple: true,
    multipleNonGreedy: true, // `-b URL PEER_PK` must leave PEER_PK to the argument
  }),
  'ca-file': Flags.string({ summary: 'PEM file of CA certificates to trust for grpc:// TLS (and session\'s turns: servers) instead of the system roots.' }),
  'publish-timeout': Flags.integer({ summary: 'Seconds a publish may take before it fails.', default: 10, min: 1 }),
}

/** Flag, then env CUNICU_BACKEND (comma-separated), then the default. */
export function backendUrls(flag: string[] | undefined): string[] {
  if (flag?.length) return flag
  const env = process.env.CUNICU_BACKEND?.split(',').map((s) => s.trim()).filter(Boolean)
  return env?.length ? env : [DEFAULT_BACKEND]
}

export interface LoadedKey {
  key: PrivateKey
  /** Warnings for the user, e.g. a key file others may read. */
  warnings: string[]
}

/** --key-file, then env CUNICU_PRIVATE_KEY; a missing key is an error with a hint. */
export async function loadPrivateKey(keyFile: string | undefined): Promise<LoadedKey> {
  if (keyFile) return readKeyFile(keyFile)
  const env = process.env.CUNICU_PRIVATE_KEY
  if (env) return { key: PrivateKey.parse(env, 'CUNICU_PRIVATE_KEY'), warnings: [] }
  throw new MissingKeyError('no private key: pass -k FILE (or -k - for stdin) or set CUNICU_PRIVATE_KEY; create one with `cunicu-ts keygen -o FILE`')
}

export class MissingKeyError extends Error {
  override name = 'MissingKeyError'
}
