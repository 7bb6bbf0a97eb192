// node:net as grpc-js sees it inside dist/bundle/cli.cjs (scripts/bundle.js resolves grpc-js's `net` here):
// the same module, except that isIPv6 answers false for a string without ':' before it reaches Node's IPv6
// regular expression, whose first use compiles it: ~3 ms of every start, spent by grpc-js naming the
// server's IPv4 address. Every IPv6 address contains ':', so each answer is the one Node would give.
import * as net from 'node:net'

export * from 'node:net'

export function isIPv6(input: string): boolean {
  return input.includes(':') && net.isIPv6(input)
}
