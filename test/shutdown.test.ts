import { constants } from 'node:os'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { abortOnSignals, exitCodeOfSignal, takeStopSignal, whenAborted } from '../src/cli/shutdown.js'

afterEach(() => vi.restoreAllMocks())

describe('abortOnSignals', () => {
  it('aborts gracefully on the first signal and exits at once on the second (128 + its number, as shells report it), even after dispose', async () => {
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
      expect(exit).toHaveBeenCalledWith(128 + constants.signals.SIGUSR2)
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

describe('exit codes of stop signals', () => {
  it('are the shell\'s: 130 after SIGINT, 143 after SIGTERM', () => {
    expect(exitCodeOfSignal('SIGINT')).toBe(130)
    expect(exitCodeOfSignal('SIGTERM')).toBe(143)
  })

  it('the signal that started a graceful stop is kept for the command base class, once', () => {
    vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never)
    takeStopSignal()
    const shutdown = abortOnSignals(['SIGUSR2'])
    try {
      expect(takeStopSignal()).toBeUndefined()
      process.emit('SIGUSR2', 'SIGUSR2')
      expect(shutdown.stoppedBy).toBe('SIGUSR2')
      expect(takeStopSignal()).toBe('SIGUSR2')
      expect(takeStopSignal()).toBeUndefined()
    } finally {
      process.removeAllListeners('SIGUSR2')
    }
  })
})
