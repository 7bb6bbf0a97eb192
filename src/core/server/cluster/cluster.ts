// What the signaling server needs from a cluster transport (signal --cluster): several server instances
// serve one key space. The server keeps delivering to its own subscribers itself; the cluster carries
// each accepted envelope to the other instances and hands their envelopes in through `deliver`.
// Nothing is stored: an instance that has no subscriber for a key neither receives nor keeps its envelopes.
// The contract only: open-cluster.ts picks the transport, so no transport module imports this file back.

export type ClusterEvent =
  | { state: 'connected'; url: string }
  /** The broker went away: envelopes between instances are lost until `recovered`; local delivery goes on. */
  | { state: 'lost'; url: string; reason: string }
  /** `resubscribed`: channels moved to another node meanwhile (a Redis Cluster failover) and subscribed there again. */
  | { state: 'recovered'; url: string; resubscribed?: number }
  | { state: 'closed'; url: string }

export interface ClusterStats {
  url: string
  connected: boolean
  /** Keys this instance currently receives from the cluster (it has local subscribers for them). */
  channels: number
  /** Envelopes handed to the broker. */
  published: number
  /** Envelopes that could not be handed to the broker (it was unreachable): other instances missed them. */
  publishFailed: number
  /** Envelopes from other instances delivered to local subscribers' topics. */
  received: number
  /** Times the broker connection was lost. */
  outages: number
  /** Redis Cluster: times the slot map was fetched again after a node failed or a slot moved. */
  rediscoveries?: number
  /** Redis Cluster: channels subscribed again on a shard's new master after a failover. */
  resubscribed?: number
  /** Envelopes that reached this instance twice (two paths during a failover) and were delivered once. */
  duplicates?: number
  /** Redis Cluster: publishes sent again after MOVED/ASK (the slot moved) or a connection lost before the answer. */
  retried?: number
  /** Redis Cluster: channels a node dropped on its own (slot moved, failover), subscribed again at once, not at the next discovery. */
  followed?: number
}

export interface ClusterOptions {
  /** Called for every envelope another instance accepted for `recipient`, while this instance has joined it. */
  deliver(recipient: Uint8Array, envelope: Buffer): void
  onEvent?(event: ClusterEvent): void
}

export interface Cluster {
  /**
   * A local subscriber for `recipient` appeared. Reference counted: the first join subscribes this
   * instance to the key; resolves once envelopes published anywhere after it will reach `deliver`
   * (or at once while the broker is down: the key is subscribed when it comes back).
   */
  join(recipient: Uint8Array): Promise<void>
  /** A local subscriber left; after the last one this instance no longer receives the key. */
  leave(recipient: Uint8Array): void
  /** An envelope this instance accepted and delivered locally; the cluster carries it to the others. */
  publish(recipient: Uint8Array, envelope: Buffer): void
  stats(): ClusterStats
  /** Resolves once every envelope handed to publish() so far reached the broker or failed (a drain waits for it). */
  flush(): Promise<void>
  /** Idempotent; afterwards no connection or timer of the cluster remains. */
  close(): Promise<void>
}

/** Why a cluster could not be joined: a URL the user got wrong, or a broker that did not answer. */
export type ClusterErrorKind = 'invalid' | 'unreachable'

export class ClusterError extends Error {
  override name = 'ClusterError'
  constructor(
    message: string,
    readonly kind: ClusterErrorKind,
  ) {
    super(message)
  }
}
