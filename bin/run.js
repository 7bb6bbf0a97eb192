#!/usr/bin/env node
// `keygen` and `pubkey` without flags are what scripts call in loops, like `wg genkey`/`wg pubkey`: they
// answer before oclif is loaded (~90 ms of start-up). Anything else, --help included, goes through oclif.
const [command, ...rest] = process.argv.slice(2)
if ((command === 'keygen' || command === 'pubkey') && rest.length === 0) {
  const { runKeyCommand } = await import('../dist/cli/key-commands.js')
  process.exitCode = await runKeyCommand(command)
} else {
  const { execute } = await import('@oclif/core')
  await execute({ dir: import.meta.url })
}
