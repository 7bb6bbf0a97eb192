// Types of bench/latency.js for the TypeScript tests that call it (test/bench-smoke.test.ts).
export interface LatencyRun {
  rate: number
  warmupMs: number
  measureMs: number
}
export interface LatencyRow {
  id: string
  name: string
  value: number
  reference: number
  ratio?: number | string
}
export declare const LATENCY_LIMIT_FLAGS: string[]
export declare function latency(options: {
  cfg: { runs: LatencyRun[]; lateMs: number; messageBytes: number; limitFlags?: string[] }
  row: (row: LatencyRow) => void
  log: (line: string) => void
  notes: string[]
}): Promise<void>
