// --cluster URLs read once at the edge (cluster-url.ts), and the Redis Cluster hash slot of a channel (key-slot.ts).
import { describe, expect, it } from 'vitest'
import { clusterTargetName, parseClusterUrl } from '../../src/core/server/cluster/cluster-url.js'
import { keySlot } from '../../src/core/server/cluster/key-slot.js'

describe('parseClusterUrl', () => {
  it('reads one Redis, and a Redis Cluster as a list of seed nodes', () => {
    const one = parseClusterUrl('redis://:secret@10.0.0.5:6380')
    expect(one.kind).toBe('redis')
    expect(clusterTargetName(one)).toBe('redis://10.0.0.5:6380')

    expect(parseClusterUrl('redis-cluster://10.0.0.5:7000,10.0.0.6,[::1]:7002/')).toEqual({
      kind: 'redis-cluster',
      tls: false,
      nodes: [
        { host: '10.0.0.5', port: 7000 },
        { host: '10.0.0.6', port: 6379 },
        { host: '::1', port: 7002 },
      ],
    })
    const tls = parseClusterUrl('rediss-cluster://app:p%40ss@redis.example:7000')
    expect(tls).toEqual({ kind: 'redis-cluster', tls: true, username: 'app', password: 'p@ss', nodes: [{ host: 'redis.example', port: 7000 }] })
    // Credentials never appear in the name used for logs and events.
    expect(clusterTargetName(tls)).toBe('rediss-cluster://redis.example:7000')
  })

  it.each([
    ['redis-cluster://', /no hosts/],
    ['redis-cluster://user:pw@', /no hosts/],
    ['redis-cluster://127.0.0.1:0', /bad port "0"/],
    ['redis-cluster://127.0.0.1:7000,127.0.0.1:70000', /bad port "70000" for 127.0.0.1/],
    ['redis-cluster://127.0.0.1:x', /bad port "x"/],
    ['redis-cluster://127.0.0.1:7000,,127.0.0.1:7001', /"" is not HOST:PORT/],
    ['redis-cluster://127.0.0.1:7000/0', /no path/],
    ['memcached://127.0.0.1:11211', /unknown scheme "memcached:"/],
    ['not a url', /is not a URL/],
  ])('refuses %s with the reason', (url, reason) => {
    expect(() => parseClusterUrl(url)).toThrow(reason)
  })

  it('never echoes a password in an error', () => {
    expect(() => parseClusterUrl('redis-cluster://app:hunter2@127.0.0.1:0')).toThrow(/app:\*\*\*@/)
    expect(() => parseClusterUrl('redis-cluster://app:hunter2@127.0.0.1:0')).not.toThrow(/hunter2/)
  })
})

describe('keySlot', () => {
  it('matches Redis CLUSTER KEYSLOT, hash tags included', () => {
    // Values from the Redis Cluster specification and `redis-cli CLUSTER KEYSLOT`.
    expect(keySlot('foo')).toBe(12182)
    expect(keySlot('bar')).toBe(5061)
    expect(keySlot('123456789')).toBe(0x31c3 % 16384)
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'))
    expect(keySlot('{}.x')).toBe(keySlot('{}.x')) // an empty tag hashes the whole key
    expect(keySlot('{}.x')).not.toBe(keySlot(''))
    expect(keySlot('{a}{b}')).toBe(keySlot('a')) // only the first tag counts
  })
})
