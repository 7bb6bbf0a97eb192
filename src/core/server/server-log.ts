// What the server writes to its operator's log. The shape is pino's (`log.info({ ...fields }, 'message')`),
// so `signal` hands in a pino logger, while the core depends on no logging library and tests can collect
// lines in an array. Fields never carry key material: public keys appear shortened (shortKey), private
// keys never.
export interface ServerLog {
  debug(fields: Record<string, unknown>, message: string): void
  info(fields: Record<string, unknown>, message: string): void
  warn(fields: Record<string, unknown>, message: string): void
  error(fields: Record<string, unknown>, message: string): void
}

const ignore = (): void => {}

export const silentLog: ServerLog = { debug: ignore, info: ignore, warn: ignore, error: ignore }

/** The first 8 base64 characters of a public key and an ellipsis: enough to tell peers apart, never a whole key. */
export function shortKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64').slice(0, 8) + '…'
}
