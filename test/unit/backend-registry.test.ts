// The URL-scheme registry: a backend defined in this file alone registers its scheme and is opened by URL,
// its module loaded only then; bad schemes, clashes and half-opened lists fail clearly.
import { describe, expect, it, vi } from 'vitest'
import type { Backend, BackendStatus, BackendOptions } from '../../src/core/backend.js'
import { BackendError } from '../../src/core/backend.js'
import { openBackend, parseBackendUrl, registerBackend, registeredSchemes, type BackendModule } from '../../src/core/backend-registry.js'
import { MultiBackend } from '../../src/core/backends/multi.js'

/** A backend that records how it was opened and whether it was closed; it carries nothing. */
class RecordingBackend implements Backend {
  readonly type = 'recording'
  closed = false
  constructor(
    readonly url: string,
    readonly options: BackendOptions,
  ) {}
  async subscribe(): Promise<void> {}
  async unsubscribe(): Promise<void> {}
  async publish(): Promise<{ size: number }> {
    return { size: 0 }
  }
  onStatus(_listener: (status: BackendStatus) => void): () => void {
    return () => {}
  }
  async close(): Promise<void> {
    this.closed = true
  }
}

/** A loader whose module is "imported" only when called, as `() => import('./x.js')` would be. */
function recordingLoader(opened: RecordingBackend[] = []) {
  return vi.fn(
    async (): Promise<BackendModule> => ({
      createBackend: (url, options) => {
        const backend = new RecordingBackend(url.href, options)
        opened.push(backend)
        return backend
      },
    }),
  )
}

describe('registerBackend and openBackend', () => {
  it('opens a URL of a registered scheme through its module, loaded only on first use, and passes the options on', async () => {
    const loader = recordingLoader()
    registerBackend('rec-one', loader)
    expect(registeredSchemes()).toContain('rec-one:')
    expect(parseBackendUrl('rec-one://host/x?y=1').href).toBe('rec-one://host/x?y=1')
    expect(loader).not.toHaveBeenCalled() // registering and parsing load nothing

    const backend = await openBackend('rec-one://host/x?y=1', { publishTimeoutMs: 1234 })
    expect(loader).toHaveBeenCalledTimes(1)
    expect(backend).toBeInstanceOf(RecordingBackend)
    expect(backend.url).toBe('rec-one://host/x?y=1')
    expect((backend as RecordingBackend).options).toEqual({ publishTimeoutMs: 1234 })
  })

  it('accepts the scheme with or without its colon, and registers it once only', async () => {
    registerBackend('rec-two:', recordingLoader())
    expect(registeredSchemes().filter((s) => s === 'rec-two:')).toEqual(['rec-two:'])
    expect(() => registerBackend('rec-two', recordingLoader())).toThrow(new BackendError('backend scheme "rec-two:" is already registered'))
  })

  it('rejects names that are not URL schemes', () => {
    for (const bad of ['', ':', '2grpc', 'gr pc', 'GRPC', 'grpc/x']) {
      expect(() => registerBackend(bad, recordingLoader()), bad).toThrow(/is not a URL scheme/)
    }
    expect(registeredSchemes()).not.toContain('GRPC:')
  })

  it('names unknown schemes and non-URLs before loading anything', async () => {
    const loader = recordingLoader()
    registerBackend('rec-three', loader)
    await expect(openBackend('nosuch://x')).rejects.toThrow(new RegExp(`backend "nosuch://x": unknown scheme "nosuch:" \\(known: .*rec-three:`))
    await expect(openBackend('not a url')).rejects.toThrow('backend "not a url" is not a URL: expected e.g. grpc://127.0.0.1:8080?insecure=true or inprocess:')
    await expect(openBackend(['rec-three:a', 'nosuch:b'])).rejects.toBeInstanceOf(BackendError)
    await expect(openBackend([])).rejects.toThrow(new BackendError('no backend given'))
    expect(loader).not.toHaveBeenCalled()
  })

  it('opens several URLs as one MultiBackend, in the given order', async () => {
    const opened: RecordingBackend[] = []
    registerBackend('rec-four', recordingLoader(opened))
    const multi = await openBackend(['rec-four:a', 'rec-four:b'])
    expect(multi).toBeInstanceOf(MultiBackend)
    expect((multi as MultiBackend).backends).toEqual(opened)
    expect(multi.url).toBe('rec-four:a,rec-four:b')
  })

  it('closes the backends it opened when another of the list fails to open', async () => {
    const opened: RecordingBackend[] = []
    registerBackend('rec-five', recordingLoader(opened))
    registerBackend('rec-broken', async () => ({
      createBackend: () => {
        throw new BackendError('rec-broken: refuses')
      },
    }))
    await expect(openBackend(['rec-five:a', 'rec-broken:b'])).rejects.toThrow(new BackendError('rec-broken: refuses'))
    expect(opened).toHaveLength(1)
    expect(opened[0]!.closed).toBe(true)
  })

  it('says so when a module has no createBackend, or a loader gives no module', async () => {
    registerBackend('rec-empty', async () => ({}) as BackendModule)
    await expect(openBackend('rec-empty:x')).rejects.toThrow(new BackendError('backend scheme "rec-empty:": its module exports no createBackend(url, options)'))
    registerBackend('rec-nothing', async () => undefined as unknown as BackendModule)
    await expect(openBackend('rec-nothing:x')).rejects.toThrow(new BackendError('backend scheme "rec-nothing:": its module exports no createBackend(url, options)'))
  })

  it('an empty registry says it knows none', async () => {
    vi.resetModules()
    const fresh = await import('../../src/core/backend-registry.js')
    expect(fresh.registeredSchemes()).toEqual([])
    expect(() => fresh.parseBackendUrl('grpc://x')).toThrow('backend "grpc://x": unknown scheme "grpc:" (known: none)')
  })
})

describe('the built-in schemes (backends/index.ts)', () => {
  it('are registered by importing the module, into the same registry', async () => {
    // Fresh module instances: what this file registered above is not there.
    vi.resetModules()
    const registry = await import('../../src/core/backend-registry.js')
    expect(registry.registeredSchemes()).toEqual([])
    const builtIn = await import('../../src/core/backends/index.js')
    expect(registry.registeredSchemes()).toEqual(['grpc:', 'inprocess:', 'multicast:'])
    expect(builtIn.openBackend).toBe(registry.openBackend)
    const inprocess = await builtIn.openBackend('inprocess:')
    expect(inprocess.type).toBe('inprocess')
    await inprocess.close()
    // Each scheme reaches its own module: its URL checks answer (no socket or connection is made).
    await expect(builtIn.openBackend('grpc://')).rejects.toThrow(/^backend grpc:\/\/: missing HOST:PORT/)
    await expect(builtIn.openBackend('multicast://10.0.0.1:9999')).rejects.toThrow(/not a multicast address/)
  })
})
