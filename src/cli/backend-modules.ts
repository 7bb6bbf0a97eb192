// CUNICU_BACKEND_MODULES: backends from outside this package. Each listed module is imported once at
// start-up, before any command runs, and registers its schemes like the built-in ones do
// (registerBackend(scheme, () => import('./my-backend.js'))), so `-b SCHEME:…` works in every command.
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

export const BACKEND_MODULES_ENV = 'CUNICU_BACKEND_MODULES'

export class BackendModuleError extends Error {
  override name = 'BackendModuleError'
}

/** The variable's value as module URLs: comma-separated paths (relative to `cwd`) or file: URLs. */
export function backendModuleUrls(value: string | undefined, cwd = process.cwd()): URL[] {
  if (!value?.trim()) return []
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => (entry.startsWith('file:') ? new URL(entry) : pathToFileURL(isAbsolute(entry) ? entry : resolve(cwd, entry))))
}

/** Imports each module for its registrations; a module that cannot be loaded is a one-line error naming it. */
export async function loadBackendModules(urls: readonly URL[]): Promise<void> {
  for (const url of urls) {
    try {
      await import(url.href)
    } catch (err) {
      const reason = String((err as Error).message ?? err).split('\n')[0]
      throw new BackendModuleError(`${BACKEND_MODULES_ENV}: cannot load ${url.protocol === 'file:' ? decodeURIComponent(url.pathname) : url.href}: ${reason}`)
    }
  }
}
