import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    // Run by test/multicast.test.ts inside a network namespace it creates, never on the host.
    exclude: ['test/inside/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // e2e tests spawn the CLI and servers and mostly wait on them (a suite run keeps the 2 cores ~40 % busy):
    // three files at a time cut .ci/run's test time from ~255 to ~160 s. Timing properties are checked
    // with margins that hold at that load (e.g. the 20-runs probe race, the relay's drain).
    maxWorkers: 3,
    reporters: ['default', './test/summary-reporter.ts'],
  },
})
