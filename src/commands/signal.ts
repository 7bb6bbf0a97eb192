import { readFile } from 'node:fs/promises'
import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { helpSections } from '../cli/help.js'
import { writeNdjson } from '../cli/ndjson.js'
import { abortOnSignals, whenAborted } from '../cli/shutdown.js'
import type { ClusterEvent } from '../core/server/cluster/cluster.js'

export default class Signal extends BaseCommand {
  static override summary = 'Run the gRPC signaling server.'
  static override description = `A stateless relay of sealed envelopes (cunīcu's signaling service): peers subscribe to their public key and publish envelopes to others'. It cannot read them: it has no keys. cunīcu daemons can use it as their grpc:// backend.
Also serves the standard gRPC health service and server reflection (grpcurl list works).
With --json the first stdout line is {"type":"listening","address":"HOST:PORT"}. SIGINT/SIGTERM stop it gracefully (exit 130/143 once stopped); a second signal exits at once.
${helpSections([], { 2: 'bad flags, files or listen address', 3: 'the port is in use, or the --cluster broker is unreachable' })}`
  static override examples = [
    { command: '<%= config.bin %> signal', description: 'Listen on 0.0.0.0:8080 (plain text: clients use ?insecure=true)' },
    { command: '<%= config.bin %> signal --listen 127.0.0.1:0 --json | head -1 | jq -r .address', description: 'An ephemeral port, printed for scripts' },
    { command: '<%= config.bin %> signal --listen [::]:443 --tls-cert cert.pem --tls-key key.pem', description: 'TLS' },
    { command: '<%= config.bin %> signal --listen :8080 --cluster redis://10.0.0.5:6379', description: 'One of several instances behind a load balancer, sharing subscribers through Redis' },
    { command: "<%= config.bin %> signal --relay 'turn:turn.example.net:3478?secret=S&ttl=1h' --relay stun:turn.example.net:3478", description: 'Hand peers a STUN server and a TURN server with time-limited credentials (coturn use-auth-secret)' },
  ]
  static override flags = {
    listen: Flags.string({ char: 'l', summary: 'Address to listen on, HOST:PORT; port 0 picks a free one.', default: '0.0.0.0:8080' }),
    'tls-cert': Flags.string({ summary: 'PEM certificate chain for TLS.', dependsOn: ['tls-key'] }),
    'tls-key': Flags.string({ summary: 'PEM private key for TLS.', dependsOn: ['tls-cert'] }),
    'max-envelope-bytes': Flags.integer({ summary: 'Largest envelope accepted (RESOURCE_EXHAUSTED above).', default: 65536, min: 64 }),
    'queue-envelopes': Flags.integer({ summary: 'Envelopes queued per slow subscriber before the oldest is dropped.', default: 1024, min: 1 }),
    'queue-bytes': Flags.integer({ summary: 'Bytes queued per slow subscriber before the oldest is dropped.', default: 4 * 1024 * 1024, min: 1024 }),
    'max-subscriptions-per-connection': Flags.integer({ summary: 'Open subscriptions one client connection may hold (RESOURCE_EXHAUSTED above).', default: 64, min: 1 }),
    'max-streams': Flags.integer({ summary: 'Open subscriptions on the whole server (RESOURCE_EXHAUSTED above).', default: 10_000, min: 1 }),
    'max-connection-streams': Flags.integer({ summary: 'HTTP/2 concurrent streams per connection; more calls wait in the client. Must exceed --max-subscriptions-per-connection.', default: 256, min: 2 }),
    'publish-rate': Flags.integer({ summary: 'Publishes per second one connection may sustain (RESOURCE_EXHAUSTED above).', default: 200, min: 1 }),
    'publish-burst': Flags.integer({ summary: 'Publishes one idle connection may send at once.', default: 400, min: 1 }),
    'require-auth': Flags.boolean({
      summary: 'Only let a client subscribe to a key whose private key it holds (proof in gRPC metadata; cunīcu clients cannot).',
      description: 'The server key is announced in the listening line (authKey) and in GetBuildInfo (tag auth-key:BASE64). See README "Authenticated subscriptions".',
    }),
    'server-key': Flags.string({ summary: 'Private key file of the server for --require-auth (default: a fresh key per start).', dependsOn: ['require-auth'] }),
    // No dependsOn on --require-auth: oclif applies it to the default too, refusing every plain `signal`.
    'auth-skew': Flags.integer({ summary: 'Seconds a subscribe proof timestamp may differ from the server clock.', default: 30, min: 1 }),
    relay: Flags.string({
      summary: 'STUN/TURN server handed to peers by RelayRegistry.GetRelays; repeatable.',
      description: 'turn:HOST:PORT?secret=S&ttl=1h (time-limited credentials per peer, for coturn use-auth-secret), turn:HOST:PORT?username=U&password=P (static), stun:HOST:PORT.',
      multiple: true,
    }),
    cluster: Flags.string({
      summary: 'Serve one key space together with other instances through Redis Pub/Sub: redis://HOST:PORT.',
      description: 'A publish on any instance reaches the subscribers on every instance once. Redis stores nothing (Pub/Sub only); losing it is reported and the instances reconnect.',
    }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Signal)
    const tls = flags['tls-cert'] && flags['tls-key'] ? await this.readTls(flags['tls-cert'], flags['tls-key']) : undefined
    const auth = flags['require-auth'] ? { serverKey: await this.serverKey(flags['server-key']), maxSkewMs: flags['auth-skew'] * 1000 } : undefined
    if (flags.relay) await this.checkRelays(flags.relay)
    const shutdown = abortOnSignals()
    const { SignalingServer } = await import('../core/server/signaling-server.js')
    let server
    try {
      server = await SignalingServer.start({
        listen: flags.listen,
        ...(tls ? { tls } : {}),
        limits: {
          maxEnvelopeBytes: flags['max-envelope-bytes'],
          queueMaxEnvelopes: flags['queue-envelopes'],
          queueMaxBytes: flags['queue-bytes'],
          maxSubscriptionsPerConnection: flags['max-subscriptions-per-connection'],
          maxStreams: flags['max-streams'],
          maxConnectionStreams: flags['max-connection-streams'],
          publishRatePerSecond: flags['publish-rate'],
          publishBurst: flags['publish-burst'],
        },
        ...(auth ? { auth } : {}),
        version: this.config.version,
        ...(flags.relay ? { relays: flags.relay } : {}),
        ...(flags.cluster ? { cluster: flags.cluster, onClusterEvent: (event: ClusterEvent) => this.clusterEvent(event, Boolean(flags.json)) } : {}),
      })
    } catch (err) {
      shutdown.dispose()
      const message = (err as Error).message
      if (flags.cluster && message.startsWith('cluster ')) this.fail(message, ExitCode.Backend)
      const { addressInUse } = await import('../cli/address-in-use.js')
      const port = await addressInUse(flags.listen)
      if (port !== undefined) this.fail(`port ${port} is in use (is another signal running?)`, ExitCode.Backend)
      this.fail(message, ExitCode.Usage)
    }
    const authKey = server.authKey?.toString()
    if (flags.json) writeNdjson({ type: 'listening', at: new Date().toISOString(), address: server.address, tls: Boolean(tls), ...(authKey ? { authKey } : {}) })
    else this.log(`cunicu-ts signal listening on ${server.address}${tls ? ' (TLS)' : ' (plain text: clients use grpc://' + server.address + '?insecure=true)'}`)
    if (authKey && !flags.json) this.log(`subscriptions require proof of key ownership; server auth key ${authKey}`)
    await whenAborted(shutdown.signal)
    await server.close()
    const stats = server.stats()
    if (flags.json) writeNdjson({ type: 'stopped', at: new Date().toISOString(), ...stats })
    else this.log(`stopped: ${stats.published} published, ${stats.delivered} delivered, ${stats.dropped} dropped`)
    shutdown.dispose()
  }

