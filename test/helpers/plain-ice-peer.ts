// An ICE peer that is not cunicu-ts: a bare werift agent signalled by hand through an in-process backend.
// It answers STUN (so it connects and keeps consent) but sends no path probes and no data of its own.
import { Message } from '../../src/gen/signaling/signaling.js'
import type { ReceivedMessage } from '../../src/core/backend.js'
import { InprocessBackend } from '../../src/core/backends/inprocess.js'
import type { PrivateKey, PublicKey } from '../../src/core/keys.js'
import { candidateInfoFromProto, candidateInfoToProto } from '../../src/core/session/candidate-mapping.js'
import { generateCredentials } from '../../src/core/session/credentials.js'
import type { CandidateInfo } from '../../src/core/session/events.js'
import { IceAgent } from '../../src/core/session/ice-agent.js'

export interface PlainIcePeer {
  /** The agent, once the session's credentials arrived. */
  readonly agent: IceAgent | undefined
  close(): Promise<void>
}

/**
 * Starts the peer as `ours`, talking to `theirs` (the controlled side). With `candidatesFirst`, each local
 * candidate is published before its credentials, as a reordering backend would deliver them.
 */
export async function startPlainIcePeer(ours: PrivateKey, theirs: PublicKey, options: { candidatesFirst?: boolean } = {}): Promise<PlainIcePeer> {
  const backend = new InprocessBackend()
  const creds = generateCredentials()
  const send = (message: Message) => backend.publish(ours, theirs, message)
  const sendCredentials = () => send(Message.fromPartial({ credentials: { ...creds, needCreds: false } }))
  let agent: IceAgent | undefined
  const pending: CandidateInfo[] = []
  const handler = {
    onMessage: (r: ReceivedMessage) => {
      const { credentials, candidate } = r.message
      if (credentials && !agent) {
        const created = new IceAgent({ controlling: false, local: creds, remote: credentials, ice: { loopback: true } })
        agent = created
        created.localCandidates.on((info) => {
          const published = send(Message.fromPartial({ candidate: candidateInfoToProto(info) }))
          if (options.candidatesFirst) void published.then(sendCredentials)
        })
        if (!options.candidatesFirst) void sendCredentials()
        void created.gather()
        for (const info of pending.splice(0)) void created.addRemoteCandidate(info)
        void created.connect({ timeoutMs: 10_000 }).catch(() => {})
      }
      if (candidate) {
        const info = candidateInfoFromProto(candidate)
        if (agent) void agent.addRemoteCandidate(info)
        else pending.push(info)
      }
    },
  }
  await backend.subscribe({ ours, theirs }, handler)
  return {
    get agent() {
      return agent
    },
    close: async () => {
      await agent?.close()
      await backend.unsubscribe({ ours, theirs }, handler)
      await backend.close()
    },
  }
}
