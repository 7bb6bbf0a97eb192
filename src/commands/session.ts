import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { backendFlags, backendUrls, keyFlags } from '../cli/flags.js'
import { helpSections } from '../cli/help.js'
import { writeNdjson } from '../cli/ndjson.js'
import { readIceFlags } from '../cli/ice-flags.js'
import { openClient } from '../cli/open-client.js'
import { abortOnSignals, whenAborted } from '../cli/shutdown.js'
import { PublicKey } from '../core/keys.js'
import type { SessionEvent } from '../core/session/events.js'

export default class SessionCommand extends BaseCommand {
  static override summary = 'Open an ICE session with a peer through the signaling backend.'
  static override description = `Exchanges sealed ICE credentials and candidates with PEER_PK (cunīcu's endpoint discovery), connects with ICE — the peer with the smaller public key controls — and verifies the selected path with probes sealed with both keys.
On a terminal: a live view (keys, role and why, state timeline, envelopes, candidates, selected pair, RTT). With --json or in a pipe: one NDJSON event per line.
Without --exit-on-connected or --timeout it stays up: keeps ICE consent, follows the peer's restarts, and closes cleanly on Ctrl-C/SIGTERM.
A peer that stops cleanly says goodbye over the path, and the other side goes back to waiting for it at once; a peer that vanishes is shown as disconnected after 5 s of silence on the path and failed (then a restart) after 25 s.
${helpSections(['CUNICU_KEY_FILE', 'CUNICU_PRIVATE_KEY', 'CUNICU_BACKEND', 'NO_COLOR'], { 0: 'connected and the path verified or given up (--exit-on-connected)', 2: 'bad flags, key, peer key, STUN/TURN URL, or a --wg setup refused', 3: 'backend unreachable', 4: '--timeout passed before connecting (with --exit-on-connected: before the path probe settled)' })}`
  static override examples = [
    { command: '<%= config.bin %> session -k a.key "$(cunicu-ts pubkey < b.key)"', description: 'Connect to peer B and watch it live' },
    { command: '<%= config.bin %> session -k a.key "$PEER_B" --loopback --exit-on-connected --timeout 30 --json', description: 'One-host test, for scripts' },
    { command: '<%= config.bin %> session -k a.key "$PEER_B" --interface eth0 --stun stun:stun.example.net:3478', description: 'Host candidates from eth0 plus a server-reflexive one' },
    { command: '<%= config.bin %> session -k a.key "$PEER_B" --stun stun:stun1.example.net --stun stun:stun2.example.net:3479', description: 'Two STUN servers: the second is asked only if the first does not answer' },
    { command: '<%= config.bin %> session -k a.key "$PEER_B" --forward 127.0.0.1:51821', description: 'Carry a local UDP app (e.g. WireGuard with endpoint 127.0.0.1:51821) to the peer, raw, as cunīcu does' },
    { command: '<%= config.bin %> session --wg wg0 "$PEER_B"', description: "Carry WireGuard interface wg0's peer B through NATs (wg0's key signs; run as root)" },
    { command: '<%= config.bin %> session --wg wg0', description: 'One session for every peer of wg0, shown as a table (like the cunīcu daemon)' },
    { command: '<%= config.bin %> session --wg wg0 "$PEER_B" --allowed-ips 10.99.0.2/32', description: 'Add B to wg0 first (and remove it again on exit)' },
    { command: "<%= config.bin %> session -k a.key \"$PEER_B\" --turn 'turn:turn.example.net:3478?username=U&password=P'", description: 'Also a relayed candidate (servers started with signal --relay hand these out by themselves)' },
  ]
  static override args = {
    peer: Args.string({ description: "The peer's public key, base64. With --wg it may be left out: then every peer of the interface." }),
  }
  static override flags = {
    ...keyFlags,
    ...backendFlags,
    stun: Flags.string({ summary: 'STUN server URL (stun:HOST:PORT) for server-reflexive candidates; repeatable, tried in order until one answers. stuns: is refused. Default: none.', multiple: true, multipleNonGreedy: true }),
    turn: Flags.string({
      summary: 'TURN server for relayed candidates, turn:HOST:PORT?username=U&password=P[&transport=tcp] (or turn:U:P@HOST:PORT, or turns:HOST:PORT for TLS); repeatable, tried in order until one allocates.',
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
      summary: 'Once ICE is connected, carry UDP datagrams between this local IP:PORT and the peer, raw (cunīcu\'s data plane).',
      description:
        "We listen on IP:PORT; what a local app sends there goes to the peer unchanged, and what the peer sends goes to the app (the last local sender, or --forward-to). Only datagrams from the selected ICE pair's remote address reach the app. E.g. point a WireGuard peer endpoint at it: WireGuard authenticates its own packets. Throughput is reported every second.",
    }),
    seal: Flags.boolean({
      summary: 'Seal each forwarded datagram with the session keys (both peers cunicu-ts): for apps without encryption of their own.',
      dependsOn: ['forward'],
    }),
    'forward-to': Flags.string({ summary: 'Deliver the peer\'s datagrams to this local IP:PORT instead of the last local sender.', dependsOn: ['forward'] }),
    wg: Flags.string({
      summary: "Carry a WireGuard interface's peer (or, without PEER_PK, every peer) over the session, as cunīcu does.",
      description:
        "The interface's private key is the signaling key (-k may be left out; a different -k is refused). Once a path carries the peer, its endpoint points at a loopback socket of ours (wg set IFACE peer PK endpoint 127.0.0.1:PORT); the old endpoint is put back on exit and when the path is lost for good. Needs root and wireguard-tools' wg.",
      exclusive: ['forward', 'forward-to'],
    }),
    'allowed-ips': Flags.string({
      summary: 'With --wg: add PEER_PK to the interface with these allowed IPs (comma-separated CIDRs) if it is not a peer yet; removed again on exit.',
      dependsOn: ['wg'],
    }),
    loopback: Flags.boolean({ summary: 'One-host mode: use only 127.0.0.1 for candidates.' }),
    'exit-on-connected': Flags.boolean({ summary: 'Exit 0 once connected and the path probe verified the path or gave up (never on connected alone).' }),
    timeout: Flags.integer({ char: 't', summary: 'Exit 4 if not connected (with --exit-on-connected: not verified or unverified) within this many seconds.', min: 1 }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SessionCommand)
    if (flags.wg) {
      const { runWireguardSession } = await import('../cli/wireguard-session.js')
      return runWireguardSession({ fail: (message, exit) => this.fail(message, exit), ndjson: this.wantsNdjson(flags.json) }, { ...flags, wg: flags.wg }, args.peer)
    }
    if (args.peer === undefined) this.fail('PEER_PK is missing: give the peer\'s public key (or --wg IFACE to carry every peer of a WireGuard interface)', ExitCode.Usage)
    const peer = this.orUsage(() => PublicKey.parse(args.peer!, 'PEER_PK'))
    // Every STUN/TURN URL and interface is read here, before anything starts or is published.
    const ice = await readIceFlags(flags, (parse, where) => this.orUsage(parse, where))
    const shutdown = abortOnSignals()
    const client = await openClient(this, flags, backendUrls(flags.backend))
    if (client.key.publicKey.equals(peer)) this.fail('PEER_PK is our own public key: a peer cannot open a session with itself', ExitCode.Usage)
    // The servers' relays are asked now; the session subscribes and exchanges credentials while the answer
    // travels, and only its ICE agent waits for it.
    const relaySources = { backendUrls: backendUrls(flags.backend), publicKey: client.key.publicKey.bytes }
    const iceServers = ice.resolve({ ...relaySources, signal: shutdown.signal })
    iceServers.catch(() => {}) // the session reports a failure; an early one is not unhandled
    const { Session } = await import('../core/session/session.js')
    let forwarder: import('../core/session/forwarder.js').Forwarder | undefined
    if (flags.forward) {
      const { Forwarder } = await import('../core/session/forwarder.js')
      const listen = flags.forward
      const to = flags['forward-to']
      forwarder = await Forwarder.open({ listen, mode: flags.seal ? 'sealed' : 'raw', ...(to ? { to } : {}) }).catch((err: unknown) => {
        void client.backend.close()
        shutdown.dispose()
        return this.fail((err as Error).message, ExitCode.Usage)
      })
    }
    const session = new Session({
      backend: client.backend,
      ours: client.key,
      theirs: peer,
      ice: { ...(flags.interface ? { interfaces: flags.interface } : {}), loopback: flags.loopback, ...(ice.tlsCa ? { tlsCa: ice.tlsCa } : {}) },
      iceServers,
      // Time-limited TURN credentials are fetched again before they expire (long-lived --forward sessions).
      renewIceServers: (signal) => ice.resolve({ ...relaySources, signal }),
      signal: shutdown.signal,
      ...(forwarder ? { forwarder } : {}),
    })
    const unmount = this.wantsNdjson(flags.json) ? (session.events.on(writeNdjson), async () => {}) : (await import('../ui/session-view.js')).showSession(session.events)

    const goal = new AbortController()
    let connected = false
    // The goal of --exit-on-connected is a settled path probe: 'connected' alone may precede the peer's proof.
    let probed = false
    session.events.on((e: SessionEvent) => {
      if (e.type === 'state' && e.state === 'connected') connected = true
      if (e.type === 'verified' || e.type === 'unverified') probed = connected
      if (flags['exit-on-connected'] && probed) goal.abort()
    })
    const timer = flags.timeout ? setTimeout(() => goal.abort(new Error('timeout')), flags.timeout * 1000) : undefined
    let failure: { message: string; exit: number } | undefined
    try {
      await session.start()
      await Promise.race([whenAborted(shutdown.signal), whenAborted(goal.signal)])
      if (goal.signal.reason instanceof Error && !connected) {
        failure = { message: `timed out after ${flags.timeout} s: not connected (state ${session.state})`, exit: ExitCode.Timeout }
      } else if (goal.signal.reason instanceof Error && flags['exit-on-connected'] && !probed) {
        failure = { message: `timed out after ${flags.timeout} s: connected but the path is not verified yet (state ${session.state})`, exit: ExitCode.Timeout }
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
