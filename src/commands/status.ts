import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { backendUrls } from '../cli/flags.js'
import { helpSections } from '../cli/help.js'
import { writeNdjson } from '../cli/ndjson.js'

export default class Status extends BaseCommand {
  static override summary = 'Ask a signaling server whether it is up: health, build and round-trip time.'
  static override description = `Asks the grpc:// server for its health (the standard grpc.health.v1 service), its build (GetBuildInfo) and measures the round trip on the open connection (the smallest of 3). For scripts and monitoring: exit 0 when it serves, 3 when it cannot be reached or reports NOT_SERVING. A cunīcu server, which has no health service, counts as serving when it answers GetBuildInfo.
With --json: one NDJSON line {"type":"status",...} per server.
${helpSections(['CUNICU_BACKEND', 'NO_COLOR'], { 0: 'every server serves', 2: 'bad flags or URL', 3: 'a server is unreachable or not serving' })}`
  static override examples = [
    { command: '<%= config.bin %> status -b "grpc://127.0.0.1:8080?insecure=true"', description: 'A local plain-text server' },
    { command: '<%= config.bin %> status -b grpc://signal.example.net:443 --json', description: 'A TLS server, as an NDJSON line' },
    { command: 'until <%= config.bin %> status -q -b "$URL"; do sleep 1; done', description: 'Wait until a server is up' },
  ]
  static override flags = {
    backend: Flags.string({
      char: 'b',
      summary: 'Signaling server URL (grpc://HOST:PORT, ?insecure=true or ?skip_verify=true as for other commands); repeatable.',
      multiple: true,
    }),
    'ca-file': Flags.string({ summary: 'PEM file of CA certificates to trust for grpc:// TLS instead of the system roots.' }),
    timeout: Flags.integer({ char: 't', summary: 'Seconds to wait for an answer.', default: 5, min: 1 }),
    quiet: Flags.boolean({ char: 'q', summary: 'Print nothing; the exit code tells.' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Status)
    const { probeServer } = await import('../core/server-status.js')
    const { BackendError } = await import('../core/backend.js')
    let failed = 0
    for (const url of backendUrls(flags.backend)) {
      let status
      try {
        status = await probeServer(url, { timeoutMs: flags.timeout * 1000, ...(flags['ca-file'] ? { caFile: flags['ca-file'] } : {}) })
      } catch (err) {
        if (err instanceof BackendError) this.fail(err.message, ExitCode.Usage)
        throw err
      }
      if (!status.ok) failed++
      if (flags.quiet) continue
      if (this.wantsNdjson(flags.json)) {
        writeNdjson({ type: 'status', at: new Date().toISOString(), ...status })
      } else if (status.ok) {
        const build = status.build ? `${status.build.version || 'unknown version'}${status.build.commit ? ` (${status.build.commit})` : ''}` : 'unknown build'
        this.log(`${url}: ${status.health === 'UNIMPLEMENTED' ? 'answering (no health service)' : 'serving'}, ${build}, round trip ${status.rttMs?.toFixed(2)} ms`)
      } else {
        process.stderr.write(`${url}: ${status.reason}\n`)
      }
    }
    if (failed) process.exitCode = ExitCode.Backend
  }
}
