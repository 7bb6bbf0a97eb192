// The tests StrykerJS runs against each mutant (`npm run mutate`): the in-process unit tests of the files it
// mutates. The e2e tests (spawned CLIs, servers, network namespaces) take minutes per run and would make a
// mutation run take days on two cores; they are what `npm test` is for.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: [
      'test/keys.test.ts',
      'test/envelope.test.ts',
      'test/message-json.test.ts',
      'test/emitter.test.ts',
      'test/subscriber-queue.test.ts',
      // In the process and fast: the one STUN/TURN URL parser and signal --relay's rules.
      'test/ice-server-url.test.ts',
      'test/unit/**/*.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    maxWorkers: 1,
  },
})
