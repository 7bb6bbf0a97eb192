#!/usr/bin/env -S node --import tsx
// Runs the TypeScript sources directly (development). The package directory is given, not this file:
// oclif would otherwise take bin/package.json (which makes bin/run.js CommonJS) for the package.json of the package.
import { fileURLToPath } from 'node:url'
import { execute } from '@oclif/core'

await execute({ development: true, dir: fileURLToPath(new URL('..', import.meta.url)) })
