// Bundles the commands a user runs to reach a peer into dist/bundle/cli.cjs (see src/cli/bundle-entry.ts and
// bundle-loader.ts): one file whose compiled code V8 caches, instead of ~400 ES modules resolved and
// compiled on every start. Runs after tsc, from dist/.
import { build } from 'esbuild'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { BUNDLE_IMPORT } = await import(pathToFileURL(join(root, 'dist', 'cli', 'bundle-loader.js')).href)
const outdir = join(root, 'dist', 'bundle')
const bundleFile = join(outdir, 'cli.cjs')
rmSync(outdir, { recursive: true, force: true })

/** grpc-js's `net` is dist/cli/grpc-net.js (an isIPv6 that skips Node's regular expression for IPv4, see there). */
const GRPC_JS_DIR = `${sep}node_modules${sep}@grpc${sep}grpc-js${sep}`
const grpcNet = {
  name: 'grpc-net',
  setup(build) {
    build.onResolve({ filter: /^(node:)?net$/ }, (args) => (args.importer.includes(GRPC_JS_DIR) ? { path: join(root, 'dist', 'cli', 'grpc-net.js') } : undefined))
  },
}

/** One CommonJS file for Node 20 (both outputs: the bundle and its loader). */
const CJS_FOR_NODE = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' }

const result = await build({
  ...CJS_FOR_NODE,
  entryPoints: [join(root, 'dist', 'cli', 'bundle-entry.js')],
  outfile: bundleFile,
  metafile: true,
  plugins: [grpcNet],
  // Less text to read and scan on every start (2.3 → 1.5 MB; READABLE=1 node scripts/bundle.js keeps it readable,
  // e.g. to read a CPU profile). Identifiers are not minified, so stack traces
  // still name functions; `keepNames` (~4 ms per start) is not needed for that, and no code here reads a
  // class's `.name` (our errors set `name` themselves).
  minifyWhitespace: !process.env.READABLE,
  minifySyntax: !process.env.READABLE,
  // import.meta.url in a CommonJS bundle: the bundle's own URL (package-root.ts walks up from it).
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  external: [
    // Ink and React are ES modules with top-level await: the commands import them only for a terminal view,
    // from dist/ui (the path '../ui/…' is the same from dist/commands, dist/cli and dist/bundle).
    '../ui/*',
    // Loaded on demand from node_modules: mDNS only for a `.local` candidate (cli/defer-multicast-dns.ts),
    // oclif's TypeScript support never in a built package, the health client reads its .proto beside itself.
    'multicast-dns',
    'typescript',
    'grpc-health-check',
    '@grpc/proto-loader',
    // Server-only packages (demo's embedded server, never a peer): loaded from node_modules when a server
    // starts. pino's transports run in worker threads that load their files by path.
    'prom-client',
    'pino',
    'pino-pretty',
    '@grpc/reflection',
  ],
})

// The loader itself, as CommonJS beside the bundle: bin/run.js is CommonJS and starts it without Node's ES
// module loader (~6 ms of every start).
await build({ ...CJS_FOR_NODE, entryPoints: [join(root, 'dist', 'cli', 'bundle-loader.js')], outfile: join(outdir, 'loader.cjs') })

// Every dynamic import() in the bundle (Ink views, grpc-health-check, and oclif's own module loading) becomes
// a call of the loader's import function (BUNDLE_IMPORT in src/cli/bundle-loader.ts): the vm.Script that runs
// the bundle has no import() of its own. A call is `import(` not preceded by a name character, a dot or a
// quote (the text "import()" in an error message stays); the UI imports must have been found.
const DYNAMIC_IMPORT = /(?<![\w$.'"`])import\(/g
let code = readFileSync(bundleFile, 'utf8')
const calls = code.match(DYNAMIC_IMPORT)?.length ?? 0
code = code.replace(DYNAMIC_IMPORT, `${BUNDLE_IMPORT}(`)
for (const view of Object.values(result.metafile.outputs)[0].imports.filter((i) => i.kind === 'dynamic-import')) {
  if (!code.includes(`${BUNDLE_IMPORT}(${JSON.stringify(view.path)})`)) throw new Error(`bundle: the dynamic import of ${view.path} was not rewritten`)
}
if (calls === 0) throw new Error('bundle: no dynamic import found to rewrite')
// All ASCII, so the loader reads it as latin1: V8 then holds a one-byte string and no UTF-8 decoding of the
// whole file runs on every start (~2 ms of CPU). esbuild escapes non-ASCII text in strings and templates but
// leaves it in regular expression literals (ansis: /[\x1b\x9b]…/), where a \u escape means the same.
code = code.replace(/[^\x00-\x7f]/gu, (c) => c.split('').map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''))
writeFileSync(bundleFile, code, 'latin1')

// The code cache: V8's compiled code of everything one `demo` uses (the peer's path: oclif, keys, the gRPC
// client, sessions, ICE; and the embedded server), written by the bundle loader when the run ends.
const demo = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), 'demo', '--json', '--timeout', '20'], {
  env: { ...process.env, CUNICU_CODE_CACHE: 'write' },
  encoding: 'utf8',
  timeout: 60_000,
})
if (demo.status !== 0 || !existsSync(join(outdir, 'cli.cjs.cache'))) {
  // Not fatal: the first run writes the cache instead. Said, so a slow start is not a mystery.
  process.stderr.write(`bundle: no code cache written (demo exited ${demo.status ?? demo.signal}: ${(demo.stderr || demo.error?.message || '').trim().split('\n').pop()})\n`)
}
