import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { backendFlags, backendUrls, keyFlags } from '../cli/flags.js'
import { helpSections } from '../cli/help.js'
import { writeNdjson } from '../cli/ndjson.js'
import { openClient } from '../cli/open-client.js'
import { abortOnSignals, whenAborted } from '../cli/shutdown.js'
import { PublicKey } from '../core/keys.js'
import type { SessionEvent } from '../core/session/events.js'

export default class SessionCommand extends BaseCommand {
  static override summary = 'Open an ICE session with a peer through the signaling backend.'
  static override description = `Exchanges sealed ICE credentials and candidates with PEER_PK (cunīcu's endpoint discovery), connects with ICE — the peer with the smaller public key controls — and verifies the selected path with probes sealed with both keys.
On a terminal: a live view (keys, role and why, state timeline, envelopes, candidates, selected pair, RTT). With --json or in a pipe: one NDJSON event per line.
Without --exit-on-connected or --timeout it stays up: keeps ICE consent, follows the peer's restarts, and closes cleanly on Ctrl-C/SIGTERM.
${helpSections(['CUNICU_KEY_FILE', 'CUNICU_PRIVATE_KEY', 'CUNICU_BACKEND', 'NO_COLOR'], { 0: 'connected and the path verified or given up (--exit-on-connected)', 2: 'bad flags, key or peer key', 3: 'backend unreachable', 4: '--timeout passed before connecting' })}`
  static override examples = [
    { command: '<%= config.bin %> session -k a.key "$(cunicu-ts pubkey < b.key)"', description: 'Connect to peer B and watch it live' },
    { command: '<%= config.bin %> session -k a.key "$PEER_B" --loopback --exit-on-connected --timeout 30 --json', description: 'One-host test, for scripts' },
    { command: '<%= config.bin %> session -k a.key "$PEER_B" --interface eth0 --stun stun:stun.example.net:3478', description: 'Host candidates from eth0 plus a server-reflexive one' },
    { command: '<%= config.bin %> session -k a.key "$PEER_B" --forward 127.0.0.1:51821', description: 'Carry a local UDP app (e.g. WireGuard with endpoint 127.0.0.1:51821) to the peer, sealed' },
    { command: "<%= config.bin %> session -k a.key \"$PEER_B\" --turn 'turn:turn.example.net:3478?username=U&password=P'", description: 'Also a relayed candidate (servers started with signal --relay hand these out by themselves)' },
  ]
  static override args = {
    peer: Args.string({ description: "The peer's public key, base64.", required: true }),
  }
  static override flags = {
    ...keyFlags,
    ...backendFlags,
    stun: Flags.string({ summary: 'STUN server URL (stun:HOST:PORT) for server-reflexive candidates; repeatable. Default: none.', multiple: true, multipleNonGreedy: true }),
    turn: Flags.string({
      summary: 'TURN server for relayed candidates, turn:HOST:PORT?username=U&password=P (or turn:U:P@HOST:PORT); repeatable.',
      multiple: true,
      multipleNonGreedy: true,
    }),
    'server-relays': Flags.boolean({
      summary: "Ask the grpc:// servers for STUN/TURN servers (RelayRegistry.GetRelays, `signal --relay`); --no-server-relays to skip.",
      default: true,
      allowNo: true,
    }),
    interface: Flags.string({ char: 'i', summary: 'Take host candidates only from this interface name or IP; repeatable.', multiple: true, multipleNonGreedy: true }),
    forward: Flags.string({
      summary: 'Once the path is verified, carry UDP datagrams between this local IP:PORT and the peer, each sealed with the session keys.',
      description: 'We listen on IP:PORT; what a local app sends there goes to the peer, and what the peer sends goes to the app (the last local sender, or --forward-to). E.g. point a WireGuard peer endpoint at it. Throughput and loss are reported every second.',
    }),
    'forward-to': Flags.string({ summary: 'Deliver the peer\'s datagrams to this local IP:PORT instead of the last local sender.', dependsOn: ['forward'] }),
    loopback: Flags.boolean({ summary: 'One-host mode: use only 127.0.0.1 for candidates.' }),
    'exit-on-connected': Flags.boolean({ summary: 'Exit 0 once connected and the path probe verified the path or gave up.' }),
    timeout: Flags.integer({ char: 't', summary: 'Exit 4 if not connected within this many seconds.', min: 1 }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SessionCommand)
    const peer = this.orUsage(() => PublicKey.parse(args.peer, 'PEER_PK'))
    const shutdown = abortOnSignals()
    const client = await openClient(this, flags, backendUrls(flags.backend))
    if (client.key.publicKey.equals(peer)) this.fail('PEER_PK is our own public key: a peer cannot open a session with itself', ExitCode.Usage)
    const { Session } = await import('../core/session/session.js')
    let forwarder: import('../core/session/forwarder.js').Forwarder | undefined
    if (flags.forward) {
      const { Forwarder } = await import('../core/session/forwarder.js')
      const listen = flags.forward
      const to = flags['forward-to']
      forwarder = await Forwarder.open({ listen, ...(to ? { to } : {}) }).catch((err: unknown) => {
        void client.backend.close()
        shutdown.dispose()
        return this.fail((err as Error).message, ExitCode.Usage)
      })
    }
    const { parseTurnUrl, resolveIceServers } = await import('../core/session/relays.js')
    const turnFlags = (flags.turn ?? []).map((url) => this.orUsage(() => parseTurnUrl(url), '--turn'))
    const iceServers = await resolveIceServers({
      ...(flags.stun ? { stunUrls: flags.stun } : {}),
      turnServers: turnFlags,
      backendUrls: flags['server-relays'] ? backendUrls(flags.backend) : [],
      publicKey: client.key.publicKey.bytes,
      ...(flags['ca-file'] ? { caFile: flags['ca-file'] } : {}),
    })
    const session = new Session({
      backend: client.backend,
      ours: client.key,
      theirs: peer,
      ice: { ...(flags.interface ? { interfaces: flags.interface } : {}), loopback: flags.loopback },
      iceServers,
      signal: shutdown.signal,
      ...(forwarder ? { forwarder } : {}),
    })
    const unmount = this.wantsNdjson(flags.json) ? (session.events.on(writeNdjson), async () => {}) : (await import('../ui/session-view.js')).showSession(session.events)

    const goal = new AbortController()
    let connected = false
    session.events.on((e: SessionEvent) => {
      if (e.type === 'state' && e.state === 'connected') connected = true
      if (flags['exit-on-connected'] && connected && (e.type === 'verified' || e.type === 'unverified')) goal.abort()
    })
    const timer = flags.timeout ? setTimeout(() => goal.abort(new Error('timeout')), flags.timeout * 1000) : undefined
    let failure: { message: string; exit: number } | undefined
    try {
      await session.start()
      await Promise.race([whenAborted(shutdown.signal), whenAborted(goal.signal)])
      if (goal.signal.reason instanceof Error && !connected) {
        failure = { message: `timed out after ${flags.timeout} s: not connected (state ${session.state})`, exit: ExitCode.Timeout }
      }
    } catch (err) {
      if (!shutdown.signal.aborted) failure = { message: (err as Error).message, exit: ExitCode.Backend }
    } finally {
      clearTimeout(timer)
      await session.close()
      await forwarder?.close()
      await client.backend.close()
      shutdown.dispose()
      await unmount()
    }
    if (failure) this.fail(failure.message, failure.exit)
  }
}
