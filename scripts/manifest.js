// Writes oclif.manifest.json so that `--help` and command lookup never import every command module.
import { writeFileSync } from 'node:fs'
import { Plugin } from '@oclif/core'

const plugin = new Plugin({ root: process.cwd(), type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true })
await plugin.load()
writeFileSync('oclif.manifest.json', JSON.stringify(plugin.manifest, null, 2) + '\n')
