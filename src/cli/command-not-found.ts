// oclif's command_not_found hook: a mistyped command gets the closest one ("did you mean"), exit 2.
import type { Hook } from '@oclif/core'
import { ExitCode } from './exit-codes.js'

/** Edit distance (insertions, deletions, substitutions, and swaps of neighbours: "sesison"). */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/** The known command closest to `typed`, if it is close enough to be a typo (or `typed` is its prefix). */
export function closestCommand(typed: string, commands: readonly string[]): string | undefined {
  let best: { id: string; distance: number } | undefined
  for (const id of commands) {
    const distance = id.startsWith(typed) && typed.length >= 2 ? 1 : editDistance(typed, id)
    if (!best || distance < best.distance) best = { id, distance }
  }
  return best && best.distance <= Math.max(1, Math.floor(best.id.length / 3)) ? best.id : undefined
}

const hook: Hook<'command_not_found'> = async function (options) {
  const commands = options.config.commandIDs.filter((id) => !options.config.findCommand(id)?.hidden)
  const suggestion = closestCommand(options.id, commands)
  const hint = suggestion ? `did you mean "${suggestion}"?` : `commands: ${[...commands].sort().join(', ')}`
  process.stderr.write(`Error: unknown command "${options.id}"; ${hint} (${options.config.bin} --help lists them all)\n`)
  process.exitCode = ExitCode.Usage
}

export default hook
