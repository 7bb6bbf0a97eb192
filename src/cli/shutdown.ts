// Ctrl-C / SIGTERM: the first signal aborts gracefully (every long-running thing takes this signal),
// a second one exits at once, as users expect when a shutdown is stuck. Either way the process ends with
// the shell's code for the signal (130 after SIGINT, 143 after SIGTERM), so a script can tell an
// interrupted run from a successful one.
import { constants } from 'node:os'

export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM']

/** 128 + the signal's number, as shells report a process a signal ended. */
export function exitCodeOfSignal(name: NodeJS.Signals): number {
  return 128 + constants.signals[name]
}

export interface Shutdown {
  /** Aborts at the first stop signal; the reason is an Error naming it. */
  readonly signal: AbortSignal
  /** The stop signal received, if any: the command's exit code comes from it. */
  readonly stoppedBy: NodeJS.Signals | undefined
  /** Removes the handlers, unless a shutdown began (a second signal must still mean "now"). */
  dispose(): void
}

// Signals are process-wide, so is this: the command base class reads it once the command has cleaned up
// (BaseCommand.finally), so a command only calls abortOnSignals and never thinks about its exit code.
let pendingStop: NodeJS.Signals | undefined

/** The stop signal received since the last call, if any; clears it. */
export function takeStopSignal(): NodeJS.Signals | undefined {
  const stop = pendingStop
  pendingStop = undefined
  return stop
}

export function abortOnSignals(signals: readonly NodeJS.Signals[] = STOP_SIGNALS): Shutdown {
  const controller = new AbortController()
  let stoppedBy: NodeJS.Signals | undefined
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(exitCodeOfSignal(name))
    stoppedBy = name
    pendingStop = name
    controller.abort(new Error(`stopped by ${name}`))
  }
  for (const s of signals) process.on(s, onSignal)
  return {
    signal: controller.signal,
    get stoppedBy() {
      return stoppedBy
    },
    dispose: () => {
      if (!controller.signal.aborted) signals.forEach((s) => process.off(s, onSignal))
    },
  }
}

/**
 * A stop signal ends the process at once with the signal's code (Node's default would end it *by* the
 * signal, which callers in Node see as code null). With `unlessHandled`, it steps aside while another
 * handler (abortOnSignals: a graceful stop) is registered: that one decides. Returns the remover.
 */
export function exitOnSignals(options: { unlessHandled?: boolean } = {}, signals: readonly NodeJS.Signals[] = STOP_SIGNALS): () => void {
  const onSignal = (name: NodeJS.Signals) => {
    if (options.unlessHandled && process.listenerCount(name) > 1) return
    process.exit(exitCodeOfSignal(name))
  }
  for (const s of signals) process.on(s, onSignal)
  return () => signals.forEach((s) => process.off(s, onSignal))
}

/** Resolves when the signal aborts (immediately if it already has). */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve()
    else signal.addEventListener('abort', () => resolve(), { once: true })
  })
}
