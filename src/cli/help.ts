// The parts every command's --help shows the same way: the environment variables it reads and its exit
// codes (the README's table, in the words of that command).
export const ENV_HELP = {
  CUNICU_KEY_FILE: 'our private key file, like -k',
  CUNICU_PRIVATE_KEY: 'our private key itself (base64), when no -k is given',
  CUNICU_BACKEND: 'backend URLs, comma-separated, when no -b is given',
  NO_COLOR: 'any value: no colours (like --no-color)',
} as const

export type EnvName = keyof typeof ENV_HELP

/** Exit codes that stop a command by signal: the same for all. */
const SIGNAL_EXITS: Record<number, string> = { 130: 'stopped by SIGINT (Ctrl-C)', 143: 'stopped by SIGTERM' }

/** "Environment:" and "Exit codes:" sections for a command's description. */
export function helpSections(env: readonly EnvName[], exits: Record<number, string>): string {
  const lines = ['', env.length ? 'Environment:' : 'Environment: none read.']
  for (const name of env) lines.push(`${name.padEnd(19)} ${ENV_HELP[name]}`)
  lines.push('', 'Exit codes:')
  for (const [code, meaning] of Object.entries({ ...exits, ...SIGNAL_EXITS })) lines.push(`${code.padEnd(4)} ${meaning}`)
  return lines.join('\n')
}