  private clusterEvent(event: ClusterEvent, json: boolean): void {
    if (json) return writeNdjson({ type: 'cluster', at: new Date().toISOString(), ...event })
    if (event.state === 'lost') process.stderr.write(`cluster ${event.url} lost: ${event.reason}; local subscribers still served, reconnecting\n`)
    else if (event.state === 'recovered') process.stderr.write(`cluster ${event.url} recovered\n`)
    else if (event.state === 'connected') this.log(`cluster ${event.url} connected`)
  }

  private async checkRelays(relays: string[]): Promise<void> {
    const { parseRelayConfig } = await import('../core/server/relay-registry.js')
    for (const relay of relays) this.orUsage(() => parseRelayConfig(relay))
  }

  /** --server-key FILE, or a fresh key: clients learn it from GetBuildInfo, so it need not outlive the process. */
  private async serverKey(path: string | undefined) {
    const { PrivateKey } = await import('../core/keys.js')
    if (!path) return PrivateKey.generate()
    const { readKeyFile } = await import('../core/key-file.js')
    try {
      const { key, warnings } = await readKeyFile(path)
      for (const warning of warnings) process.stderr.write(`${warning}\n`)
      return key
    } catch (err) {
      this.fail(`--server-key: ${(err as Error).message}`, ExitCode.Usage)
    }
  }

  private async readTls(certPath: string, keyPath: string) {
    try {
      return { cert: await readFile(certPath), key: await readFile(keyPath) }
    } catch (err) {
      this.fail(`cannot read TLS files: ${(err as Error).message}`, ExitCode.Usage)
    }
  }
}
