import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // e2e tests spawn the CLI and servers; two cores leave no room for wide parallelism.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
})
