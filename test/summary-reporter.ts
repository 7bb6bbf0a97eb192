// Prints the plain closing line "N passed, N failed, N skipped" that CI reads. It must never say
// "0 failed" when vitest fails: a failing beforeAll leaves its tests unrun (vitest lists them as skipped), a
// failing afterAll fails no test at all, a module that cannot load has no tests, and an unhandled error
// fails the run without belonging to any test. Each of those counts as failed here.
import type { Reporter, SerializedError, TestCase, TestModule } from 'vitest/node'

export interface Summary {
  passed: number
  failed: number
  skipped: number
}

/** A test that was meant to run (not `.skip`/`.todo`) but has no outcome of its own. */
function unrun(test: TestCase): boolean {
  const state = test.result().state
  return (state === 'skipped' || state === 'pending') && test.options.mode !== 'skip' && test.options.mode !== 'todo'
}

export function summarize(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError> = []): Summary {
  const summary: Summary = { passed: 0, failed: 0, skipped: 0 }
  for (const module of modules) {
    // A failed hook or collection fails the tests it kept from running; innermost scope first (pre-order
    // reversed puts every suite before its ancestors), so a test is charged once.
    const keptFromRunning = new Set<TestCase>()
    for (const scope of [...[...module.children.allSuites()].reverse(), module]) {
      if (scope.errors().length === 0) continue
      const kept = [...scope.children.allTests()].filter((test) => unrun(test) && !keptFromRunning.has(test))
      kept.forEach((test) => keptFromRunning.add(test))
      // afterAll failures, or a module that failed to load: no test to charge, still a failure.
      if (kept.length === 0) summary.failed++
    }
    for (const test of module.children.allTests()) {
      const state = test.result().state
      if (state === 'passed') summary.passed++
      else if (state === 'failed' || keptFromRunning.has(test)) summary.failed++
      else summary.skipped++
    }
  }
  summary.failed += unhandledErrors.length
  return summary
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const { passed, failed, skipped } = summarize(modules, unhandledErrors)
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}
