// Which of a Message's fields is set: what the views and events call an envelope's kind.
import type { Message } from '../gen/signaling/signaling.js'

export type MessageKind = 'credentials' | 'candidate' | 'peer' | 'pske' | 'empty'

export function messageKind(message: Message): MessageKind {
  if (message.credentials) return 'credentials'
  if (message.candidate) return 'candidate'
  if (message.peer) return 'peer'
  if (message.pske) return 'pske'
  return 'empty'
}
