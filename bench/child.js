// The side of the IPC protocol every bench child process shares (bench/client.js, bench/latency-peer.js;
// forked by lib.js runClient): the first message is the task, {type:'stop'} or the orchestrator going away
// ends the process, {type:'clock'} is answered with our monotonic clock, and a failure is reported as
// {type:'error'} before exiting 1.

const closers = []

/** `close` runs when the process shuts down: connections to close before exiting. */
export function onShutdown(close) {
  closers.push(close)
}

export function send(m) {
  if (process.connected) process.send(m)
}

/** Resolves with the orchestrator's next message of `type`. */
export function nextMessage(type) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m.type !== type) return
      process.off('message', on)
      resolve(m)
    }
    process.on('message', on)
  })
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function shutdown(code) {
  for (const close of closers) close()
  process.exitCode = code
  // Streams being cancelled may still emit; exit regardless.
  setTimeout(() => process.exit(code), 50).unref()
}

/** Waits for the task and runs `handlers[task[key]](task)`. */
export function serveTask(handlers, key) {
  process.on('disconnect', () => shutdown(0))
  process.once('message', async (task) => {
    process.on('message', (m) => m.type === 'stop' && shutdown(0))
    // The clock handshake (bench/latency.js): our process.hrtime, to compare with the orchestrator's.
    process.on('message', (m) => m.type === 'clock' && send({ type: 'clock', ns: String(process.hrtime.bigint()) }))
    try {
      const handler = handlers[task[key]]
      if (!handler) throw new Error(`unknown ${key} ${task[key]}`)
      await handler(task)
    } catch (err) {
      send({ type: 'error', message: err.stack ?? String(err) })
      shutdown(1)
    }
  })
}
