// Opens the cluster transport named by a URL's scheme (signal --cluster). Apart from the contract in
// cluster.ts, which the transports import: a contract that also loaded them would close an import cycle.
import { ClusterError, type Cluster, type ClusterOptions } from './cluster.js'

/** Opens the cluster transport named by the URL's scheme; the client library loads only here. */
export async function openCluster(url: string, options: ClusterOptions): Promise<Cluster> {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ClusterError(`cluster "${url}" is not a URL: expected redis://HOST:PORT`, 'invalid')
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ClusterError(`cluster "${url}": unknown scheme "${parsed.protocol}" (known: redis:, rediss:)`, 'invalid')
  }
  const { RedisCluster } = await import('./redis-cluster.js')
  return RedisCluster.connect(parsed, options)
}
