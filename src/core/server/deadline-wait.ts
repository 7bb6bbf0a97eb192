// Waiting with a deadline, for the drain: every wait ends by the deadline and leaves no timer behind.
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits for `promise`, but not past `deadline` (performance.now()). */
export async function untilDeadline(promise: Promise<void>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - performance.now()))))])
  clearTimeout(timer)
}

/** Polls `done` every 10 ms until it holds or `deadline` (performance.now()) passes. */
export async function waitFor(done: () => boolean, deadline: number): Promise<void> {
  while (!done() && performance.now() < deadline) await sleep(10)
}
