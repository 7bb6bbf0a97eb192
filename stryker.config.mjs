// Mutation testing (`npm run mutate`, not part of `npm test` or .ci/run): StrykerJS changes one thing in the
// code at a time and checks that some test fails. Scope: src/core without session/ (timing-driven state machine,
// covered by e2e tests) and server/cluster/ (needs Redis). Narrow a run with
// `npm run mutate -- --mutate src/core/keys.ts`; `incremental` reuses earlier results for unchanged code and tests.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  mutate: [
    'src/core/**/*.ts',
    '!src/core/session/**',
    '!src/core/server/cluster/**',
    // Generated-code adapters and types only.
    '!src/core/**/*.d.ts',
  ],
  coverageAnalysis: 'perTest',
  // Two cores shared with other work: one mutant at a time.
  concurrency: 1,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  timeoutMS: 10_000,
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
}
