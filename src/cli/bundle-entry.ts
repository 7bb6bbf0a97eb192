// The entry of dist/bundle/cli.cjs (scripts/bundle.js): the commands a user runs to reach a peer, with
// oclif, grpc-js, werift-ice and our core in one file whose compiled code V8 can cache
// (cli/bundle-loader.ts). Loading the same code as ~400 separate ES modules costs ~150 ms more per start
// (issue 10: process start → connected). oclif still runs each command: Config, hooks, flag parsing and
// error handling are the same as through `execute`; only the way the command class is found differs.
import { Config, flush, handle, type Command } from '@oclif/core'
import Demo from '../commands/demo.js'
import Keygen from '../commands/keygen.js'
import Publish from '../commands/publish.js'
import Pubkey from '../commands/pubkey.js'
import Session from '../commands/session.js'
import Status from '../commands/status.js'
import Subscribe from '../commands/subscribe.js'

/** The bundled commands. `signal` is not here: a server starts once, and its pino/reflection files want node_modules. */
export const BUNDLED_COMMANDS: Readonly<Record<string, Command.Class>> = {
  demo: Demo,
  keygen: Keygen,
  publish: Publish,
  pubkey: Pubkey,
  session: Session,
  status: Status,
  subscribe: Subscribe,
}

/** Runs a bundled command as oclif's `execute` would (root: the package directory). */
export async function runBundled(id: string, argv: string[], root: string): Promise<void> {
  try {
    const config = await Config.load(root)
    const found = config.findCommand(id)
    const command = BUNDLED_COMMANDS[id]
    if (!found || !command) throw new Error(`command ${id} is not bundled`)
    await config.runCommand(id, argv, { ...found, load: async () => command })
    await flush()
  } catch (error) {
    await handle(error as Error)
  }
}
