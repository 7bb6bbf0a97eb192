// Every command's --help, as a user sees it in an 80-column terminal: examples that still work when pasted
// (oclif wraps long ones with " \" continuations, which must never fall inside quotes), the environment
// variables the command reads, its exit codes including the signals', and what --json means.
import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ROOT, runCli } from './helpers/cli.js'

const COMMANDS = readdirSync(new URL('../dist/commands/', import.meta.url)).filter((f) => f.endsWith('.js')).map((f) => f.replace(/\.js$/, ''))

interface Example {
  command: string
  description: string
}

async function examplesOf(id: string): Promise<string[]> {
  const mod = (await import(new URL(`dist/commands/${id}.js`, `file://${ROOT}`).href)) as { default: { examples?: (string | Example)[] } }
  return (mod.default.examples ?? []).map((e) => (typeof e === 'string' ? e : e.command).replaceAll('<%= config.bin %>', 'cunicu-ts'))
}

/** The EXAMPLES section's commands as printed: each a list of the physical lines it was wrapped into. */
function printedExamples(help: string): string[][] {
  const section = help.slice(help.indexOf('\nEXAMPLES\n') + 10).split(/\n[A-Z][A-Z ]+\n/)[0]!
  const examples: string[][] = []
  let current: string[] | undefined
  for (const line of section.split('\n')) {
    if (line.startsWith('    ')) {
      if (!current) examples.push((current = []))
      current.push(line.trim())
      if (!line.endsWith(' \\')) current = undefined
    } else current = undefined
  }
  return examples
}

/** Is the end of `text` inside a single- or double-quoted shell string? */
function insideQuotes(text: string): boolean {
  let quote: string | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote === "'") {
      if (c === "'") quote = undefined
    } else if (quote === '"') {
      if (c === '\\') i++
      else if (c === '"') quote = undefined
    } else if (c === '\\') i++
    else if (c === "'" || c === '"') quote = c
  }
  return quote !== undefined
}

describe.each(COMMANDS)('%s --help', (id) => {
  it('has examples that survive an 80-column terminal: every wrap is outside quotes and pasting gives the command back', async () => {
    const r = await runCli([id, '--help'], { env: { COLUMNS: '80' } })
    expect(r.code).toBe(0)
    const printed = printedExamples(r.stdout)
    const source = await examplesOf(id)
    expect(source.length).toBeGreaterThan(0)
    expect(printed).toHaveLength(source.length)
    for (const [i, lines] of printed.entries()) {
      for (const line of lines) expect(line.length + 6, line).toBeLessThanOrEqual(80)
      let pasted = ''
      for (const [j, line] of lines.entries()) {
        const last = j === lines.length - 1
        pasted += (j ? ' ' : '') + (last ? line : line.slice(0, -2))
        if (!last) expect(insideQuotes(pasted), `wrapped inside quotes: ${pasted}`).toBe(false)
      }
      expect(pasted.replace(/^\$ /, '')).toBe(source[i])
    }
  })

  it('lists the environment it reads, its exit codes (130 and 143 too), and says --json is NDJSON', async () => {
    const { stdout } = await runCli([id, '--help'])
    expect(stdout).toMatch(/Environment: none read\.|Environment:\n/)
    expect(stdout).toMatch(/Exit codes:\n/)
    expect(stdout).toMatch(/^\s*130 +stopped by SIGINT/m)
    expect(stdout).toMatch(/^\s*143 +stopped by SIGTERM/m)
    expect(stdout).toMatch(/--json +NDJSON output/)
    if (['session', 'subscribe', 'publish'].includes(id)) {
      for (const env of ['CUNICU_KEY_FILE', 'CUNICU_PRIVATE_KEY', 'CUNICU_BACKEND']) expect(stdout).toMatch(new RegExp(`^\\s*${env} `, 'm'))
    }
  })
})

it('the help test sees every command, status included', () => {
  expect(COMMANDS).toEqual(expect.arrayContaining(['demo', 'keygen', 'pubkey', 'publish', 'session', 'signal', 'status', 'subscribe']))
})
