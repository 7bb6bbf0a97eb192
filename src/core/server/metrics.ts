// `signal --metrics HOST:PORT`: the server's counters as Prometheus metrics (prom-client, a registry of our
// own, not the global one). Counters and gauges are read from the server's snapshot at scrape time, so
// they equal what stats() and the `stopped` line report; only the delivery latency is a live histogram.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { ClusterStats } from './cluster/cluster.js'
import type { ByReason } from './server-counters.js'

export const METRIC_PREFIX = 'cunicu_signal_'

/** What a scrape reads: the server's stats(). */
export interface MetricsSnapshot {
  connections: number
  subscribers: number
  topics: number
  published: number
  delivered: number
  droppedByReason: ByReason<string>
  refusedPublishesByReason: ByReason<string>
  refusedSubscribesByReason: ByReason<string>
  connectionsAccepted: number
  connectionsRefusedByReason: ByReason<string>
  connectionsClosedByReason: ByReason<string>
  stun?: ByReason<string>
  cluster?: ClusterStats
}

export class ServerMetrics {
  readonly registry = new Registry()
  readonly #delivery: Histogram

  constructor(snapshot: () => MetricsSnapshot, options: { cluster: boolean; stun: boolean }) {
    const r = this.registry
    const gauge = (name: string, help: string, read: (s: MetricsSnapshot) => number) =>
      new Gauge({ name: METRIC_PREFIX + name, help, registers: [r], collect() { this.set(read(snapshot())) } })
    const counter = (name: string, help: string, read: (s: MetricsSnapshot) => number) =>
      new Counter({ name: METRIC_PREFIX + name, help, registers: [r], collect() { this.reset(); this.inc(read(snapshot())) } })
    const byReason = (name: string, help: string, label: string, read: (s: MetricsSnapshot) => ByReason<string>) =>
      new Counter({
        name: METRIC_PREFIX + name,
        help,
        labelNames: [label],
        registers: [r],
        collect() {
          this.reset()
          for (const [reason, n] of Object.entries(read(snapshot()))) this.inc({ [label]: reason }, n)
        },
      })

    gauge('connections', 'Open client connections (TCP, HTTP/2 handshake done or not).', (s) => s.connections)
    gauge('subscriptions', 'Open Subscribe streams.', (s) => s.subscribers)
    gauge('topics', 'Recipient keys with at least one open Subscribe stream.', (s) => s.topics)
    counter('envelopes_published_total', 'Envelopes accepted by Publish.', (s) => s.published)
    counter('envelopes_delivered_total', 'Envelope copies written to subscriber streams.', (s) => s.delivered)
    byReason('envelopes_dropped_total', 'Envelopes (no_subscriber) or envelope copies (queue_full, subscriber_gone) dropped.', 'reason', (s) => s.droppedByReason)
    byReason('publish_refused_total', 'Publish calls answered with an error status.', 'reason', (s) => s.refusedPublishesByReason)
    byReason('subscribe_refused_total', 'Subscribe calls answered with an error status.', 'reason', (s) => s.refusedSubscribesByReason)
    counter('connections_accepted_total', 'Client connections accepted.', (s) => s.connectionsAccepted)
    byReason('connections_refused_total', 'Client connections closed at once, over a connection limit.', 'reason', (s) => s.connectionsRefusedByReason)
    byReason('connections_closed_total', 'Client connections ended, by who ended them and why.', 'reason', (s) => s.connectionsClosedByReason)
    this.#delivery = new Histogram({
      name: METRIC_PREFIX + 'delivery_seconds',
      help: 'Publish accepted to the envelope written to a subscriber stream.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    })
    if (options.stun) byReason('stun_requests_total', 'STUN datagrams received, by what was done with them.', 'result', (s) => s.stun ?? {})
    if (options.cluster) {
      const cluster = (s: MetricsSnapshot): ClusterStats =>
        s.cluster ?? { url: '', connected: false, channels: 0, published: 0, publishFailed: 0, received: 0, outages: 0 }
      gauge('cluster_connected', '1 while the Redis link is up.', (s) => Number(cluster(s).connected))
      gauge('cluster_channels', 'Recipient keys this instance receives from the cluster.', (s) => cluster(s).channels)
      counter('cluster_messages_out_total', 'Envelopes handed to Redis for the other instances.', (s) => cluster(s).published)
      counter('cluster_messages_in_total', 'Envelopes from other instances delivered to local topics.', (s) => cluster(s).received)
      counter('cluster_publish_failed_total', 'Envelopes that could not be handed to Redis.', (s) => cluster(s).publishFailed)
      counter('cluster_reconnects_total', 'Times the Redis link was lost (each followed by reconnect attempts).', (s) => cluster(s).outages)
      counter('cluster_rediscoveries_total', 'redis-cluster://: times the slot map was fetched again after a node failed.', (s) => cluster(s).rediscoveries ?? 0)
      counter('cluster_resubscribed_total', "redis-cluster://: channels subscribed again on a shard's new master after a failover.", (s) => cluster(s).resubscribed ?? 0)
      counter('cluster_duplicates_total', 'redis-cluster://: envelopes that arrived twice from the cluster and were delivered once.', (s) => cluster(s).duplicates ?? 0)
      counter('cluster_retried_total', 'redis-cluster://: publishes sent again after MOVED/ASK or a connection lost before the answer.', (s) => cluster(s).retried ?? 0)
      counter('cluster_followed_total', 'redis-cluster://: channels a node dropped on its own (slot moved, failover), subscribed again at once.', (s) => cluster(s).followed ?? 0)
    }
    collectDefaultMetrics({ register: r })
  }

  /** One envelope copy written to a stream, `seconds` after its publish was accepted. */
  observeDelivery(seconds: number): void {
    this.#delivery.observe(seconds)
  }

  get contentType(): string {
    return this.registry.contentType
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }
}
