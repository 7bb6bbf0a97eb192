// Opens the cluster transport a parsed --cluster URL names (cluster-url.ts). Apart from the contract in
// cluster.ts, which the transports import: a contract that also loaded them would close an import cycle.
import type { Cluster, ClusterOptions } from './cluster.js'
import type { ClusterTarget } from './cluster-url.js'

/** Opens the transport for the target; its client library loads only here. */
export async function openCluster(target: ClusterTarget, options: ClusterOptions): Promise<Cluster> {
  if (target.kind === 'redis-cluster') {
    const { RedisShardedCluster } = await import('./redis-sharded.js')
    return RedisShardedCluster.connect(target, options)
  }
  const { RedisCluster } = await import('./redis-cluster.js')
  return RedisCluster.connect(target.url, options)
}
