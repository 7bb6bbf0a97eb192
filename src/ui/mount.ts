// Mounts a live view; the returned function lets the last batched events render, then unmounts.
import type { ReactElement } from 'react'
import { render } from 'ink'
import { FRAME_MS } from './use-events.js'

export function mount(element: ReactElement): () => Promise<void> {
  const app = render(element)
  return async () => {
    await new Promise((resolve) => setTimeout(resolve, FRAME_MS * 2))
    app.unmount()
    await app.waitUntilExit()
  }
}
