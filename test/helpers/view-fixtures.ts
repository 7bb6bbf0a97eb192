// What the Ink view tests feed their views: two keys (ours controls), a clock, and a candidate pair.
export const ours = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE='
export const theirs = 'f////////////////////////////////////////w='
/** An RFC 3339 time `ms` after a fixed start. */
export const at = (ms: number): string => new Date(Date.UTC(2026, 10, 26, 12, 0, 0, ms)).toISOString()
export const local = { type: 'host', protocol: 'udp', address: '127.0.0.1', port: 40001, priority: 1, foundation: 'f' } as const
export const remote = { ...local, port: 40002 }
