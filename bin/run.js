#!/usr/bin/env node
// CommonJS (bin/package.json): Node starts a CommonJS entry ~6 ms faster than an ES module one, and the
// commands that reach a peer need no ES module loader at all (see runCommand).
//
// `keygen` and `pubkey` without flags are what scripts call in loops, like `wg genkey`/`wg pubkey`: they
// answer before oclif is loaded (~90 ms of start-up). Anything else, --help included, goes through oclif.
'use strict'
const { existsSync } = require('node:fs')
const { join } = require('node:path')

const ROOT = join(__dirname, '..')
const [command, ...rest] = process.argv.slice(2)
const OUTSIDE_BACKENDS = process.env.CUNICU_BACKEND_MODULES?.trim()

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

// oclif checks at load that Node satisfies *its own* engines (≥ 18), which ours (≥ 20.19, checked by npm at
// install) imply; the check costs every start ~1.5 ms (semver builds ~50 regular expressions for it).
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1'

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`)
  process.exitCode = 1
})

async function main() {
  if ((command === 'keygen' || command === 'pubkey') && rest.length === 0) {
    // `pubkey` may wait on stdin: a stop signal ends it with the shell's code for it (130, 143).
    for (const [name, code] of [['SIGINT', 130], ['SIGTERM', 143]]) process.on(name, () => process.exit(code))
    const { runKeyCommand } = await import('../dist/cli/key-commands.js')
    process.exitCode = await runKeyCommand(command)
    return
  }
  // Backends from outside this package register their schemes before any command parses `-b`.
  if (OUTSIDE_BACKENDS) {
    const { backendModuleUrls, loadBackendModules } = await import('../dist/cli/backend-modules.js')
    try {
      await loadBackendModules(backendModuleUrls(OUTSIDE_BACKENDS))
    } catch (err) {
      process.stderr.write(`Error: ${err.message}\n`)
      process.exitCode = 2
      return
    }
  }
  await runCommand(command, rest)
}

/**
 * The commands that reach a peer run from one bundled file with V8's code cache (src/cli/bundle-loader.ts,
 * built into dist/bundle/loader.cjs): ~200 ms less from start to connected than loading ~400 ES modules.
 * Help, `signal`, mistyped commands and outside backends (CUNICU_BACKEND_MODULES: they register in the
 * unbundled registry) go through oclif's usual loading; CUNICU_BUNDLE=0 forces that.
 */
async function runCommand(id, argv) {
  const wantsHelp = argv.some((a) => a === '--help' || a === '-h' || a === '--version')
  if (id && !wantsHelp && !OUTSIDE_BACKENDS && process.env.CUNICU_BUNDLE !== '0') {
    const bundleFile = join(ROOT, 'dist', 'bundle', 'cli.cjs')
    if (existsSync(bundleFile)) {
      const { loadBundle } = require('../dist/bundle/loader.cjs')
      const bundle = loadBundle(bundleFile)
      if (process.env.CUNICU_DEBUG_START) process.stderr.write(`bundle: ${id}, code cache ${bundle.cache}\n`)
      if (Object.hasOwn(bundle.exports.BUNDLED_COMMANDS, id)) return bundle.exports.runBundled(id, argv, ROOT)
    }
  }
  const { execute } = await import('@oclif/core')
  // The package directory, not this file: oclif would take bin/package.json for the package's.
  await execute({ dir: ROOT })
}
