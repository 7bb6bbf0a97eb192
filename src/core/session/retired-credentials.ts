// Remote credentials the peer has moved on from: late copies of them (a reordering backend, a resend) must
// not look like yet another restart. Bounded FIFO: the oldest is forgotten first.
import { credentialsId, type IceCredentials } from './credentials.js'

export const RETIRED_LIMIT = 64

export class RetiredCredentials {
  readonly #ids = new Set<string>()

  constructor(private readonly limit = RETIRED_LIMIT) {}

  retire(credentials: IceCredentials): void {
    this.#ids.add(credentialsId(credentials))
    if (this.#ids.size > this.limit) this.#ids.delete(this.#ids.values().next().value!)
  }

  has(credentials: IceCredentials): boolean {
    return this.#ids.has(credentialsId(credentials))
  }
}
