// werift-ice 0.2.3 refreshes a TURN allocation in a loop that sleeps with timers/promises' setTimeout
// (5/6 of the allocation lifetime, ~8 min) and only checks for close() after waking: a closed agent
// keeps the process alive for minutes. This replaces that loop, per TurnProtocol, with a timer close()
// clears. Same requests as werift's (REFRESH with the granted LIFETIME, through requestWithRetry).
import { classes, Message, methods, TurnProtocol } from 'werift-ice'

const TIMER = Symbol('cunicu-ts turn refresh timer')
const CLOSED = Symbol('cunicu-ts turn closed')

interface Patched {
  refresh: (exp: number) => void
  requestWithRetry: TurnProtocol['requestWithRetry']
  server: TurnProtocol['server']
  [TIMER]?: NodeJS.Timeout
  [CLOSED]?: boolean
}

let installed = false

export function installTurnRefreshFix(): void {
  if (installed) return
  installed = true
  const proto = TurnProtocol.prototype as unknown as { connectionMade: (this: Patched) => Promise<void>; close: (this: Patched) => Promise<void> }
  const connectionMade = proto.connectionMade
  const close = proto.close
  proto.connectionMade = function (this: Patched) {
    // connectionMade() calls this.refresh(lifetime) once the allocation succeeded.
    this.refresh = (exp: number) => schedule(this, exp)
    return connectionMade.call(this)
  }
  proto.close = function (this: Patched) {
    this[CLOSED] = true
    clearTimeout(this[TIMER])
    return close.call(this)
  }
}

function schedule(turn: Patched, exp: number): void {
  if (turn[CLOSED] || !(exp > 0)) return
  clearTimeout(turn[TIMER])
  turn[TIMER] = setTimeout(() => void refreshOnce(turn, exp), (5 / 6) * exp * 1000)
}

async function refreshOnce(turn: Patched, exp: number): Promise<void> {
  if (turn[CLOSED]) return
  let next = exp
  try {
    const request = new Message(methods.REFRESH, classes.REQUEST)
    request.setAttribute('LIFETIME', exp)
    const [response] = await turn.requestWithRetry(request, turn.server)
    next = Number(response.getAttributeValue('LIFETIME')) || exp
  } catch {
    // As werift: a failed refresh is retried at the next interval (the allocation may still be alive).
  }
  schedule(turn, next)
}
