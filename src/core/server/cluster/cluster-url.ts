// The --cluster URL, read once where it enters (signal's flags): a typo is a usage error before anything
// starts, and the transports get hosts and ports, never text to parse again.
//   redis://[USER:PASS@]HOST[:PORT]          one Redis, classic Pub/Sub (redis-cluster.ts)
//   rediss://…                                the same over TLS
//   redis-cluster://[USER:PASS@]HOST[:PORT][,HOST[:PORT]…]   a Redis Cluster, sharded Pub/Sub (redis-sharded.ts)
//   rediss-cluster://…                        the same over TLS
// A comma-separated host list is not a WHATWG URL, so the cluster form is read by hand.
import { ClusterError } from './cluster.js'

const DEFAULT_PORT = 6379
const EXPECTED = 'expected redis://HOST:PORT or redis-cluster://HOST:PORT[,HOST:PORT…]'

export interface ClusterNode {
  host: string
  port: number
}

export type ClusterTarget =
  /** One Redis server, classic Pub/Sub. */
  | { kind: 'redis'; url: URL }
  /** A Redis Cluster: the seed nodes the topology is discovered from; Pub/Sub sharded by channel. */
  | { kind: 'redis-cluster'; nodes: ClusterNode[]; tls: boolean; username?: string; password?: string }

/** Parses a --cluster URL; throws ClusterError('invalid') with the reason. */
export function parseClusterUrl(text: string): ClusterTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase()
  if (scheme === 'redis-cluster' || scheme === 'rediss-cluster') return parseRedisCluster(text, scheme)
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new ClusterError(`cluster "${text}" is not a URL: ${EXPECTED}`, 'invalid')
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ClusterError(`cluster "${redact(text)}": unknown scheme "${url.protocol}" (known: redis:, rediss:, redis-cluster:, rediss-cluster:)`, 'invalid')
  }
  if (!url.hostname) throw new ClusterError(`cluster "${redact(text)}": no host: ${EXPECTED}`, 'invalid')
  return { kind: 'redis', url }
}

/** How a target is named in logs and events: scheme and hosts, never credentials. */
export function clusterTargetName(target: ClusterTarget): string {
  if (target.kind === 'redis') return `${target.url.protocol}//${target.url.host}`
  return `${target.tls ? 'rediss' : 'redis'}-cluster://${target.nodes.map(formatNode).join(',')}`
}

export function formatNode(node: ClusterNode): string {
  return `${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`
}

function parseRedisCluster(text: string, scheme: 'redis-cluster' | 'rediss-cluster'): ClusterTarget {
  const rest = text.slice(scheme.length + 3).replace(/\/$/, '')
  const shown = redact(text)
  if (/[/?#]/.test(rest)) throw new ClusterError(`cluster "${shown}": no path, query or fragment expected: ${EXPECTED}`, 'invalid')
  const at = rest.lastIndexOf('@')
  const userinfo = at >= 0 ? rest.slice(0, at) : undefined
  const hostList = at >= 0 ? rest.slice(at + 1) : rest
  if (!hostList) throw new ClusterError(`cluster "${shown}": no hosts: ${EXPECTED}`, 'invalid')
  const nodes = hostList.split(',').map((part) => parseNode(part, shown))
  const target: ClusterTarget = { kind: 'redis-cluster', nodes, tls: scheme === 'rediss-cluster' }
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':')
    const decode = (s: string): string => {
      try {
        return decodeURIComponent(s)
      } catch {
        throw new ClusterError(`cluster "${shown}": bad percent-encoding in the credentials`, 'invalid')
      }
    }
    const username = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo)
    if (username) target.username = username
    if (colon >= 0) target.password = decode(userinfo.slice(colon + 1))
  }
  return target
}

function parseNode(part: string, shown: string): ClusterNode {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]\s]+))(?::([^:]*))?$/i.exec(part)
  if (!match) throw new ClusterError(`cluster "${shown}": "${part}" is not HOST:PORT`, 'invalid')
  const host = match[1] ?? match[2]!
  const portText = match[3]
  if (portText === undefined) return { host, port: DEFAULT_PORT }
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new ClusterError(`cluster "${shown}": bad port "${portText}" for ${host} (1-65535)`, 'invalid')
  }
  return { host, port }
}

/** The URL as the user wrote it, minus any password. */
function redact(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:***@')
}
