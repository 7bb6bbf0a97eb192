import { BaseCommand } from '../cli/base-command.js'
import { ExitCode } from '../cli/exit-codes.js'
import { helpSections } from '../cli/help.js'
import { publicKeyOfStdin, UsageError } from '../cli/key-commands.js'

export default class Pubkey extends BaseCommand {
  static override summary = 'Print the public key of a private key read on stdin.'
  static override description = `Reads a base64 private key on stdin and prints its public key, like \`wg pubkey\`.\n${helpSections([], { 0: 'public key printed', 2: 'stdin is a terminal, or not a base64 key of 32 bytes' })}`
  static override examples = [
    { command: '<%= config.bin %> pubkey < peer.key', description: 'Public key of a key file' },
    { command: '<%= config.bin %> keygen | tee peer.key | <%= config.bin %> pubkey', description: 'New key and its public key' },
    { command: 'wg genkey | <%= config.bin %> pubkey', description: 'WireGuard keys are cunicu-ts keys' },
  ]

  async run(): Promise<{ type: 'key'; at: string; publicKey: string }> {
    await this.parse(Pubkey)
    try {
      const publicKey = await publicKeyOfStdin()
      this.log(publicKey)
      return { type: 'key', at: new Date().toISOString(), publicKey }
    } catch (err) {
      if (err instanceof UsageError) this.fail(err.message, ExitCode.Usage)
      throw err
    }
  }
}
