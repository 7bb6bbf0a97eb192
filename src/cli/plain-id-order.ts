// oclif's Config.load sorts the manifest's commands with String.prototype.localeCompare, and V8's first
// localeCompare in a process builds ICU's collator: ~4.5 ms of CPU on every start, for nothing else (no
// other call on a session's way to its first envelope). Command ids are lowercase ASCII words joined by
// ':', and for those ICU's root collation order is their code-point order (letters alphabetical, the
// separator before any letter, a prefix first). So while `run` goes on, a localeCompare of two such strings
// without locales or options compares code points; every other call goes to the original.
const PLAIN_ID = /^[a-z:]*$/

/** The order localeCompare gives two command ids, without ICU; undefined when either is no plain id. */
export function plainIdOrder(a: string, b: string): number | undefined {
  if (!PLAIN_ID.test(a) || !PLAIN_ID.test(b)) return undefined
  return a < b ? -1 : a > b ? 1 : 0
}

export async function withPlainIdOrder<T>(run: () => Promise<T>): Promise<T> {
  const original = String.prototype.localeCompare
  // eslint-disable-next-line no-extend-native -- restored in finally; same results for every caller (see above)
  String.prototype.localeCompare = function (this: string, that: string, ...rest: unknown[]): number {
    const order = rest.length === 0 && typeof that === 'string' ? plainIdOrder(String(this), that) : undefined
    return order ?? original.call(this, that, ...(rest as [string | string[] | undefined, Intl.CollatorOptions | undefined]))
  }
  try {
    return await run()
  } finally {
    String.prototype.localeCompare = original
  }
}
