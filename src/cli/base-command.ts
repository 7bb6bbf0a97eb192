// Shared behaviour of every command: one-line errors with documented exit codes, JSON errors under --json.
import { Command, type Interfaces } from '@oclif/core'
import { ExitCode } from './exit-codes.js'

export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  /** NDJSON when asked for, or when stdout is a pipe or file: scripts never get terminal frames. */
  protected wantsNdjson(jsonFlag: boolean | undefined): boolean {
    return Boolean(jsonFlag) || !process.stdout.isTTY
  }

  /** Fails with a one-line message and a documented exit code (never a stack trace). */
  protected fail(message: string, exit: number = ExitCode.Error): never {
    this.error(message, { exit })
  }

  /** Runs a parser; its error becomes a usage error (exit 2), prefixed with where the input came from. */
  protected orUsage<T>(parse: () => T, where = '', suffix = ''): T {
    try {
      return parse()
    } catch (err) {
      this.fail(`${where ? `${where}: ` : ''}${(err as Error).message}${suffix}`, ExitCode.Usage)
    }
  }

  /** One line, so that --json output of streaming commands stays NDJSON to the end. */
  protected override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json) + '\n')
  }

  protected override toErrorJson(err: unknown) {
    const e = err as { message?: string; oclif?: { exit?: number } }
    return { error: { message: e.message ?? String(err), exit: e.oclif?.exit ?? ExitCode.Error } }
  }

  protected override async catch(err: Interfaces.CommandError) {
    const exit = (err as { oclif?: { exit?: number } }).oclif?.exit
    // oclif's parse errors carry no exit code of their own: they are usage errors.
    const parseError = exit === undefined && /Parse|Required|Nonexistent|Unexpected|Validation|Flag|Arg/.test(err.constructor?.name ?? '')
    process.exitCode = exit ?? (parseError ? ExitCode.Usage : (err.exitCode ?? ExitCode.Error))
    if (this.jsonEnabled()) return super.catch(err)
    // One unwrapped line per message, no stack: users grep and scripts parse it.
    process.stderr.write(`Error: ${err.message}\n`)
    if (!exit && !parseError && process.env.DEBUG) process.stderr.write(`${err.stack}\n`)
  }
}
