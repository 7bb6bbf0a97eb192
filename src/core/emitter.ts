// A minimal typed event channel: listeners are called synchronously and a throwing listener cannot
// break the emitter (the engine must keep running whatever a renderer does).
export type Listener<T> = (event: T) => void

export class Emitter<T> {
  readonly #listeners = new Set<Listener<T>>()

  /** Adds a listener; the returned function removes it. */
  on(listener: Listener<T>): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  emit(event: T): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event)
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }

  clear(): void {
    this.#listeners.clear()
  }
}
