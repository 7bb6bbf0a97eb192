// Loaded with --require: records every file CommonJS require() resolves into $TRACE_IMPORTS_FILE (the
// ESM hook, trace-imports.mjs, does not see what a CommonJS package requires inside itself).
const Module = require('node:module')
const { appendFileSync } = require('node:fs')

const resolve = Module._resolveFilename
Module._resolveFilename = function (...args) {
  const file = resolve.apply(this, args)
  if (process.env.TRACE_IMPORTS_FILE) appendFileSync(process.env.TRACE_IMPORTS_FILE, file + '\n')
  return file
}
