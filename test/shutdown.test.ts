import { afterEach, describe, expect, it, vi } from 'vitest'
import { abortOnSignals, whenAborted } from '../src/cli/shutdown.js'

afterEach(() => vi.restoreAllMocks())

describe('abortOnSignals', () => {
  it('aborts gracefully on the first signal and exits at once (130) on the second, even after dispose', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never)
    const shutdown = abortOnSignals(['SIGUSR2'])
    try {
      process.emit('SIGUSR2', 'SIGUSR2')
      expect(shutdown.signal.aborted).toBe(true)
      expect((shutdown.signal.reason as Error).message).toBe('stopped by SIGUSR2')
      await whenAborted(shutdown.signal)
      expect(exit).not.toHaveBeenCalled()
      shutdown.dispose() // the graceful path finished its work; a stuck exit must still be forceable
      process.emit('SIGUSR2', 'SIGUSR2')
      expect(exit).toHaveBeenCalledWith(130)
    } finally {
      process.removeAllListeners('SIGUSR2')
    }
  })

  it('dispose before any signal removes the handler', () => {
    const before = process.listenerCount('SIGUSR2')
    const shutdown = abortOnSignals(['SIGUSR2'])
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1)
    shutdown.dispose()
    expect(process.listenerCount('SIGUSR2')).toBe(before)
    expect(shutdown.signal.aborted).toBe(false)
  })
})
