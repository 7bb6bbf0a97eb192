// One JSON object per line on stdout, written as events happen (scripts read them with `jq` or line by line).
export function writeNdjson(event: unknown): void {
  process.stdout.write(JSON.stringify(event) + '\n')
}
