// werift-ice requires `multicast-dns` (and through it dns-packet, thunky) at load time, although it calls
// it only to resolve a peer's `.local` (mDNS) candidate, which cunīcu peers do not send. So when werift-ice
// asks for it, it gets a stand-in that loads the real module on its first call: a session that never
// meets an mDNS candidate never loads it (test/startup.test.ts checks). In dist/bundle/cli.cjs werift-ice is
// bundled and multicast-dns is not, so there the request comes from the bundle itself.
import Module from 'node:module'
import { sep } from 'node:path'

const BUNDLE_SUFFIX = `${sep}bundle${sep}cli.cjs`

type Load = (request: string, parent: { filename?: string | null } | undefined, isMain: boolean) => unknown
const loader = Module as unknown as { _load: Load & { mdnsDeferred?: true } }

export function deferMulticastDns(): void {
  const load = loader._load
  if (load.mdnsDeferred) return
  const deferred: Load & { mdnsDeferred?: true } = function (this: unknown, request, parent, isMain) {
    const from = parent?.filename ?? ''
    if (request !== 'multicast-dns' || !(from.includes(`${sep}werift-ice${sep}`) || from.endsWith(BUNDLE_SUFFIX))) return load.call(this, request, parent, isMain)
    let real: ((...args: unknown[]) => unknown) | undefined
    return function multicastDns(...args: unknown[]) {
      real ??= load.call(loader, request, parent, isMain) as (...args: unknown[]) => unknown
      return real(...args)
    }
  }
  deferred.mdnsDeferred = true
  loader._load = deferred
}
