// One gRPC unary call with a deadline and an AbortSignal (nice-grpc's call context, once): aborting cancels
// the call at once, so Ctrl-C never waits for the deadline. Every unary call the client side makes
// (Publish, GetRelays, the health check and GetBuildInfo of `status`) goes through here.
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js'

/** Starts the call with its deadline and the callback to settle it; returns what can cancel it. */
export type UnaryStart<T> = (deadline: Date, callback: (err: ServiceError | null, response: T) => void) => { cancel(): void }

/**
 * Resolves with the response or rejects with the call's ServiceError (CANCELLED after an abort, then with
 * `signal.aborted` set: callers tell "aborted" from a server's cancel by the signal, never by the text).
 */
export function unaryCall<T>(start: UnaryStart<T>, timeoutMs: number, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) return reject(Object.assign(new Error('aborted before the call'), { code: grpcStatus.CANCELLED, details: 'aborted' }))
    const onAbort = (): void => call.cancel()
    const call = start(new Date(Date.now() + timeoutMs), (err, response) => {
      signal?.removeEventListener('abort', onAbort)
      if (err) reject(err)
      else resolve(response)
    })
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
