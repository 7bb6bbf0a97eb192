import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    // Run by test/multicast.test.ts inside a network namespace it creates, never on the host.
    exclude: ['test/inside/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // e2e tests spawn the CLI and servers; two cores leave no room for wide parallelism.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
})
