// The entry of dist/bundle/cli.cjs (scripts/bundle.js): the commands a user runs to reach a peer, with
// oclif, grpc-js, werift-ice and our core in one file whose compiled code V8 can cache
// (cli/bundle-loader.ts). Loading the same code as ~400 separate ES modules costs ~150 ms more per start
// (issue 10: process start → connected). oclif still runs each command: Config, hooks, flag parsing and
// error handling are the same as through `execute`; only the way the command class is found differs.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Config, flush, handle, type Command, type Interfaces } from '@oclif/core'
import { deferMulticastDns } from './defer-multicast-dns.js'
import { withPlainIdOrder } from './plain-id-order.js'

type CommandModule = Promise<{ default: Command.Class }>

interface BundledCommand {
  load(): CommandModule
  /**
   * Modules the command needs whatever its flags, which it would import only after oclif parsed them: they
   * are evaluated while oclif's Config.load waits for its files (evaluateBetweenReads), instead of after it.
   */
  early?: readonly (() => Promise<unknown>)[]
}

/**
 * The bundled commands, each loaded when it runs: a command's module graph (demo's embedded server, the
 * session's ICE) is evaluated only for that command, not on every start of every other one.
 * `signal` is not here: a server starts once, and its pino/reflection files want node_modules.
 */
export const BUNDLED_COMMANDS: Readonly<Record<string, BundledCommand>> = {
  demo: { load: () => import('../commands/demo.js') },
  keygen: { load: () => import('../commands/keygen.js') },
  publish: { load: () => import('../commands/publish.js') },
  pubkey: { load: () => import('../commands/pubkey.js') },
  // Every session reads its STUN/TURN flags (relays.js, with grpc-js for GetRelays) and runs a Session (werift).
  session: { load: () => import('../commands/session.js'), early: [() => import('../core/session/relays.js'), () => import('../core/session/session.js')] },
  status: { load: () => import('../commands/status.js') },
  subscribe: { load: () => import('../commands/subscribe.js') },
}

/**
 * Evaluates modules one at a time, each after the event loop had a turn: Config.load's file reads complete
 * and go on in between, so the evaluation fills the time the process would otherwise wait for them.
 */
async function evaluateBetweenReads(loaders: readonly (() => Promise<unknown>)[]): Promise<void> {
  for (const load of loaders) {
    await new Promise((resolve) => setImmediate(resolve))
    await load()
  }
}

/** Runs a bundled command as oclif's `execute` would (root: the package directory). */
export async function runBundled(id: string, argv: string[], root: string): Promise<void> {
  try {
    const command = BUNDLED_COMMANDS[id]
    if (!command) throw new Error(`command ${id} is not bundled`)
    // Read here, at once: Config.load would first look for it and then read it again, two chains of
    // asynchronous file reads on the way to the first envelope. It holds our oclif config, so oclif's own
    // reading would add nothing to it (read-pjson.js).
    const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Interfaces.PJSON
    const loadingConfig = withPlainIdOrder(() => Config.load({ root, pjson }))
    deferMulticastDns() // as BaseCommand does, but before the early modules load werift-ice
    const evaluated = evaluateBetweenReads([command.load, ...(command.early ?? [])])
    const [config] = await Promise.all([loadingConfig, evaluated])
    const found = config.findCommand(id)
    if (!found) throw new Error(`command ${id} is not in the manifest`)
    await config.runCommand(id, argv, { ...found, load: async () => (await command.load()).default })
    await flush()
  } catch (error) {
    await handle(error as Error)
  }
}
