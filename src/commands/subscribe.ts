import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { backendFlags, backendUrls, keyFlags } from '../cli/flags.js'
import { helpSections } from '../cli/help.js'
import { writeNdjson } from '../cli/ndjson.js'
import { abortOnSignals, whenAborted } from '../cli/shutdown.js'
import { PublicKey } from '../core/keys.js'
import type { InboxEvent } from '../core/inbox.js'
import { openClient } from '../cli/open-client.js'

export default class Subscribe extends BaseCommand {
  static override summary = 'Print the messages other peers send to our key.'
  static override description = `Subscribes to envelopes addressed to our public key, opens them with our private key and prints each message.
On a terminal: a live log. With --json or when stdout is not a terminal: NDJSON, one event per line:
  {"type":"subscribed","key":OUR_PK,...}   once the subscription is live
  {"type":"message","at","from","to","backend","kind","size","message":{...}}   per message (protobuf JSON)
  {"type":"error","reason","message",...}   an envelope that failed to open (dropped; the command keeps running)
${helpSections(['CUNICU_KEY_FILE', 'CUNICU_PRIVATE_KEY', 'CUNICU_BACKEND', 'NO_COLOR'], { 0: '--count messages received, or --timeout passed without --count', 2: 'bad flags or key', 3: 'backend unreachable', 4: '--timeout passed with fewer than --count messages' })}`
  static override examples = [
    { command: '<%= config.bin %> subscribe -k peer.key --json', description: 'Every message to our key, as NDJSON' },
    { command: '<%= config.bin %> subscribe -k b.key --from "$(cunicu-ts pubkey < a.key)" --count 1 | jq .message', description: 'Wait for one message from peer A' },
    { command: 'CUNICU_BACKEND=grpc://signal.example.net:443 <%= config.bin %> subscribe -k peer.key', description: 'A TLS signaling server' },
  ]
  static override flags = {
    ...keyFlags,
    ...backendFlags,
    from: Flags.string({ summary: 'Only messages from this public key; repeatable. Default: any sender.', multiple: true, multipleNonGreedy: true }),
    count: Flags.integer({ char: 'n', summary: 'Exit 0 after this many messages.', min: 1 }),
    timeout: Flags.integer({ char: 't', summary: 'Stop after this many seconds.', min: 1 }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Subscribe)
    const from = (flags.from ?? []).map((text) => this.orUsage(() => PublicKey.parse(text, '--from')))
    const shutdown = abortOnSignals()
    const client = await openClient(this, flags, backendUrls(flags.backend))
    const { Inbox } = await import('../core/inbox.js')
    const inbox = new Inbox({ backend: client.backend, ours: client.key, from })
    const ndjson = this.wantsNdjson(flags.json)
    const unmount = ndjson ? (inbox.events.on(writeNdjson), async () => {}) : (await import('../ui/inbox-view.js')).showInbox(inbox.events)

    let received = 0
    const done = new AbortController()
    inbox.events.on((e: InboxEvent) => {
      if (e.type === 'message' && flags.count && ++received >= flags.count) done.abort()
    })
    const timer = flags.timeout ? setTimeout(() => done.abort(new Error('timeout')), flags.timeout * 1000) : undefined
    try {
      await inbox.start(AbortSignal.any([shutdown.signal, done.signal]))
      await Promise.race([whenAborted(shutdown.signal), whenAborted(done.signal)])
    } catch (err) {
      if (!shutdown.signal.aborted) this.fail((err as Error).message, ExitCode.Backend)
    } finally {
      clearTimeout(timer)
      shutdown.dispose()
      await inbox.close()
      await client.backend.close()
      await unmount()
    }
    if (flags.count && received < flags.count && !shutdown.signal.aborted) {
      this.fail(`timed out after ${flags.timeout} s with ${received} of ${flags.count} messages`, ExitCode.Timeout)
    }
  }

}
