import { createInterface } from 'node:readline'
import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { backendFlags, backendUrls, keyFlags, logFlags } from '../cli/flags.js'
import { helpSections } from '../cli/help.js'
import { writeNdjson } from '../cli/ndjson.js'
import { openClient } from '../cli/open-client.js'
import { abortOnSignals } from '../cli/shutdown.js'
import { PublicKey } from '../core/keys.js'
import { messageKind } from '../core/message-kind.js'
import type { Message } from '../gen/signaling/signaling.js'

export default class Publish extends BaseCommand {
  static override summary = 'Seal and publish messages to one or more peers.'
  static override description = `Publishes one Message (protobuf JSON, e.g. {"credentials":{"ufrag":"…","pwd":"…","needCreds":true}}) to each PEER_PK, sealed to that peer's key.
Without --message it reads NDJSON Messages from stdin, one per line, and publishes each as it arrives.
Unknown fields, bad enum names, bad JSON or a bad key stop it with exit 2 and a message naming the line; what was already published is reported (NDJSON: one {"type":"published",...} line per envelope, then {"type":"summary","published":N}).
${helpSections(['CUNICU_KEY_FILE', 'CUNICU_PRIVATE_KEY', 'CUNICU_BACKEND'], { 0: 'every message published', 2: 'bad flags, key or message (the line is named)', 3: 'backend unreachable or a publish failed' })}`
  static override examples = [
    { command: `<%= config.bin %> publish -k a.key "$PEER_B" -m '{"candidate":{"address":"192.0.2.1","port":51820}}'`, description: 'One candidate to one peer' },
    { command: `jq -c '.[]' messages.json | <%= config.bin %> publish -k a.key "$PEER_B" "$PEER_C"`, description: 'A stream of messages to two peers' },
  ]
  static override strict = false
  static override args = {
    peer: Args.string({ description: 'Public key(s) of the recipient(s), base64.', required: true }),
  }
  static override flags = {
    ...keyFlags,
    ...backendFlags,
    ...logFlags,
    message: Flags.string({ char: 'm', summary: 'The Message as protobuf JSON; without it, NDJSON lines are read from stdin.' }),
  }

  async run(): Promise<{ type: 'summary'; at: string; published: number }> {
    const { argv, flags } = await this.parse(Publish)
    const peers = (argv as string[]).map((text, i) => this.orUsage(() => PublicKey.parse(text, `PEER_PK #${i + 1}`)))
    // The strict Message JSON reader (protobufjs over proto/) loads only here: the other bundled commands never need it.
    const { messageToJson, parseMessageJson } = await import('../core/message-json.js')
    const single = flags.message === undefined ? undefined : this.orUsage(() => parseMessageJson(flags.message!), '--message')
    if (!single && process.stdin.isTTY) this.fail('no --message given and stdin is a terminal: pipe NDJSON messages in, or pass --message JSON', ExitCode.Usage)

    const shutdown = abortOnSignals()
    const client = await openClient(this, flags, backendUrls(flags.backend))
    const ndjson = this.wantsNdjson(flags.json)
    let published = 0
    // Under --json the last line: how many envelopes went out in all.
    const summary = () => ({ type: 'summary' as const, at: new Date().toISOString(), published })
    const send = async (message: Message, line?: number) => {
      for (const peer of peers) {
        const { size } = await client.backend.publish(client.key, peer, message, shutdown.signal)
        published++
        const report = { type: 'published', at: new Date().toISOString(), to: peer.toString(), kind: messageKind(message), size, ...(line ? { line } : {}) }
        if (flags.verbose) process.stderr.write(`sealed to ${peer}, ${size} B via ${client.backend.url}: ${JSON.stringify(messageToJson(message))}\n`)
        if (ndjson) writeNdjson(report)
        else if (!flags.quiet) this.log(`published ${report.kind} (${size} B) to ${peer.short}…${line ? ` [line ${line}]` : ''}`)
      }
    }
    try {
      if (single) {
        await send(single)
      } else {
        let line = 0
        for await (const text of createInterface({ input: process.stdin, crlfDelay: Infinity, signal: shutdown.signal })) {
          line++
          if (text.trim() === '') continue
          await send(this.orUsage(() => parseMessageJson(text), `line ${line}`, ` (published ${published} before it)`), line)
          if (shutdown.signal.aborted) break
        }
      }
    } catch (err) {
      if (shutdown.signal.aborted) return summary() // stopped: the exit code (130/143) says so
      if ((err as { oclif?: unknown }).oclif) throw err
      this.fail(`${(err as Error).message} (published ${published} before the error)`, ExitCode.Backend)
    } finally {
      shutdown.dispose()
      await client.backend.close()
    }
    return summary()
  }

}
