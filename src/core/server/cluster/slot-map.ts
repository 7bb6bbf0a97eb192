// A Redis Cluster's slot map from a CLUSTER SLOTS reply (redis-sharded.ts): which master serves which slot
// range, and every node named (replicas too, where a later discovery can start).
import { formatNode, type ClusterNode } from './cluster-url.js'
import { SLOTS } from './key-slot.js'
import type { RespValue } from './resp.js'

export { SLOTS }

export interface SlotRange {
  from: number
  to: number
  master: ClusterNode
}

export interface SlotMap {
  ranges: SlotRange[]
  /** Every node of the reply as HOST:PORT (formatNode), masters and replicas. */
  nodes: string[]
}

/**
 * Reads CLUSTER SLOTS: [[from, to, [host, port, id, …], replica…], …]. A node whose endpoint is unknown ("?",
 * empty or null: Redis means "where you asked") gets `askedHost`. Throws on a reply of another shape.
 */
export function slotMapFrom(reply: unknown, askedHost: string): SlotMap {
  if (!Array.isArray(reply)) throw new Error('CLUSTER SLOTS: not an array')
  const ranges: SlotRange[] = []
  const nodes = new Set<string>()
  for (const entry of reply as RespValue[]) {
    if (!Array.isArray(entry) || entry.length < 3) throw new Error('CLUSTER SLOTS: a range without a master')
    const [from, to] = entry
    if (typeof from !== 'number' || typeof to !== 'number' || from < 0 || to >= SLOTS || from > to) throw new Error('CLUSTER SLOTS: a bad slot range')
    const [master, ...replicas] = entry.slice(2).map((n) => nodeFrom(n, askedHost))
    ranges.push({ from, to, master: master! })
    for (const node of [master!, ...replicas]) nodes.add(formatNode(node))
  }
  return { ranges, nodes: [...nodes] }
}

function nodeFrom(value: RespValue, askedHost: string): ClusterNode {
  if (!Array.isArray(value) || value.length < 2 || typeof value[1] !== 'number') throw new Error('CLUSTER SLOTS: a node without host and port')
  const host = value[0] === null ? '' : String(value[0])
  return { host: host === '' || host === '?' ? askedHost : host, port: value[1] }
}
