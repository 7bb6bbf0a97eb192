// Finds a system program on PATH (and in /usr/bin, /usr/sbin, which root's PATH may lack), for the tests
// and benchmarks that run real servers from Debian's packages.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** The program's path, or undefined when it is not installed. */
export function findExecutable(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat('/usr/bin', '/usr/sbin')) {
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}
