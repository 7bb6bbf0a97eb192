// The listener-error policy of emitter.ts: the others still get the event, the process keeps running, and
// one warning per emitter says what happened.
import { describe, expect, it, vi } from 'vitest'
import { Emitter, LISTENER_ERROR_CODE, ListenerErrors } from '../src/core/emitter.js'

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
      // The code users filter on (NODE_OPTIONS, process.on('warning')) is part of the contract.
      expect(LISTENER_ERROR_CODE).toBe('CUNICU_LISTENER_ERROR')
    } finally {
      warn.mockRestore()
    }
  })

  it('the warning carries the stack of an Error (where the bug is), the text of anything else', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const bug = new Error('renderer bug')
      bug.stack = 'Error: renderer bug\n    at render (view.tsx:12:3)'
      new ListenerErrors().report(bug)
      expect(String(warn.mock.calls[0]![0])).toContain('at render (view.tsx:12:3)')
      new ListenerErrors().report('a string thrown')
      expect(String(warn.mock.calls[1]![0])).toContain('a string thrown')
      const each = new ListenerErrors()
      each.call(() => {
        throw new Error('one')
      }, 1)
      each.call(() => {
        throw new Error('two')
      }, 2)
      expect(warn).toHaveBeenCalledTimes(3)
    } finally {
      warn.mockRestore()
    }
  })

  it('clear() removes every listener', () => {
    const emitter = new Emitter<number>()
    const seen: number[] = []
    emitter.on((n) => void seen.push(n))
    emitter.on((n) => void seen.push(n * 10))
    emitter.emit(1)
    emitter.clear()
    emitter.emit(2)
    expect(seen).toEqual([1, 10])
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
