// The STUN/TURN and interface flags of `session` and `session --wg`, read in one place: every URL, the CA
// file and the interfaces are checked before anything starts (exit 2 naming the flag, nothing published),
// and the servers' own relays (GetRelays) are added to the flags' servers, then fetched again whenever a
// session renews time-limited TURN credentials.
import { readFileSync } from 'node:fs'
import type { ResolvedIceServers } from '../core/session/relays.js'

export interface IceFlagValues {
  stun?: string[]
  turn?: string[]
  'ca-file'?: string
  interface?: string[]
  'server-relays': boolean
}

/** Runs a parse; a throw becomes the command's one-line usage error (exit 2) naming `where`. */
export type UsageCheck = <T>(parse: () => T, where: string) => T

export interface IceFlags {
  /** --ca-file's roots, for turns: servers (the backend reads the file itself). */
  tlsCa?: Buffer
  /** The flags' servers plus what the grpc:// backends hand out (when --server-relays), asked with `publicKey`. */
  resolve(options: { backendUrls: string[]; publicKey: Uint8Array; signal: AbortSignal }): Promise<ResolvedIceServers>
}

export async function readIceFlags(flags: IceFlagValues, usage: UsageCheck): Promise<IceFlags> {
  const { parseStunServer, parseTurnServer } = await import('../core/session/ice-servers.js')
  const stunServers = (flags.stun ?? []).map((url) => usage(() => parseStunServer(url), '--stun'))
  const turnServers = (flags.turn ?? []).map((url) => usage(() => parseTurnServer(url), '--turn'))
  const caFile = flags['ca-file']
  const tlsCa = caFile ? usage(() => readFileSync(caFile), '--ca-file') : undefined
  const interfaces = flags.interface
  if (interfaces) {
    // A mistyped interface would otherwise fail inside every new ICE agent, restart after restart.
    const { resolveInterfaceAddresses } = await import('../core/session/ice-options.js')
    usage(() => resolveInterfaceAddresses(interfaces), '--interface')
  }
  const { resolveIceServers } = await import('../core/session/relays.js')
  return {
    ...(tlsCa ? { tlsCa } : {}),
    resolve: ({ backendUrls, publicKey, signal }) =>
      resolveIceServers({ stunServers, turnServers, backendUrls: flags['server-relays'] ? backendUrls : [], publicKey, signal, ...(caFile ? { caFile } : {}) }),
  }
}
