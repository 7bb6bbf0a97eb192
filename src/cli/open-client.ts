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

export async function openClient(
  command: Command,
  flags: { 'key-file'?: string; 'ca-file'?: string; 'publish-timeout'?: number },
  urls: string[],
): Promise<Client> {
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
    backend = await openBackend(urls, {
      ...(flags['ca-file'] ? { caFile: flags['ca-file'] } : {}),
      ...(flags['publish-timeout'] ? { publishTimeoutMs: flags['publish-timeout'] * 1000 } : {}),
    })
  } catch (err) {
    command.error((err as Error).message, { exit: err instanceof BackendError ? ExitCode.Usage : ExitCode.Backend })
  }
  return { key, backend }
}
