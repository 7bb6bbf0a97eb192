import { readFile } from 'node:fs/promises'
import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { helpSections } from '../cli/help.js'
import { writeNdjson } from '../cli/ndjson.js'
import { abortOnSignals, whenAborted } from '../cli/shutdown.js'
import type { ClusterEvent } from '../core/server/cluster/cluster.js'
import type { ServerStats, TransportName } from '../core/server/signaling-server.js'
import type { ServerLog } from '../core/server/server-log.js'

export default class Signal extends BaseCommand {
  static override summary = 'Run the gRPC signaling server.'
  static override description = `A stateless relay of sealed envelopes (cunīcu's signaling service): peers subscribe to their public key and publish envelopes to others'. It cannot read them: it has no keys. cunīcu daemons can use it as their grpc:// backend.
Also serves the standard gRPC health service and server reflection (grpcurl list works).
With --json the first stdout line is {"type":"listening","address":"HOST:PORT"}; stdout carries only these NDJSON events, logs go to stderr (JSON lines, or human-readable on a terminal).
SIGTERM drains (a rolling restart): no new connections, GOAWAY, calls in flight finish, subscriber queues and the cluster flush, then every stream ends with UNAVAILABLE so clients reconnect elsewhere; exit 143 after the drain (at most --drain-timeout). SIGINT does the same and exits 130. A second signal exits at once, with its own code.
Operations: --metrics serves Prometheus metrics (GET /metrics) and GET /healthz; --stun-listen answers STUN Binding requests so peers get their server-reflexive candidates from this host too. See README "Running signal in production".
${helpSections([], { 2: 'bad flags, files or listen address', 3: 'the port is in use, or the --cluster broker is unreachable' })}`
  static override examples = [
    { command: '<%= config.bin %> signal', description: 'Listen on 0.0.0.0:8080 (plain text: clients use ?insecure=true)' },
    { command: '<%= config.bin %> signal --listen 127.0.0.1:0 --json | head -1 | jq -r .address', description: 'An ephemeral port, printed for scripts' },
    { command: '<%= config.bin %> signal --listen [::]:443 --tls-cert cert.pem --tls-key key.pem', description: 'TLS' },
    { command: '<%= config.bin %> signal --listen :8080 --cluster redis://10.0.0.5:6379', description: 'One of several instances behind a load balancer, sharing subscribers through Redis' },
    { command: "<%= config.bin %> signal --relay 'turn:turn.example.net:3478?secret=S&ttl=1h' --relay stun:turn.example.net:3478", description: 'Hand peers a STUN server and a TURN server with time-limited credentials (coturn use-auth-secret)' },
    { command: '<%= config.bin %> signal --listen :8080 --metrics 127.0.0.1:9090 --log-level warn', description: 'Prometheus metrics on a private port (curl 127.0.0.1:9090/metrics), only warnings in the log' },
    { command: '<%= config.bin %> signal --listen :8080 --stun-listen 0.0.0.0:3478 --stun-advertise 203.0.113.5:3478 --stun-rate 10', description: 'A built-in STUN server (10 requests/s per source address); GetRelays hands peers stun:203.0.113.5:3478' },
    { command: '<%= config.bin %> signal --handshake-timeout 5 --max-connections 20000 --max-connections-per-ip 64 --idle-timeout 120', description: 'Tighter doors for a public server' },
    { command: '<%= config.bin %> signal --require-auth --subscribe-rate 5 --subscribe-burst 10 --max-auth-failures 3', description: 'Authenticated subscriptions; a connection failing 3 proofs is shed' },
    { command: '<%= config.bin %> signal --cluster redis://10.0.0.5:6379 --drain-timeout 20 & kill -TERM $!', description: 'Rolling restart: SIGTERM drains for up to 20 s, then exits 143' },
  ]
  static override flags = {
    listen: Flags.string({ char: 'l', summary: 'Address to listen on, HOST:PORT; port 0 picks a free one.', default: '0.0.0.0:8080' }),
    'tls-cert': Flags.string({ summary: 'PEM certificate chain for TLS.', dependsOn: ['tls-key'] }),
    'tls-key': Flags.string({ summary: 'PEM private key for TLS.', dependsOn: ['tls-cert'] }),
    'max-envelope-bytes': Flags.integer({ summary: 'Largest envelope accepted (RESOURCE_EXHAUSTED above).', default: 65536, min: 64 }),
    'queue-envelopes': Flags.integer({ summary: 'Envelopes queued per slow subscriber before the oldest is dropped.', default: 1024, min: 1 }),
    'queue-bytes': Flags.integer({ summary: 'Bytes queued per slow subscriber before the oldest is dropped.', default: 4 * 1024 * 1024, min: 1024 }),
    'max-subscriptions-per-connection': Flags.integer({ summary: 'Open subscriptions one client connection may hold (RESOURCE_EXHAUSTED above).', default: 64, min: 1 }),
    'max-streams': Flags.integer({ summary: 'Open subscriptions on the whole server (RESOURCE_EXHAUSTED above).', default: 20_000, min: 1 }),
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
    'subscribe-rate': Flags.integer({ summary: 'Subscribe calls per second one connection may sustain (RESOURCE_EXHAUSTED above).', default: 20, min: 1 }),
    'subscribe-burst': Flags.integer({ summary: 'Subscribe calls one idle connection may make at once.', default: 64, min: 1 }),
    'max-connections': Flags.integer({ summary: 'Open client connections on the whole server; more are closed at once.', default: 20_000, min: 1 }),
    'max-connections-per-ip': Flags.integer({ summary: 'Open client connections from one IP address; more are closed at once.', default: 256, min: 1 }),
    'handshake-timeout': Flags.integer({ summary: 'Seconds a connection has to complete TLS and the HTTP/2 preface + SETTINGS before it is closed.', default: 10, min: 1 }),
    'idle-timeout': Flags.integer({ summary: 'Seconds a connection without any open stream (no subscription) may stay before GOAWAY closes it.', default: 300, min: 1 }),
    'max-auth-failures': Flags.integer({ summary: 'Failed --require-auth proofs after which a connection is shed (GOAWAY, closed).', default: 10, min: 1 }),
    'drain-timeout': Flags.integer({ summary: 'Seconds SIGTERM/SIGINT may spend draining (calls in flight, queues, cluster) before streams are cut.', default: 10, min: 1 }),
    metrics: Flags.string({ summary: 'Serve Prometheus metrics (GET /metrics) and GET /healthz on HOST:PORT, a separate HTTP listener.' }),
    'log-level': Flags.string({
      summary: 'Log level of the JSON lines on stderr.',
      options: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      default: 'info',
    }),
    'stun-listen': Flags.string({ summary: 'Answer STUN Binding requests (RFC 5389) on UDP HOST:PORT; GetRelays then hands peers a stun: URL for it.' }),
    'stun-advertise': Flags.string({ summary: 'The HOST:PORT peers should use for --stun-listen, when it differs (NAT, wildcard listen address).', dependsOn: ['stun-listen'] }),
    'stun-rate': Flags.integer({ summary: 'STUN requests per second one source address may sustain; more are dropped.', default: 20, min: 1 }),
    transport: Flags.string({
      summary: 'The gRPC server underneath: js (our own, HTTP/2 included), h2 (our gRPC layer on node:http2) or grpc-js (the reference).',
      description: 'All serve the same service to every gRPC client; BENCHMARKS.md "Transport" has the figures that made js the default.',
      options: ['js', 'h2', 'grpc-js'],
      default: 'js',
    }),
    cluster: Flags.string({
      summary: 'Serve one key space together with other instances: redis://HOST:PORT (one Redis) or redis-cluster://HOST:PORT[,HOST:PORT…] (a Redis Cluster, sharded Pub/Sub); rediss:// and rediss-cluster:// speak TLS (a private CA: NODE_EXTRA_CA_CERTS=ca.pem).',
      description:
        'A publish on any instance reaches the subscribers on every instance once. Redis stores nothing (Pub/Sub only); losing it is reported and the instances reconnect. With redis-cluster:// (rediss-cluster:// for TLS) each key\'s channel lives on one shard (SSUBSCRIBE/SPUBLISH); after a master fails over, the channels are subscribed again on the new one.',
    }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Signal)
    const tls = flags['tls-cert'] && flags['tls-key'] ? await this.readTls(flags['tls-cert'], flags['tls-key']) : undefined
    const auth = flags['require-auth'] ? { serverKey: await this.serverKey(flags['server-key']), maxSkewMs: flags['auth-skew'] * 1000 } : undefined
    if (flags.relay) await this.checkRelays(flags.relay)
    const metricsListen = flags.metrics ? await this.parseListenFlag('--metrics', flags.metrics) : undefined
    const cluster = flags.cluster ? await this.parseClusterFlag(flags.cluster) : undefined
    for (const [flag, value] of [['--stun-listen', flags['stun-listen']], ['--stun-advertise', flags['stun-advertise']]] as const) {
      if (value !== undefined) await this.parseListenFlag(flag, value)
    }
    const { log, flush: flushLog } = await createLog(flags['log-level'])
    const shutdown = abortOnSignals()
    const { SignalingServer, SignalingServerError } = await import('../core/server/signaling-server.js')
    let server
    try {
      server = await SignalingServer.start({
        listen: flags.listen,
        transport: flags.transport as TransportName,
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
          subscribeRatePerSecond: flags['subscribe-rate'],
          subscribeBurst: flags['subscribe-burst'],
          maxConnections: flags['max-connections'],
          maxConnectionsPerIp: flags['max-connections-per-ip'],
          handshakeTimeoutMs: flags['handshake-timeout'] * 1000,
          idleTimeoutMs: flags['idle-timeout'] * 1000,
          maxAuthFailures: flags['max-auth-failures'],
        },
        log,
        metrics: Boolean(metricsListen),
        ...(flags['stun-listen']
          ? { stun: { listen: flags['stun-listen'], ratePerSecond: flags['stun-rate'], burst: 2 * flags['stun-rate'], ...(flags['stun-advertise'] ? { advertise: flags['stun-advertise'] } : {}) } }
          : {}),
        ...(auth ? { auth } : {}),
        version: this.config.version,
        ...(flags.relay ? { relays: flags.relay } : {}),
        ...(cluster ? { cluster, onClusterEvent: (event: ClusterEvent) => this.clusterEvent(event, Boolean(flags.json)) } : {}),
      })
    } catch (err) {
      shutdown.dispose()
      const message = (err as Error).message
      const kind = err instanceof SignalingServerError ? err.kind : 'invalid'
      if (kind === 'unreachable') this.fail(message, ExitCode.Backend)
      if (kind === 'listen') {
        const { addressInUse } = await import('../cli/address-in-use.js')
        const port = await addressInUse(flags.listen)
        if (port !== undefined) this.fail(`port ${port} is in use (is another signal running?)`, ExitCode.Backend)
      }
      this.fail(message, ExitCode.Usage)
    }
    let metricsServer
    if (metricsListen && server.metrics) {
      const { MetricsHttpServer } = await import('../core/server/metrics-http.js')
      const running = server
      try {
        metricsServer = await MetricsHttpServer.start(metricsListen.host, metricsListen.port, server.metrics, () => running.serving)
      } catch (err) {
        await server.close(0)
        shutdown.dispose()
        this.fail(`cannot listen for metrics on ${flags.metrics}: ${(err as Error).message}`, ExitCode.Usage)
      }
    }
    const authKey = server.authKey?.toString()
    const extra = { ...(server.stunAddress ? { stun: server.stunAddress } : {}), ...(metricsServer ? { metrics: metricsServer.address } : {}) }
    if (flags.json) writeNdjson({ type: 'listening', at: new Date().toISOString(), address: server.address, tls: Boolean(tls), ...(authKey ? { authKey } : {}), ...extra })
    else this.log(`cunicu-ts signal listening on ${server.address}${tls ? ' (TLS)' : ' (plain text: clients use grpc://' + server.address + '?insecure=true)'}`)
    if (authKey && !flags.json) this.log(`subscriptions require proof of key ownership; server auth key ${authKey}`)
    if (extra.stun && !flags.json) this.log(`STUN (RFC 5389 Binding) on udp ${extra.stun}`)
    if (extra.metrics && !flags.json) this.log(`metrics on http://${extra.metrics}/metrics`)
    await whenAborted(shutdown.signal)
    await server.close(flags['drain-timeout'] * 1000)
    // After the drain, so that a last scrape can still see it; the stopped line is read from the same counters.
    await metricsServer?.close()
    const stats = server.stats()
    if (flags.json) writeNdjson({ type: 'stopped', at: new Date().toISOString(), ...stats })
    else this.log(stoppedLine(stats))
    flushLog()
    shutdown.dispose()
    // The exit code (143 after SIGTERM, 130 after SIGINT) is set by BaseCommand once run() returns: only
    // after the drain, as a rolling restart expects.
  }

  private async parseClusterFlag(value: string) {
    const { parseClusterUrl } = await import('../core/server/cluster/cluster-url.js')
    return this.orUsage(() => parseClusterUrl(value))
  }

  private async parseListenFlag(flag: string, value: string) {
    const { parseListen } = await import('../core/server/signaling-server.js')
    return this.orUsage(() => parseListen(value), flag)
  }

  /** The log (stderr) has every cluster event; stdout gets them as NDJSON events, or the connection line. */
  private clusterEvent(event: ClusterEvent, json: boolean): void {
    if (json) return writeNdjson({ type: 'cluster', at: new Date().toISOString(), ...event })
    if (event.state === 'connected') this.log(`cluster ${event.url} connected`)
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

/** Every counter of the stats, as the metrics name them: `stopped:` and /metrics agree number for number. */
export function stoppedLine(s: ServerStats): string {
  const reasons = (counts: Record<string, number>) =>
    Object.entries(counts)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(', ')
  return (
    `stopped: ${s.published} published, ${s.delivered} delivered, ${s.dropped} dropped; ` +
    `dropped by reason: ${reasons(s.droppedByReason)}; ` +
    `refused publishes: ${reasons(s.refusedPublishesByReason)}; refused subscribes: ${reasons(s.refusedSubscribesByReason)}; ` +
    `connections: ${s.connectionsAccepted} accepted, refused ${reasons(s.connectionsRefusedByReason)}, closed ${reasons(s.connectionsClosedByReason)}` +
    (s.stun ? `; stun: ${reasons(s.stun)}` : '') +
    (s.cluster ? `; cluster: ${s.cluster.published} out, ${s.cluster.received} in, ${s.cluster.publishFailed} failed, ${s.cluster.outages} outages` : '') +
    (s.cluster?.rediscoveries !== undefined
      ? `, ${s.cluster.rediscoveries} rediscoveries, ${s.cluster.resubscribed ?? 0} resubscribed, ${s.cluster.duplicates ?? 0} duplicates`
      : '')
  )
}

/** pino on stderr: JSON lines, or pino-pretty's human-readable lines on a terminal. Loaded only by `signal`. */
async function createLog(level: string): Promise<{ log: ServerLog; flush(): void }> {
  const { pino } = await import('pino')
  const options = { level, base: { pid: process.pid }, name: 'signal' }
  const logger = process.stderr.isTTY
    ? pino(options, (await import('pino-pretty')).default({ destination: 2, sync: true, colorize: true }))
    : pino(options, pino.destination({ fd: 2, sync: true }))
  return { log: logger, flush: () => logger.flush() }
}
