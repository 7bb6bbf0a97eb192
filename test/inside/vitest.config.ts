// Tests that must run inside a network namespace made by an outer test (they send real datagrams):
// never picked up by the main run, only started by that outer test with this config.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/inside/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    maxWorkers: 1,
  },
})
