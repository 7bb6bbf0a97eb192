// The listener-error policy of emitter.ts: the others still get the event, the process keeps running, and
// one warning per emitter says what happened.
import { describe, expect, it, vi } from 'vitest'
import { Emitter, LISTENER_ERROR_CODE } from '../src/core/emitter.js'

describe('Emitter', () => {
  it('calls listeners in order; a throwing one neither stops the others nor throws to the emitter; one warning', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const emitter = new Emitter<number>()
      const seen: string[] = []
      emitter.on((n) => void seen.push(`first ${n}`))
      emitter.on(() => {
        throw new Error('renderer bug')
      })
      const off = emitter.on((n) => void seen.push(`third ${n}`))
      expect(() => emitter.emit(1)).not.toThrow()
      emitter.emit(2)
      off()
      emitter.emit(3)
      expect(seen).toEqual(['first 1', 'third 1', 'first 2', 'third 2', 'first 3'])
      expect(warn).toHaveBeenCalledTimes(1)
      expect(warn.mock.calls[0]![0]).toMatch(/renderer bug/)
      expect(warn.mock.calls[0]![1]).toMatchObject({ code: LISTENER_ERROR_CODE })
    } finally {
      warn.mockRestore()
    }
  })

  it('a listener removed during an emit is not called later in that emit; one added is', () => {
    const emitter = new Emitter<string>()
    const seen: string[] = []
    let offSecond = () => {}
    emitter.on(() => {
      seen.push('first')
      offSecond()
    })
    offSecond = emitter.on(() => void seen.push('second'))
    emitter.emit('x')
    expect(seen).toEqual(['first'])
    const late = new Emitter<string>()
    late.on(() => {
      seen.push('adds')
      if (seen.length < 3) late.on(() => void seen.push('added'))
    })
    late.emit('y')
    expect(seen).toEqual(['first', 'adds', 'added'])
  })
})
