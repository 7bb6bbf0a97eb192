// The session's messages to the peer over its backend, each told as an 'envelope' event once sent (or an
// 'error' when it could not be), and the one-line description both directions show for a message.
import { Message } from '../../gen/signaling/signaling.js'
import type { Backend } from '../backend.js'
import { errorMessage } from '../error-message.js'
import type { PrivateKey, PublicKey } from '../keys.js'
import { messageKind } from '../message-kind.js'
import { candidateInfoFromProto, formatCandidate } from './candidate-mapping.js'
import { shortUfrag } from './credentials.js'
import type { SessionEventBody } from './events.js'

export interface PeerMessagesOptions {
  backend: Backend
  ours: PrivateKey
  theirs: PublicKey
  /** Aborts every publish still in flight (the session closed). */
  signal: AbortSignal
  emit(event: SessionEventBody): void
}

export class PeerMessages {
  readonly #o: PeerMessagesOptions

  constructor(options: PeerMessagesOptions) {
    this.#o = options
  }

  /** Fire and forget: the outcome is an event, never a rejection. Nothing is told once `signal` aborted. */
  publish(message: Message, detail: string | undefined = describeMessage(message)): void {
    const { backend, ours, theirs, signal, emit } = this.#o
    const kind = messageKind(message)
    let sending: Promise<{ size: number }>
    try {
      sending = backend.publish(ours, theirs, message, signal)
    } catch (err) {
      sending = Promise.reject(err)
    }
    sending.then(
      (result) => {
        if (!signal.aborted) emit({ type: 'envelope', direction: 'out', kind, size: result.size, backend: backend.url, ...(detail !== undefined ? { detail } : {}) })
      },
      (err: unknown) => {
        if (!signal.aborted) emit({ type: 'error', source: 'publish', message: `could not send ${kind} (${detail}) via ${backend.url}: ${errorMessage(err)}` })
      },
    )
  }

  /** Our credentials; `needCreds` asks the peer for its own. */
  credentials(credentials: { ufrag: string; pwd: string }, needCreds: boolean): void {
    this.publish(Message.fromPartial({ credentials: { ufrag: credentials.ufrag, pwd: credentials.pwd, needCreds } }))
  }
}

/** "ufrag abcd…, need creds" or the candidate as formatCandidate shows it; undefined for other kinds. */
export function describeMessage(message: Message): string | undefined {
  if (message.credentials) {
    const c = message.credentials
    return `ufrag ${shortUfrag(c.ufrag)}${c.needCreds ? ', need creds' : ''}`
  }
  if (message.candidate) {
    try {
      return formatCandidate(candidateInfoFromProto(message.candidate))
    } catch {
      return 'unusable candidate'
    }
  }
  return undefined
}
