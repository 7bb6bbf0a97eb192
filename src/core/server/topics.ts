// One topic per recipient public key (WIRE.md §5): the set of live subscriber streams for that key.
// Empty topics are removed at once, so the map never outgrows the number of open streams.
export class Topics<S> {
  readonly #byKey = new Map<string, Set<S>>()

  add(key: Uint8Array, subscriber: S): void {
    const id = topicId(key)
    let set = this.#byKey.get(id)
    if (!set) this.#byKey.set(id, (set = new Set()))
    set.add(subscriber)
  }

  remove(key: Uint8Array, subscriber: S): void {
    const id = topicId(key)
    const set = this.#byKey.get(id)
    if (!set) return
    set.delete(subscriber)
    if (set.size === 0) this.#byKey.delete(id)
  }

  /**
   * The live set of the key at bytes [at, at + keyLength) of `bytes`, without copying the key or the set:
   * the relay's hot path. Deleting from a Set while iterating it is safe; adding cannot happen during a
   * synchronous fan-out.
   */
  setAt(bytes: Buffer, at: number, keyLength: number): ReadonlySet<S> | undefined {
    return this.#byKey.get(bytes.toString('base64', at, at + keyLength))
  }

  /** A snapshot, so a subscriber that leaves during fan-out cannot disturb the loop. */
  subscribers(key: Uint8Array): S[] {
    const set = this.#byKey.get(topicId(key))
    return set ? [...set] : []
  }

  all(): S[] {
    return [...this.#byKey.values()].flatMap((set) => [...set])
  }

  get topicCount(): number {
    return this.#byKey.size
  }

  get subscriberCount(): number {
    let n = 0
    for (const set of this.#byKey.values()) n += set.size
    return n
  }
}

function topicId(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')
}
