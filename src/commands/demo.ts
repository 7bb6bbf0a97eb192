import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { helpSections } from '../cli/help.js'
import { writeNdjson } from '../cli/ndjson.js'
import { abortOnSignals } from '../cli/shutdown.js'

export default class Demo extends BaseCommand {
  static override summary = 'Run an embedded signaling server and two peers that open an ICE session through it.'
  static override description = `Everything in one process, on loopback: a gRPC signaling server on an ephemeral port, and two fresh peers that exchange sealed credentials and candidates through it, connect with ICE (the smaller public key controls) and verify the path with sealed probes.
Exits 0 once both peers are connected and their paths verified; otherwise non-zero with the reason (4: "not connected" or "not verified" within --timeout). On a terminal: a live view; with --json or in a pipe: NDJSON events, each tagged with its peer.
${helpSections(['NO_COLOR'], { 0: 'both peers connected and their paths verified', 4: 'not connected, or not verified, within --timeout', 5: 'a peer failed' })}`
  static override examples = [
    { command: '<%= config.bin %> demo', description: 'Watch two peers connect' },
    { command: '<%= config.bin %> demo --json | jq -c "select(.type==\\"peer\\") | .event.type"', description: 'The event stream' },
  ]
  static override flags = {
    timeout: Flags.integer({ char: 't', summary: 'Seconds to wait for both peers to connect.', default: 20, min: 1 }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Demo)
    const shutdown = abortOnSignals()
    const { Demo: DemoEngine } = await import('../core/demo.js')
    const demo = new DemoEngine()
    const unmount = this.wantsNdjson(flags.json) ? (demo.events.on((e) => writeNdjson(e.type === 'peer' ? { ...e, at: e.event.at } : e)), async () => {}) : (await import('../ui/demo-view.js')).showDemo(demo.events)
    let result
    try {
      result = await demo.run({ timeoutMs: flags.timeout * 1000, signal: shutdown.signal })
    } finally {
      shutdown.dispose()
      await unmount()
    }
    if (!result.ok && !shutdown.signal.aborted) this.fail(`demo failed: ${result.reason}`, result.timedOut ? ExitCode.Timeout : ExitCode.SessionFailed)
  }
}
