// What a signaling server runs beside its gRPC services, started before it listens: the built-in STUN
// server, RelayRegistry, the reflection package that lists what is served, and the Redis cluster link.
// Each is loaded only when configured, so a plain `signal` loads none of their modules.
import type { PackageDefinition } from '@grpc/proto-loader'
import type { Cluster, ClusterEvent } from './cluster/cluster.js'
import type { ClusterTarget } from './cluster/cluster-url.js'
import { RelayRegistry } from './relay-registry.js'
import { SignalingServerError } from './server-config.js'
import type { StunServer } from './stun-server.js'
import { loadReflectionPackageFor } from './wire-service.js'

export interface PartsOptions {
  stun?: { listen: { host: string; port: number }; listenText: string; advertise?: string; ratePerSecond?: number; burst?: number }
  relays?: string[]
  cluster?: ClusterTarget
  onStunRequest(result: 'answered' | 'rate_limited' | 'malformed', source: string): void
  deliver(recipient: Uint8Array, envelope: Buffer): void
  onClusterEvent(event: ClusterEvent): void
}

export interface ServerParts {
  stun: StunServer | undefined
  relays: RelayRegistry | undefined
  reflection: PackageDefinition
  cluster: Cluster | undefined
}

/** Starts the parts in order; on a failure, the parts already started are in `started` for the caller to close. */
export async function startParts(options: PartsOptions, started: Partial<ServerParts>): Promise<ServerParts> {
  if (options.stun) {
    const { StunServer } = await import('./stun-server.js')
    const { listen, ratePerSecond, burst } = options.stun
    try {
      started.stun = await StunServer.start({ ...listen, ...(ratePerSecond ? { ratePerSecond } : {}), ...(burst ? { burst } : {}), onRequest: options.onStunRequest })
    } catch (err) {
      throw new SignalingServerError(`cannot listen for STUN on ${options.stun.listenText}: ${(err as Error).message}`, 'listen')
    }
  }
  const stunUrl = started.stun ? `stun:${options.stun?.advertise ?? started.stun.address}` : undefined
  const relayUrls = [...(options.relays ?? []), ...(stunUrl ? [stunUrl] : [])]
  started.relays = relayUrls.length ? new RelayRegistry(relayUrls) : undefined
  started.reflection = await loadReflectionPackageFor(started.relays)
  if (options.cluster) {
    const { openCluster } = await import('./cluster/open-cluster.js')
    started.cluster = await openCluster(options.cluster, { deliver: options.deliver, onEvent: options.onClusterEvent })
  }
  return started as ServerParts
}
