#!/usr/bin/env node
// `keygen` and `pubkey` without flags are what scripts call in loops, like `wg genkey`/`wg pubkey`: they
// answer before oclif is loaded (~90 ms of start-up). Anything else, --help included, goes through oclif.
const [command, ...rest] = process.argv.slice(2)

// grpc-js passes the target host as the TLS server name, also when it is an IP address (grpc://127.0.0.1…),
// and Node then warns (DEP0123) on every connection: noise for users that says nothing about their setup.
const emitWarning = process.emitWarning.bind(process)
process.emitWarning = (warning, ...args) => {
  const code = typeof args[0] === 'object' ? args[0]?.code : args[1]
  if (code !== 'DEP0123') emitWarning(warning, ...args)
}

// grpc-js logs its own errors to stderr ("E No address added…"); our commands report each failure once, in
// their own words. GRPC_VERBOSITY=ERROR (or DEBUG) brings its log back.
process.env.GRPC_VERBOSITY ??= 'NONE'

if ((command === 'keygen' || command === 'pubkey') && rest.length === 0) {
  // `pubkey` may wait on stdin: a stop signal ends it with the shell's code for it (130, 143).
  for (const [name, code] of [['SIGINT', 130], ['SIGTERM', 143]]) process.on(name, () => process.exit(code))
  const { runKeyCommand } = await import('../dist/cli/key-commands.js')
  process.exitCode = await runKeyCommand(command)
} else {
  // Backends from outside this package register their schemes before any command parses `-b`.
  let loaded = true
  if (process.env.CUNICU_BACKEND_MODULES?.trim()) {
    const { backendModuleUrls, loadBackendModules } = await import('../dist/cli/backend-modules.js')
    loaded = await loadBackendModules(backendModuleUrls(process.env.CUNICU_BACKEND_MODULES)).then(
      () => true,
      (err) => {
        process.stderr.write(`Error: ${err.message}\n`)
        process.exitCode = 2
        return false
      },
    )
  }
  if (loaded) {
    const { execute } = await import('@oclif/core')
    await execute({ dir: import.meta.url })
  }
}
