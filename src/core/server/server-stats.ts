// What SignalingServer.stats() answers: the `stopped` line of `signal`, the bench and the tests read it;
// the Prometheus metrics are made from it (metrics.ts).
import type { ClusterStats } from './cluster/cluster.js'
import type { ConnectionCloseReason, ConnectionRefusal } from './connection-guard.js'
import type { ByReason, PublishRefusal, SubscribeRefusal } from './server-counters.js'

export interface ServerStats {
  /** Open Subscribe streams. */
  subscribers: number
  /** Recipient keys with at least one open stream. */
  topics: number
  /** Envelopes accepted by Publish (including those nobody was subscribed for). */
  published: number
  /** Envelope copies handed to subscriber streams. */
  delivered: number
  /** Envelope copies dropped from a slow subscriber's full queue, or still queued when its stream ended. */
  dropped: number
  /** Every drop by reason: `no_subscriber` counts envelopes nobody was subscribed for (not in `dropped`). */
  droppedByReason: ByReason<'no_subscriber' | 'queue_full' | 'subscriber_gone'>
  /** Publish calls answered with an error status (malformed, too large, over the rate). */
  refusedPublishes: number
  refusedPublishesByReason: ByReason<PublishRefusal>
  /** Subscribe calls answered with an error status (malformed key, a limit, no valid proof). */
  refusedSubscribes: number
  refusedSubscribesByReason: ByReason<SubscribeRefusal>
  /** Open client connections now. */
  connections: number
  connectionsAccepted: number
  connectionsRefusedByReason: ByReason<ConnectionRefusal>
  connectionsClosedByReason: ByReason<ConnectionCloseReason>
  /** With `stun`: datagrams by what was done with them. */
  stun?: ByReason<'answered' | 'rate_limited' | 'malformed'>
  /** With `cluster`: the Redis link's state and counters. */
  cluster?: ClusterStats
}
