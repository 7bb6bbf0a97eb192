// grpc://HOST:PORT (WIRE.md §6): one channel per backend, one Subscribe stream per key of ours. Unlike
// cunīcu's client, a stream that breaks after it was live is re-opened with capped, jittered back-off,
// and every publish has a deadline, so a lost server never makes a caller wait forever.
import {
  Metadata,
  status as grpcStatus,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js'
import { SignalingClient, type Envelope } from '../../gen/signaling/signaling.js'
import { AUTH_METADATA_KEY, authKeyFromTag, sealSubscribeProof } from '../auth-proof.js'
import { BackendError, type BackendFactory, type BackendOptions, type MessageHandler, type SubscriptionKey } from '../backend.js'
import { KeyError, PublicKey, type PrivateKey } from '../keys.js'
import { EnvelopeBackend } from './envelope-backend.js'
import { unaryCall } from './grpc-unary.js'
import { grpcChannelCredentials, grpcChannelOptions, parseGrpcTarget, RECONNECT_INITIAL_MS, RECONNECT_MAX_MS, type GrpcTls } from './grpc-target.js'

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
export const DEFAULT_PUBLISH_TIMEOUT_MS = 10_000

interface StreamState {
  key: PublicKey
  call?: ClientReadableStream<Envelope>
  /** Back-off before the next attempt. */
  timer?: NodeJS.Timeout
  /** Gives up on the current attempt when no sync envelope comes. */
  connectTimer?: NodeJS.Timeout
  /** Consecutive failed attempts since the stream was last live. */
  attempt: number
  /** Set by unsubscribe/close: an end we caused is not a reason to reconnect. */
  stopped: boolean
  /** The server's auth key was (re)fetched after a refusal since the stream was last live: do it once only. */
  authFetched?: boolean
}

export class GrpcBackend extends EnvelopeBackend {
  readonly type = 'grpc' as const
  /** "grpc://HOST:PORT" without the query, for messages. */
  readonly #name: string
  readonly #client: SignalingClient
  readonly #connectTimeoutMs: number
  readonly #publishTimeoutMs: number
  readonly #tls: GrpcTls
  readonly #streams = new Map<string, StreamState>()
  /** The key subscribe proofs are sealed to (`signal --require-auth`); undefined until known. */
  #authKey: PublicKey | undefined
  /** Given by the caller: never replaced by what a server announces. */
  readonly #authKeyPinned: boolean
  #authKeyFetch: Promise<boolean> | undefined
  /** The GetBuildInfo call behind #authKeyFetch: close() cancels it instead of waiting for its deadline. */
  #authKeyCall: { cancel(): void } | undefined
  /** Our private keys by public key, for sealing subscribe proofs. */
  readonly #privateKeys = new Map<string, PrivateKey>()

  constructor(url: URL, options: BackendOptions = {}) {
    super(String(url))
    const target = parseGrpcTarget(url)
    this.#name = target.name
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    this.#publishTimeoutMs = options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS
    this.#tls = target.tls
    const authKey = target.authKey ?? options.authServerKey
    try {
      this.#authKey = authKey ? PublicKey.parse(authKey, 'server auth key') : undefined
    } catch (err) {
      if (err instanceof KeyError) throw new BackendError(`backend ${this.#name}: ${err.message}`)
      throw err
    }
    this.#authKeyPinned = this.#authKey !== undefined
    this.#client = new SignalingClient(target.address, grpcChannelCredentials(target, options.caFile), grpcChannelOptions())
  }

  override async subscribe(key: SubscriptionKey, handler: MessageHandler, signal?: AbortSignal): Promise<void> {
    // The transport only sees our public key; a subscribe proof needs the private one.
    const id = key.ours.publicKey.toString()
    this.#privateKeys.set(id, key.ours)
    try {
      await super.subscribe(key, handler, signal)
    } catch (err) {
      if (!this.#streams.has(id)) this.#privateKeys.delete(id)
      throw err
    }
  }

  protected subscribeTransport(ours: PublicKey, signal?: AbortSignal): Promise<void> {
    const id = ours.toString()
    const state: StreamState = { key: ours, attempt: 0, stopped: false }
    this.#streams.set(id, state)
    return new Promise<void>((resolve, reject) => {
      const fail = (err: BackendError): void => {
        signal?.removeEventListener('abort', onAbort)
        this.#stop(state)
        if (this.#streams.get(id) === state) this.#streams.delete(id)
        reject(err)
      }
      const onAbort = (): void => fail(new BackendError(`subscribe on ${this.#name} was aborted`))
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#open(state, {
        live: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
        failed: (reason) => fail(new BackendError(`backend ${this.#name} ${reason}`)),
      })
    })
  }

  protected async unsubscribeTransport(ours: PublicKey): Promise<void> {
    const id = ours.toString()
    const state = this.#streams.get(id)
    if (!state) return
    this.#streams.delete(id)
    this.#privateKeys.delete(id)
    this.#stop(state)
  }

  protected async publishEnvelope(envelope: Envelope, signal?: AbortSignal): Promise<void> {
    try {
      await unaryCall((deadline, done) => this.#client.publish(envelope, new Metadata(), { deadline }, done), this.#publishTimeoutMs, signal)
    } catch (err) {
      if (signal?.aborted) throw new BackendError(`publish to ${this.#name} was aborted`)
      throw new BackendError(`publish to ${this.#name} failed: ${this.#describe(err as ServiceError, this.#publishTimeoutMs)}`)
    }
  }

  protected async closeTransport(): Promise<void> {
    for (const state of this.#streams.values()) this.#stop(state)
    this.#authKeyCall?.cancel()
    this.#streams.clear()
    this.#privateKeys.clear()
    this.#client.close()
  }

  /**
   * One attempt at a live stream. `live` runs once the sync envelope arrives; `failed` if the stream ends
   * or the connect timeout passes before that. After it was live, a break triggers #reconnect.
   */
  #open(state: StreamState, on: { live: () => void; failed: (reason: string) => void }): void {
    // A fresh proof per attempt: a re-subscribe after a reconnect must not look like a replay.
    const call = this.#client.subscribe({ key: state.key.bytes }, this.#subscribeMetadata(state.key))
    state.call = call
    let synced = false
    let ended = false
    const end = (): boolean => {
      if (ended) return false
      ended = true
      clearTimeout(state.connectTimer)
      if (state.call === call) state.call = undefined
      return true
    }
    state.connectTimer = setTimeout(() => {
      end()
      call.cancel()
      on.failed(`did not confirm the subscription within ${this.#connectTimeoutMs} ms${this.#hint()}`)
    }, this.#connectTimeoutMs)
    call.on('data', (envelope: Envelope) => {
      if (synced) return this.receive(envelope)
      // The first envelope only marks the subscription live (WIRE.md §5): never a message.
      synced = true
      clearTimeout(state.connectTimer)
      state.attempt = 0
      state.authFetched = false
      on.live()
    })
    const broken = (reason: string): void => {
      if (!end()) return
      const ours = state.stopped || this.closed
      if (synced) {
        if (!ours) this.#reconnect(state, reason)
      } else {
        // Settle even when we cancelled it ourselves, so a pending subscribe() never hangs.
        on.failed(ours ? 'was closed before the subscription was live' : reason)
      }
    }
    call.on('error', (err: ServiceError) => {
      const reason = this.#describe(err, this.#connectTimeoutMs)
      if (synced || err.code !== grpcStatus.PERMISSION_DENIED || this.#authKeyPinned || state.authFetched) return broken(reason)
      // A server that demands proofs (or has a new key since): learn its key once, then try again at once.
      if (!end()) return
      state.authFetched = true
      void this.#fetchAuthKey().then((learned) => {
        if (state.stopped || this.closed) on.failed('was closed before the subscription was live')
        else if (learned) this.#open(state, on)
        else on.failed(reason)
      })
    })
    call.on('end', () => broken('closed the subscription stream'))
  }

  /** Metadata of a Subscribe: a proof of holding `ours` once the server's auth key is known. */
  #subscribeMetadata(ours: PublicKey): Metadata {
    const metadata = new Metadata()
    const privateKey = this.#privateKeys.get(ours.toString())
    if (this.#authKey && privateKey) metadata.set(AUTH_METADATA_KEY, sealSubscribeProof(privateKey, this.#authKey))
    return metadata
  }

  /**
   * Asks GetBuildInfo for the key the server wants proofs sealed to (tag "auth-key:…"); true when that
   * is a key we did not use yet. Concurrent refusals share one request.
   */
  #fetchAuthKey(): Promise<boolean> {
    this.#authKeyFetch ??= new Promise<boolean>((resolve) => {
      this.#authKeyCall = this.#client.getBuildInfo({}, new Metadata(), { deadline: Date.now() + this.#connectTimeoutMs }, (err, info) => {
        this.#authKeyFetch = undefined
        this.#authKeyCall = undefined
        const key = err ? undefined : authKeyFromTag(info.tag)
        if (!key || (this.#authKey && key.equals(this.#authKey))) return resolve(false)
        this.#authKey = key
        resolve(true)
      })
    })
    return this.#authKeyFetch
  }

  #reconnect(state: StreamState, reason: string): void {
    if (state.stopped || this.closed) return
    state.attempt++
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_INITIAL_MS * 2 ** (state.attempt - 1))
    // ±25 % jitter, so many clients of one restarted server do not return in lockstep.
    const retryInMs = Math.round(Math.min(RECONNECT_MAX_MS, base * (0.75 + Math.random() * 0.5)))
    this.status.emit({ state: 'reconnecting', backend: this.url, reason: `${this.#name} ${reason}`, retryInMs })
    state.timer = setTimeout(() => {
      state.timer = undefined
      if (state.stopped || this.closed) return
      this.#open(state, {
        live: () => this.status.emit({ state: 'connected', backend: this.url }),
        failed: (why) => this.#reconnect(state, why),
      })
    }, retryInMs)
  }

  #stop(state: StreamState): void {
    state.stopped = true
    clearTimeout(state.timer)
    clearTimeout(state.connectTimer)
    state.timer = state.connectTimer = undefined
    state.call?.cancel()
    state.call = undefined
  }

  /** A status as a user can act on it: "unreachable: connection refused (is `cunicu-ts signal` running?)". */
  #describe(err: ServiceError, timeoutMs: number): string {
    const details = cleanDetails(err.details || err.message)
    if (err.code === grpcStatus.DEADLINE_EXCEEDED) return `did not answer within ${timeoutMs} ms${this.#hint()}`
    if (err.code === grpcStatus.UNAVAILABLE) {
      if (/ECONNREFUSED/.test(details)) return `unreachable: connection refused (is \`cunicu-ts signal\` running?)`
      if (/ENOTFOUND|EAI_AGAIN|Name resolution failed/.test(details)) return `unreachable: host name not found (${details})`
      if (/wrong version number|packet length too long|WRONG_VERSION_NUMBER/i.test(details)) {
        return 'unreachable: TLS handshake failed, the server answered in plain text (add ?insecure=true)'
      }
      if (/certificate|self.signed|CERT_/i.test(details)) {
        return `unreachable: TLS certificate rejected (${details}); pass a CA file, or ?skip_verify=true to skip verification`
      }
      return `unreachable: ${details}${this.#hint()}`
    }
    return `${grpcStatus[err.code] ?? `status ${err.code}`}: ${details}`
  }

  #hint(): string {
    return this.#tls === 'insecure'
      ? ' (is the server using TLS? then drop ?insecure=true)'
      : ' (is the server plain text? then add ?insecure=true)'
  }
}

/** grpc-js wraps the cause in "No connection established. Last error: Error: … (date). Resolution note: ". */
function cleanDetails(details: string): string {
  const cause = /Last error: (?:Error: )?([^\n]*?)\s*(?:\([0-9T:.\-]+Z\))?\s*\.?\s*(?:Resolution note:.*)?$/s.exec(details)?.[1]
  const text = (cause ?? details).split('\n')[0]!.trim()
  return text === 'Failed to connect' ? 'connection failed' : text
}
/** The registry's entry point (backends/index.ts). */
export const createBackend: BackendFactory = (url, options) => new GrpcBackend(url, options)
