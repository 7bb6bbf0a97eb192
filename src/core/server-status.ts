// What `status` asks a signaling server: is it up (grpc.health.v1, the standard health service), what build
// is it (GetBuildInfo), and how long does a round trip take. A server without the health service (a cunīcu
// server) is judged by its GetBuildInfo answer alone.
import { makeClientConstructor, Metadata, status as grpcStatus, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js'
import { BackendError } from './backend.js'
import { parseBackendUrl } from './backends/index.js'
import { grpcChannelCredentials, parseGrpcTarget } from './backends/grpc-target.js'
import { unaryCall } from './backends/grpc-unary.js'
import type { BuildInfo } from '../gen/common.js'
import { SignalingClient, SignalingService } from '../gen/signaling/signaling.js'

/** "cunicu.signaling.Signaling", the name the server reports health under (without loading the server). */
const SIGNALING_SERVICE_NAME = SignalingService.getBuildInfo.path.split('/')[1]!

export type HealthState = 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' | 'SERVICE_UNKNOWN' | 'UNIMPLEMENTED'

export interface ServerStatus {
  /** The URL as given. */
  backend: string
  /** It answered at all. */
  reachable: boolean
  /** Serving, answering, and not reporting NOT_SERVING: what scripts test. */
  ok: boolean
  /** The health service's answer for the signaling service. */
  health?: HealthState
  /** Smallest of a few health round trips on the open connection, in ms. */
  rttMs?: number
  build?: { version: string; commit?: string; tag?: string; date?: string; os?: string; arch?: string }
  /** Why it is not ok. */
  reason?: string
}

export interface ProbeOptions {
  caFile?: string
  timeoutMs?: number
  /** Round trips measured after the connection is up; the smallest is reported. */
  samples?: number
  /** Aborting cancels the call in flight at once (the result says "aborted"). */
  signal?: AbortSignal
}

const HEALTH_STATES: Record<number, HealthState> = { 0: 'UNKNOWN', 1: 'SERVING', 2: 'NOT_SERVING', 3: 'SERVICE_UNKNOWN' }

interface HealthClient extends Client {
  check(req: { service: string }, options: { deadline: Date }, cb: (err: ServiceError | null, res: { status: number | string }) => void): { cancel(): void }
}

export async function probeServer(urlText: string, options: ProbeOptions = {}): Promise<ServerStatus> {
  const url = parseBackendUrl(urlText)
  if (url.protocol !== 'grpc:') throw new BackendError(`status asks a grpc:// server; "${urlText}" is ${url.protocol} (no server to ask)`)
  // The backend's own URL rules and credentials: `status -b URL` reaches a server exactly as `-b URL` does.
  const target = parseGrpcTarget(url)
  const creds = grpcChannelCredentials(target, options.caFile)
  const timeoutMs = options.timeoutMs ?? 5000
  const { service } = await import('grpc-health-check')
  const Health = makeClientConstructor(service, 'grpc.health.v1.Health') as unknown as new (address: string, c: ChannelCredentials) => HealthClient
  const health = new Health(target.address, creds)
  const signaling = new SignalingClient(target.address, creds)
  const { signal } = options
  const check = async (): Promise<HealthState> => {
    try {
      const res = await unaryCall<{ status: number | string }>((deadline, done) => health.check({ service: SIGNALING_SERVICE_NAME }, { deadline }, done), timeoutMs, signal)
      return typeof res.status === 'string' ? (res.status as HealthState) : (HEALTH_STATES[res.status] ?? 'UNKNOWN')
    } catch (err) {
      if ((err as ServiceError).code === grpcStatus.UNIMPLEMENTED) return 'UNIMPLEMENTED'
      throw err
    }
  }
  const result: ServerStatus = { backend: urlText, reachable: false, ok: false }
  try {
    result.health = await check()
    result.reachable = true
    const info = await unaryCall<BuildInfo>((deadline, done) => signaling.getBuildInfo({}, new Metadata(), { deadline }, done), timeoutMs, signal)
    result.build = buildSummary(info)
    let best = Infinity
    for (let i = 0; i < (options.samples ?? 3); i++) {
      const started = performance.now()
      await check()
      best = Math.min(best, performance.now() - started)
    }
    result.rttMs = Math.round(best * 1000) / 1000
    result.ok = result.health === 'SERVING' || result.health === 'UNIMPLEMENTED'
    if (!result.ok) result.reason = `health ${result.health}`
  } catch (err) {
    result.reason = signal?.aborted ? 'aborted' : describe(err as ServiceError, timeoutMs)
  } finally {
    health.close()
    signaling.close()
  }
  return result
}

function buildSummary(info: BuildInfo): NonNullable<ServerStatus['build']> {
  const date = info.date?.seconds ? new Date(info.date.seconds * 1000).toISOString() : undefined
  const set = (v: string) => v || undefined
  return Object.fromEntries(
    Object.entries({ version: info.version, commit: set(info.commit), tag: set(info.tag), date, os: set(info.os), arch: set(info.arch) }).filter(([, v]) => v !== undefined),
  ) as NonNullable<ServerStatus['build']>
}

/** By status code; the details only add the cause grpc-js reports. */
function describe(err: ServiceError, timeoutMs: number): string {
  const details = (err.details || err.message || '').split('\n')[0]!
  if (err.code === grpcStatus.DEADLINE_EXCEEDED) return `no answer within ${timeoutMs} ms`
  if (err.code === grpcStatus.UNAVAILABLE) return `unreachable: ${/ECONNREFUSED/.test(details) ? 'connection refused' : details}`
  return `${grpcStatus[err.code] ?? `status ${err.code}`}: ${details}`
}
