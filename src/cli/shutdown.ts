// Ctrl-C / SIGTERM: the first signal aborts gracefully (every long-running thing takes this signal),
// a second one exits at once, as users expect when a shutdown is stuck.
export function abortOnSignals(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController()
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130)
    controller.abort(new Error(`stopped by ${name}`))
  }
  for (const s of signals) process.on(s, onSignal)
  return {
    signal: controller.signal,
    // Once a shutdown began, the handler stays until exit: a second signal must still mean "now".
    dispose: () => {
      if (!controller.signal.aborted) signals.forEach((s) => process.off(s, onSignal))
    },
  }
}

/** Resolves when the signal aborts (immediately if it already has). */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve()
    else signal.addEventListener('abort', () => resolve(), { once: true })
  })
}
