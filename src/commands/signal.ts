import { readFile } from 'node:fs/promises'
import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { writeNdjson } from '../cli/ndjson.js'
import { abortOnSignals, whenAborted } from '../cli/shutdown.js'

export default class Signal extends BaseCommand {
  static override summary = 'Run the gRPC signaling server.'
  static override description = `A stateless relay of sealed envelopes (cunīcu's signaling service): peers subscribe to their public key and publish envelopes to others'. It cannot read them: it has no keys. cunīcu daemons can use it as their grpc:// backend.
Also serves the standard gRPC health service and server reflection (grpcurl list works).
With --json the first stdout line is {"type":"listening","address":"HOST:PORT"}. SIGINT/SIGTERM stop it gracefully (exit 0); a second signal exits at once.`
  static override examples = [
    { command: '<%= config.bin %> signal', description: 'Listen on 0.0.0.0:8080 (plain text: clients use ?insecure=true)' },
    { command: '<%= config.bin %> signal --listen 127.0.0.1:0 --json | head -1 | jq -r .address', description: 'An ephemeral port, printed for scripts' },
    { command: '<%= config.bin %> signal --listen [::]:443 --tls-cert cert.pem --tls-key key.pem', description: 'TLS' },
    { command: "<%= config.bin %> signal --relay 'turn:turn.example.net:3478?secret=S&ttl=1h' --relay stun:turn.example.net:3478", description: 'Hand peers a STUN server and a TURN server with time-limited credentials (coturn use-auth-secret)' },
  ]
  static override flags = {
    listen: Flags.string({ char: 'l', summary: 'Address to listen on, HOST:PORT; port 0 picks a free one.', default: '0.0.0.0:8080' }),
    'tls-cert': Flags.string({ summary: 'PEM certificate chain for TLS.', dependsOn: ['tls-key'] }),
    'tls-key': Flags.string({ summary: 'PEM private key for TLS.', dependsOn: ['tls-cert'] }),
    'max-envelope-bytes': Flags.integer({ summary: 'Largest envelope accepted (RESOURCE_EXHAUSTED above).', default: 65536, min: 64 }),
    'queue-envelopes': Flags.integer({ summary: 'Envelopes queued per slow subscriber before the oldest is dropped.', default: 1024, min: 1 }),
    relay: Flags.string({
      summary: 'STUN/TURN server handed to peers by RelayRegistry.GetRelays; repeatable.',
      description: 'turn:HOST:PORT?secret=S&ttl=1h (time-limited credentials per peer, for coturn use-auth-secret), turn:HOST:PORT?username=U&password=P (static), stun:HOST:PORT.',
      multiple: true,
    }),
    'queue-bytes': Flags.integer({ summary: 'Bytes queued per slow subscriber before the oldest is dropped.', default: 4 * 1024 * 1024, min: 1024 }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Signal)
    const tls = flags['tls-cert'] && flags['tls-key'] ? await this.readTls(flags['tls-cert'], flags['tls-key']) : undefined
    if (flags.relay) await this.checkRelays(flags.relay)
    const shutdown = abortOnSignals()
    const { SignalingServer } = await import('../core/server/signaling-server.js')
    let server
    try {
      server = await SignalingServer.start({
        listen: flags.listen,
        ...(tls ? { tls } : {}),
        limits: { maxEnvelopeBytes: flags['max-envelope-bytes'], queueMaxEnvelopes: flags['queue-envelopes'], queueMaxBytes: flags['queue-bytes'] },
        version: this.config.version,
        ...(flags.relay ? { relays: flags.relay } : {}),
      })
    } catch (err) {
      shutdown.dispose()
      this.fail(`cannot listen on ${flags.listen}: ${(err as Error).message}`, ExitCode.Usage)
    }
    if (flags.json) writeNdjson({ type: 'listening', address: server.address, tls: Boolean(tls) })
    else this.log(`cunicu-ts signal listening on ${server.address}${tls ? ' (TLS)' : ' (plain text: clients use grpc://' + server.address + '?insecure=true)'}`)
    await whenAborted(shutdown.signal)
    await server.close()
    const stats = server.stats()
    if (flags.json) writeNdjson({ type: 'stopped', ...stats })
    else this.log(`stopped: ${stats.published} published, ${stats.delivered} delivered, ${stats.dropped} dropped`)
    shutdown.dispose()
  }

  private async checkRelays(relays: string[]): Promise<void> {
    const { parseRelayConfig } = await import('../core/server/relay-registry.js')
    for (const relay of relays) this.orUsage(() => parseRelayConfig(relay))
  }

  private async readTls(certPath: string, keyPath: string) {
    try {
      return { cert: await readFile(certPath), key: await readFile(keyPath) }
    } catch (err) {
      this.fail(`cannot read TLS files: ${(err as Error).message}`, ExitCode.Usage)
    }
  }
}
