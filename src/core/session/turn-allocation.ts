// One TURN allocation, as werift-ice's createStunOverTurnClient makes it, but with an end: werift leaves the
// socket of an allocation that failed open (a session that tried an unreachable TURN server never lets its
// process exit), and a pending allocation cannot be stopped. Here a failure closes the socket, and aborting
// `signal` (the ICE agent closed) ends the pending ALLOCATE request and closes the socket at once.
import { isIP } from 'node:net'
import { StunOverTurnProtocol, TurnProtocol } from 'werift-ice'
// Not re-exported by werift-ice's index; the package has no exports map, so its files are public.
import { TcpTransport, TlsTransport, UdpTransport } from 'werift-ice/lib/common/src/transport.js'
import type { TurnServer } from './ice-servers.js'

/** werift's own default (DEFAULT_ALLOCATION_LIFETIME, not exported): 10 minutes, refreshed before it ends. */
const ALLOCATION_LIFETIME_S = 600

export interface TurnAllocationOptions {
  tlsCa?: Buffer
  portRange?: [number, number]
  interfaceAddresses?: Record<string, string>
  signal?: AbortSignal
}

/** A pending request's transaction (a private method of werift's, public at run time). */
interface PendingTransaction {
  failWithTimeout(): void
}

export async function allocateTurn(server: TurnServer, options: TurnAllocationOptions = {}): Promise<StunOverTurnProtocol> {
  const { signal } = options
  if (signal?.aborted) throw new Error('aborted')
  const address: [string, number] = [server.host, server.port]
  const transport =
    server.transport === 'udp'
      ? await UdpTransport.init('udp4', {
          ...(options.portRange ? { portRange: options.portRange } : {}),
          ...(options.interfaceAddresses ? { interfaceAddresses: options.interfaceAddresses as never } : {}),
        })
      : server.transport === 'tcp'
        ? await TcpTransport.init(address)
        : // turns: checks the server's certificate against its host name (or IP), with the system roots or tlsCa.
          await TlsTransport.init(address, { ...(isIP(server.host) ? {} : { servername: server.host }), ...(options.tlsCa ? { ca: options.tlsCa } : {}) })
  const turn = new TurnProtocol(address, server.username, server.password, ALLOCATION_LIFETIME_S, transport)
  const abandon = (): void => {
    for (const transaction of Object.values(turn.transactions) as unknown as PendingTransaction[]) transaction.failWithTimeout()
    void turn.close().catch(() => {})
  }
  if (signal?.aborted) {
    abandon()
    throw new Error('aborted')
  }
  signal?.addEventListener('abort', abandon, { once: true })
  try {
    await turn.connectionMade()
  } catch (err) {
    abandon()
    throw err
  } finally {
    signal?.removeEventListener('abort', abandon)
  }
  return new StunOverTurnProtocol(turn)
}
