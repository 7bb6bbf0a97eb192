// Private keys on disk: written atomically with mode 0600, and a warning when a key file is readable by
// group or others (as ssh and wg do), since anyone who reads it can impersonate the peer.
import { randomBytes } from 'node:crypto'
import { chmod, link, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { PrivateKey } from './keys.js'

export class KeyFileError extends Error {
  override name = 'KeyFileError'
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** Reads a private key from a file ("-" = stdin). */
export async function readKeyFile(path: string): Promise<{ key: PrivateKey; warnings: string[] }> {
  if (path === '-') return { key: PrivateKey.parse(await readStdin(), 'private key on stdin'), warnings: [] }
  let text: string
  const warnings: string[] = []
  try {
    text = await readFile(path, 'utf8')
    const mode = (await stat(path)).mode & 0o777
    if (mode & 0o077) warnings.push(`warning: key file ${path} is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${path}`)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new KeyFileError(`cannot read key file ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
  }
  return { key: PrivateKey.parse(text, `key file ${path}`), warnings }
}

/**
 * Writes the key with mode 0600 through a temporary file in the same directory, so a crash never leaves
 * a half-written key. Without `force` an existing file is never replaced (link() fails if it exists).
 */
export async function writeKeyFile(path: string, key: PrivateKey, force = false): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  const file = await open(tmp, 'wx', 0o600)
  try {
    await file.writeFile(key.toBase64() + '\n')
    await file.sync()
  } finally {
    await file.close()
  }
  try {
    await chmod(tmp, 0o600) // the umask may have narrowed, never widened, but be explicit
    if (force) {
      await rename(tmp, path)
    } else {
      await link(tmp, path)
      await unlink(tmp)
    }
  } catch (err) {
    await unlink(tmp).catch(() => {})
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyFileError(`${path} exists; pass --force to overwrite it`)
    throw new KeyFileError(`cannot write key file ${path}: ${(err as Error).message}`)
  }
}
