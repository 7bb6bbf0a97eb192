// The URL-scheme registry (cunīcu's signaling.Backends map): a backend registers its scheme with a loader,
// and the loader's module is imported only when a URL of that scheme is opened, so a command that never
// opens gRPC never loads grpc-js. It knows no backend by name: the built-in ones register themselves in
// backends/index.ts, others through CUNICU_BACKEND_MODULES (see README, "Adding a backend").
import { BackendError, type Backend, type BackendFactory, type BackendOptions } from './backend.js'

/** What a loader resolves to: a backend module, e.g. `() => import('./grpc.js')`. */
export interface BackendModule {
  createBackend: BackendFactory
}

export type BackendLoader = () => Promise<BackendModule>

// RFC 3986 §3.1, lower case as the WHATWG URL parser returns it.
const SCHEME = /^[a-z][a-z0-9+.-]*$/

const loaders = new Map<string, BackendLoader>()

/** The URL `protocol` form ("grpc:") of a scheme given with or without its colon. */
function protocolOf(scheme: string): string {
  const bare = scheme.endsWith(':') ? scheme.slice(0, -1) : scheme
  if (!SCHEME.test(bare)) throw new BackendError(`backend scheme "${scheme}" is not a URL scheme (letters, digits, + . -, starting with a letter)`)
  return `${bare}:`
}

/**
 * Makes `scheme` ("grpc" or "grpc:") openable. A scheme is registered once: a second registration is an
 * error, so a backend module loaded from outside can never silently replace a built-in one.
 */
export function registerBackend(scheme: string, loader: BackendLoader): void {
  const protocol = protocolOf(scheme)
  if (loaders.has(protocol)) throw new BackendError(`backend scheme "${protocol}" is already registered`)
  loaders.set(protocol, loader)
}

/** The registered schemes ("grpc:", …), in registration order. */
export function registeredSchemes(): string[] {
  return [...loaders.keys()]
}

/** Parses a backend URL and checks that its scheme is registered; does not load the backend. */
export function parseBackendUrl(text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new BackendError(`backend "${text}" is not a URL: expected e.g. grpc://127.0.0.1:8080?insecure=true or inprocess:`)
  }
  if (!loaders.has(url.protocol)) {
    throw new BackendError(`backend "${text}": unknown scheme "${url.protocol}" (known: ${registeredSchemes().join(', ') || 'none'})`)
  }
  return url
}

async function openOne(url: URL, options: BackendOptions): Promise<Backend> {
  const module = await loaders.get(url.protocol)!()
  if (typeof module?.createBackend !== 'function') {
    throw new BackendError(`backend scheme "${url.protocol}": its module exports no createBackend(url, options)`)
  }
  return module.createBackend(url, options)
}

/** Opens one backend, or a MultiBackend over all of them when given several URLs. */
export async function openBackend(urls: string | readonly string[], options: BackendOptions = {}): Promise<Backend> {
  const list = typeof urls === 'string' ? [urls] : [...urls]
  if (list.length === 0) throw new BackendError('no backend given')
  // Every URL is checked before any backend is opened: a typo in the second never leaves the first open.
  const parsed = list.map(parseBackendUrl)
  const settled = await Promise.allSettled(parsed.map((url) => openOne(url, options)))
  const opened = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) {
    await Promise.allSettled(opened.map((b) => b.close()))
    throw failed.reason
  }
  if (opened.length === 1) return opened[0]!
  const { MultiBackend } = await import('./backends/multi.js')
  return new MultiBackend(opened)
}
