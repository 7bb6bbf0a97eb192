// The entry of dist/bundle/cli.cjs (scripts/bundle.js): the commands a user runs to reach a peer, with
// oclif, grpc-js, werift-ice and our core in one file whose compiled code V8 can cache
// (cli/bundle-loader.ts). Loading the same code as ~400 separate ES modules costs ~150 ms more per start
// (issue 10: process start → connected). oclif still runs each command: Config, hooks, flag parsing and
// error handling are the same as through `execute`; only the way the command class is found differs.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Config, flush, handle, type Command, type Interfaces } from '@oclif/core'

type CommandModule = Promise<{ default: Command.Class }>

/**
 * The bundled commands, each loaded when it runs: a command's module graph (demo's embedded server, the
 * session's ICE) is evaluated only for that command, not on every start of every other one.
 * `signal` is not here: a server starts once, and its pino/reflection files want node_modules.
 */
export const BUNDLED_COMMANDS: Readonly<Record<string, () => CommandModule>> = {
  demo: () => import('../commands/demo.js'),
  keygen: () => import('../commands/keygen.js'),
  publish: () => import('../commands/publish.js'),
  pubkey: () => import('../commands/pubkey.js'),
  session: () => import('../commands/session.js'),
  status: () => import('../commands/status.js'),
  subscribe: () => import('../commands/subscribe.js'),
}

/** Runs a bundled command as oclif's `execute` would (root: the package directory). */
export async function runBundled(id: string, argv: string[], root: string): Promise<void> {
  try {
    // Read here, at once: Config.load would first look for it and then read it again, two chains of
    // asynchronous file reads on the way to the first envelope. It holds our oclif config, so oclif's own
    // reading would add nothing to it (read-pjson.js).
    const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Interfaces.PJSON
    const config = await Config.load({ root, pjson })
    const found = config.findCommand(id)
    const loadCommand = BUNDLED_COMMANDS[id]
    if (!found || !loadCommand) throw new Error(`command ${id} is not bundled`)
    await config.runCommand(id, argv, { ...found, load: async () => (await loadCommand()).default })
    await flush()
  } catch (error) {
    await handle(error as Error)
  }
}
