// A minimal typed event channel: listeners are called synchronously, in the order they were added.
//
// Listener errors, the one policy: a listener that throws is a bug in that listener (a renderer, a test
// hook), not in the engine that emitted the event. The engine keeps running, the other listeners still
// get the event, and the error is reported once per emitter as a process warning (stderr, code
// CUNICU_LISTENER_ERROR) instead of ending the process from inside a socket callback. The same holds for
// every other callback the engine calls (a backend's MessageHandlers, subscriptions.ts): ListenerErrors.
export type Listener<T> = (event: T) => void

export const LISTENER_ERROR_CODE = 'CUNICU_LISTENER_ERROR'

/** The policy for one owner of listeners: each throw is swallowed, the first one reported as a warning. */
export class ListenerErrors {
  #reported = false

  report(err: unknown): void {
    if (this.#reported) return
    this.#reported = true
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
    process.emitWarning(`an event listener threw (the engine keeps running; later errors of this emitter are not reported): ${message}`, { code: LISTENER_ERROR_CODE })
  }

  /** Calls one listener under the policy. */
  call<A>(listener: (arg: A) => void, arg: A): void {
    try {
      listener(arg)
    } catch (err) {
      this.report(err)
    }
  }
}

export class Emitter<T> {
  readonly #listeners = new Set<Listener<T>>()
  readonly #errors = new ListenerErrors()

  /** Adds a listener; the returned function removes it. */
  on(listener: Listener<T>): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  emit(event: T): void {
    // The live set, no copy per event (hot paths emit per datagram): a listener removed during an emit is
    // not called later in it, one added during it is.
    for (const listener of this.#listeners) this.#errors.call(listener, event)
  }

  clear(): void {
    this.#listeners.clear()
  }
}
