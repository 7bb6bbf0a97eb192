// One reader of grpc:// backend URLs (backends/grpc-target.ts), used by the backend, the relay fetch and
// `status` alike: Go's strconv.ParseBool spellings, unknown parameters named, and the channel credentials.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BackendError } from '../../src/core/backend.js'
import { grpcChannelCredentials, parseGrpcTarget } from '../../src/core/backends/grpc-target.js'

const target = (text: string) => parseGrpcTarget(new URL(text))

describe('parseGrpcTarget', () => {
  it('names the server without its query and keeps HOST:PORT for the channel', () => {
    expect(target('grpc://signal.example.net:443?skip_verify=1')).toEqual({ name: 'grpc://signal.example.net:443', address: 'signal.example.net:443', tls: 'skip-verify' })
    expect(target('grpc://[::1]:8080')).toEqual({ name: 'grpc://[::1]:8080', address: '[::1]:8080', tls: 'verify' })
  })

  it.each(['1', 't', 'T', 'TRUE', 'true', 'True'])('insecure=%s is plain text (Go\'s true)', (value) => {
    expect(target(`grpc://127.0.0.1:1?insecure=${value}`).tls).toBe('insecure')
    expect(target(`grpc://127.0.0.1:1?skip_verify=${value}`).tls).toBe('skip-verify')
  })

  it.each(['0', 'f', 'F', 'FALSE', 'false', 'False'])('insecure=%s is verified TLS (Go\'s false)', (value) => {
    expect(target(`grpc://127.0.0.1:1?insecure=${value}`).tls).toBe('verify')
    expect(target(`grpc://127.0.0.1:1?skip_verify=${value}`).tls).toBe('verify')
  })

  it('insecure wins over skip_verify; without either, TLS is verified', () => {
    expect(target('grpc://127.0.0.1:1?insecure=1&skip_verify=1').tls).toBe('insecure')
    expect(target('grpc://127.0.0.1:1?insecure=0&skip_verify=1').tls).toBe('skip-verify')
    expect(target('grpc://127.0.0.1:1').tls).toBe('verify')
  })

  it.each(['yes', 'on', 'tRuE', '', '2'])('insecure=%s is refused, naming the value and the spellings', (value) => {
    expect(() => target(`grpc://127.0.0.1:1?insecure=${value}`)).toThrow(
      new BackendError(`backend grpc://127.0.0.1:1?insecure=${value}: insecure=${value} is not true or false (1, t, true, 0, f, false)`),
    )
  })

  it('an unknown parameter is refused by name (a typo never falls back to TLS)', () => {
    expect(() => target('grpc://127.0.0.1:1?insecur=true')).toThrow(
      new BackendError('backend grpc://127.0.0.1:1?insecur=true: unknown parameter insecur= (expected insecure=, skip_verify=, auth_key=)'),
    )
  })

  it('keeps ?auth_key= as given, and only when given', () => {
    expect(target('grpc://127.0.0.1:1?auth_key=abc%2B').authKey).toBe('abc+')
    expect(target('grpc://127.0.0.1:1')).not.toHaveProperty('authKey')
  })

  it('refuses other schemes and a URL without HOST:PORT', () => {
    expect(() => target('multicast://239.0.0.1:1')).toThrow(new BackendError('backend multicast://239.0.0.1:1: not a grpc:// URL'))
    expect(() => target('grpc:?insecure=1')).toThrow(/missing HOST:PORT/)
  })
})

describe('grpcChannelCredentials', () => {
  it('plain text only for insecure; TLS otherwise', () => {
    expect(grpcChannelCredentials(target('grpc://127.0.0.1:1?insecure=1'))._isSecure()).toBe(false)
    expect(grpcChannelCredentials(target('grpc://127.0.0.1:1'))._isSecure()).toBe(true)
    expect(grpcChannelCredentials(target('grpc://127.0.0.1:1?skip_verify=1'))._isSecure()).toBe(true)
  })

  it('an unreadable CA file is a BackendError naming it; plain text never reads it', () => {
    const missing = join(mkdtempSync(join(tmpdir(), 'cunicu-ts-ca-')), 'missing.pem')
    expect(() => grpcChannelCredentials(target('grpc://h:1'), missing)).toThrow(BackendError)
    expect(() => grpcChannelCredentials(target('grpc://h:1'), missing)).toThrow(`backend grpc://h:1: cannot read CA file ${missing}`)
    expect(() => grpcChannelCredentials(target('grpc://h:1?skip_verify=1'), missing)).toThrow(BackendError)
    expect(grpcChannelCredentials(target('grpc://h:1?insecure=1'), missing)._isSecure()).toBe(false)
  })

  it('a readable CA file becomes the roots', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cunicu-ts-ca-')), 'ca.pem')
    writeFileSync(file, 'not a certificate, but readable')
    // grpc-js parses the roots lazily; reading the file is what this module does.
    expect(() => grpcChannelCredentials(target('grpc://h:1'), file)).not.toThrow()
  })
})
