// Shared behaviour of every command: one-line errors with documented exit codes, JSON errors under --json
// (as NDJSON events of type "error"), and the shell's exit code after SIGINT (130) or SIGTERM (143).
import { Command, Flags, type Interfaces } from '@oclif/core'
import { ExitCode } from './exit-codes.js'
import { deferMulticastDns } from './defer-multicast-dns.js'
import { exitCodeOfSignal, exitOnSignals, takeStopSignal } from './shutdown.js'

/** How long a stopped command may linger after its clean-up before it is ended. */
export const STOP_LINGER_MS = 1000

export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    json: Flags.boolean({
      summary: 'NDJSON output: one JSON event per line (schema/events.schema.json); also chosen when stdout is not a terminal.',
      helpGroup: 'GLOBAL',
    }),
    color: Flags.boolean({ summary: 'Colours on a terminal; --no-color (or env NO_COLOR) turns them off.', allowNo: true, helpGroup: 'GLOBAL' }),
  }

  #removeExitOnSignals?: () => void

  override async init(): Promise<void> {
    // Until the command takes over with abortOnSignals (its graceful path), a stop signal exits at once with
    // its code (e.g. `pubkey` waiting on stdin, or flag parsing).
    // Ink's colours (chalk) read FORCE_COLOR when first imported, which happens after this (lazily).
    if (process.env.NO_COLOR || this.argv.includes('--no-color')) process.env.FORCE_COLOR = '0'
    deferMulticastDns() // before anything loads werift-ice
    takeStopSignal()
    this.#removeExitOnSignals = exitOnSignals({ unlessHandled: true })
    await super.init()
  }

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

  /** The last line under --json is an event like every other (schema/events.schema.json). */
  protected override toErrorJson(err: unknown) {
    const e = err as { message?: string; oclif?: { exit?: number } }
    return { type: 'error', at: new Date().toISOString(), message: e.message ?? String(err), exit: Number(process.exitCode ?? e.oclif?.exit ?? ExitCode.Error) }
  }

  protected override async catch(err: Interfaces.CommandError) {
    const exit = (err as { oclif?: { exit?: number } }).oclif?.exit
    // oclif's parse errors (every subclass of its CLIParseError carries the `parse` it failed) have no exit
    // code of their own: they are usage errors. Recognised by that field, not by class names.
    const parseError = exit === undefined && typeof (err as { parse?: unknown }).parse === 'object'
    process.exitCode = exit ?? (parseError ? ExitCode.Usage : (err.exitCode ?? ExitCode.Error))
    if (this.jsonEnabled()) return super.catch(err)
    // One unwrapped line per message, no stack: users grep and scripts parse it.
    // oclif's own messages may span lines ("Parsing --timeout \n\tExpected an integer …"): fold them.
    process.stderr.write(`Error: ${err.message.trim().replace(/\s*\n\s*/g, ': ')}\n`)
    if (!exit && !parseError && process.env.DEBUG) process.stderr.write(`${err.stack}\n`)
  }

  /**
   * Runs after the command cleaned up: a stop signal it received decides the exit code (130/143). And the
   * process then ends: if a handle outlives the clean-up (e.g. grpc-js keeps the connection of a client that
   * stopped answering), the user who pressed Ctrl-C still gets their shell back, STOP_LINGER_MS later.
   */
  override async finally(err: Error | undefined): Promise<void> {
    this.#removeExitOnSignals?.()
    const stop = takeStopSignal()
    if (stop) {
      const code = exitCodeOfSignal(stop)
      process.exitCode = code
      setTimeout(() => process.exit(code), STOP_LINGER_MS).unref() // unref: never delays an exit that happens anyway
    }
    await super.finally(err)
  }
}
