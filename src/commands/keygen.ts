import { dirname } from 'node:path'
import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { logFlags } from '../cli/flags.js'
import { helpSections } from '../cli/help.js'
import { KeyFileError, writeKeyFile } from '../core/key-file.js'
import { PrivateKey } from '../core/keys.js'

export default class Keygen extends BaseCommand {
  static override summary = 'Generate a new private key.'
  static override description = `Prints a new Curve25519 private key in base64, like \`wg genkey\`: any WireGuard private key is a cunicu-ts key and vice versa. With -o the key goes to a file created with mode 0600 instead, and its public key is printed.\n${helpSections([], { 0: 'key written', 2: 'bad flags, -o file exists (without --force) or its directory does not' })}`
  static override examples = [
    { command: '<%= config.bin %> keygen > peer.key', description: 'Write a key to a file' },
    { command: '<%= config.bin %> keygen | tee peer.key | <%= config.bin %> pubkey', description: 'Key and public key in one go, like wg' },
    { command: '<%= config.bin %> keygen -o peer.key', description: 'Write the key with mode 0600 (refuses to overwrite without --force)' },
    { command: '<%= config.bin %> keygen -o - | <%= config.bin %> pubkey', description: '"-" is stdout' },
    { command: '<%= config.bin %> keygen --json', description: 'One NDJSON line: {"type":"key","privateKey":…,"publicKey":…}' },
  ]
  static override flags = {
    output: Flags.string({ char: 'o', summary: 'Write the key to this file (mode 0600) instead of stdout; "-" is stdout.' }),
    force: Flags.boolean({ summary: 'Overwrite the --output file if it exists.', dependsOn: ['output'] }),
    quiet: logFlags.quiet,
  }

  async run(): Promise<{ type: 'key'; at: string; privateKey?: string; publicKey: string; file?: string }> {
    const { flags } = await this.parse(Keygen)
    const key = PrivateKey.generate()
    if (flags.output && flags.output !== '-') {
      try {
        await writeKeyFile(flags.output, key, flags.force)
      } catch (err) {
        if (err instanceof KeyFileError) this.fail(err.message, ExitCode.Usage)
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.fail(`cannot write ${flags.output}: directory ${dirname(flags.output)} does not exist`, ExitCode.Usage)
        if ((err as NodeJS.ErrnoException).code === 'EACCES') this.fail(`cannot write ${flags.output}: permission denied in ${dirname(flags.output)}`, ExitCode.Usage)
        throw err
      }
      if (!flags.quiet) this.log(key.publicKey.toString())
      return { type: 'key', at: new Date().toISOString(), publicKey: key.publicKey.toString(), file: flags.output }
    }
    this.log(key.toBase64())
    return { type: 'key', at: new Date().toISOString(), privateKey: key.toBase64(), publicKey: key.publicKey.toString() }
  }
}
