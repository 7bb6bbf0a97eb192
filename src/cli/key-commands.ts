// What `keygen` and `pubkey` do, shared by their oclif commands and by the fast path in bin/run.js
// (scripts call these in loops; without flags they answer before oclif is even loaded).
import { generatePrivateKeyBytes } from '../core/key-generation.js'
import { ExitCode } from './exit-codes.js'

export class UsageError extends Error {
  override name = 'UsageError'
}

/** A new private key in base64, without loading the curve arithmetic (generation needs none). */
export function newPrivateKeyText(): string {
  return Buffer.from(generatePrivateKeyBytes()).toString('base64')
}

/** The public key of the private key on stdin, as `wg pubkey` reads it; bad input is a UsageError. */
export async function publicKeyOfStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('pubkey reads a private key on stdin: e.g. `cunicu-ts pubkey < peer.key`')
  const [{ readKeyFile }, { KeyError }] = await Promise.all([import('../core/key-file.js'), import('../core/keys.js')])
  try {
    return (await readKeyFile('-')).key.publicKey.toString()
  } catch (err) {
    if (err instanceof KeyError) throw new UsageError(err.message)
    throw err
  }
}

/** The fast path: `keygen` or `pubkey` with no flags. Returns the exit code. */
export async function runKeyCommand(command: 'keygen' | 'pubkey'): Promise<number> {
  try {
    process.stdout.write((command === 'keygen' ? newPrivateKeyText() : await publicKeyOfStdin()) + '\n')
    return ExitCode.Ok
  } catch (err) {
    process.stderr.write(`Error: ${(err as Error).message}\n`)
    return err instanceof UsageError ? ExitCode.Usage : ExitCode.Error
  }
}
