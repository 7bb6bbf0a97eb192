// Key + backend for the commands that talk to peers, with the one-line errors and hints users need.
import type { Command } from '@oclif/core'
import { BackendError, type Backend } from '../core/backend.js'
import { openBackend } from '../core/backends/index.js'
import type { PrivateKey } from '../core/keys.js'
import { ExitCode } from './exit-codes.js'
import { loadPrivateKey } from './flags.js'

export interface Client {
  key: PrivateKey
  backend: Backend
}

type BackendFlagValues = { 'ca-file'?: string; 'publish-timeout'?: number }

/** The -b backends with the flags' TLS roots and publish deadline (one place for every command). */
export function openFlagBackends(flags: BackendFlagValues, urls: string[]): Promise<Backend> {
  return openBackend(urls, {
    ...(flags['ca-file'] ? { caFile: flags['ca-file'] } : {}),
    ...(flags['publish-timeout'] ? { publishTimeoutMs: flags['publish-timeout'] * 1000 } : {}),
  })
}

/** A backend that cannot be opened: a bad URL is the user's input (2), anything else the backend's (3). */
export function backendOpenExitCode(err: unknown): number {
  return err instanceof BackendError ? ExitCode.Usage : ExitCode.Backend
}

export async function openClient(command: Command, flags: BackendFlagValues & { 'key-file'?: string }, urls: string[]): Promise<Client> {
  let key: PrivateKey
  try {
    const loaded = await loadPrivateKey(flags['key-file'])
    loaded.warnings.forEach((w) => process.stderr.write(`${w}\n`))
    key = loaded.key
  } catch (err) {
    command.error((err as Error).message, { exit: ExitCode.Usage })
  }
  let backend: Backend
  try {
    backend = await openFlagBackends(flags, urls)
  } catch (err) {
    command.error((err as Error).message, { exit: backendOpenExitCode(err) })
  }
  return { key, backend }
}
