// Files that ship beside the code: proto/ (server reflection, strict message JSON) and package.json (version).
// The module runs from src/core (tsx, vitest) or dist/core (the build), so walk up to the
// first directory that holds both rather than hard-coding a depth.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const SIGNALING_PROTO = 'signaling/signaling.proto'

let cached: string | undefined

export function packageRoot(): string {
  if (cached) return cached
  const start = dirname(fileURLToPath(import.meta.url))
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'proto', SIGNALING_PROTO))) return (cached = dir)
    if (dirname(dir) === dir) break
  }
  throw new Error(`cannot find the package's proto/${SIGNALING_PROTO} above ${start}: the package must ship its proto/ directory`)
}

export function protoDir(): string {
  return join(packageRoot(), 'proto')
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown }
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0'
}
