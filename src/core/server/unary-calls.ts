// Unary calls (Publish, GetBuildInfo, health, reflection) from their headers to their status, counted by a
// grpc-js server interceptor: a drain waits until none is in flight before it ends the streams, so a
// publish that reached the server before GOAWAY is answered, not cut.
import { ResponderBuilder, ServerInterceptingCall, ServerListenerBuilder, type ServerInterceptor } from '@grpc/grpc-js'

export class UnaryCallTracker {
  #inFlight = 0

  get inFlight(): number {
    return this.#inFlight
  }

  readonly interceptor: ServerInterceptor = (method, call) => {
    if (method.responseStream) return new ServerInterceptingCall(call)
    this.#inFlight++
    let ended = false
    const end = (): void => {
      if (ended) return
      ended = true
      this.#inFlight--
    }
    return new ServerInterceptingCall(
      call,
      new ResponderBuilder()
        .withStart((next) => next(new ServerListenerBuilder().withOnCancel(end).build()))
        .withSendStatus((statusObject, next) => {
          end()
          next(statusObject)
        })
        .build(),
    )
  }
}
