// The namespace tests (NAT, WireGuard over NAT, multicast) fail rather than skip under CI when they cannot
// run; only CUNICU_TEST_SKIP_NETNS=1 skips them there.
import { describe, expect, it } from 'vitest'
import { netnsGate, requireNetns, SKIP_NETNS_ENV } from '../netns/bed.js'

const root = { ok: true, reason: '' }
const noRoot = { ok: false, reason: 'needs root' }

describe('netnsGate', () => {
  it('runs wherever the privilege is there, whatever the variables say', () => {
    for (const env of [{}, { CI: 'true' }, { [SKIP_NETNS_ENV]: '1' }]) expect(netnsGate(root, env)).toEqual({ skip: false, reason: '' })
  })

  it('without the privilege under CI: runs, so the suite fails with the reason', () => {
    for (const CI of ['true', '1', 'yes']) {
      const gate = netnsGate(noRoot, { CI })
      expect(gate.skip, CI).toBe(false)
      expect(gate.reason).toBe(`needs root; under CI these tests fail rather than skip unless ${SKIP_NETNS_ENV}=1`)
    }
    expect(() => requireNetns(noRoot)).toThrow(`needs root; set ${SKIP_NETNS_ENV}=1 to skip the network-namespace tests`)
    expect(() => requireNetns(root)).not.toThrow()
  })

  it('without the privilege: skipped with CUNICU_TEST_SKIP_NETNS=1 (CI or not), or outside CI', () => {
    expect(netnsGate(noRoot, { CI: 'true', [SKIP_NETNS_ENV]: '1' })).toEqual({ skip: true, reason: `needs root (${SKIP_NETNS_ENV}=1)` })
    for (const env of [{}, { CI: '' }, { CI: 'false' }, { CI: '0' }]) expect(netnsGate(noRoot, env), JSON.stringify(env)).toEqual({ skip: true, reason: 'needs root (under CI they would fail instead)' })
    // Only "1" opts out: a typo must not turn CI's failure into a skip.
    expect(netnsGate(noRoot, { CI: 'true', [SKIP_NETNS_ENV]: 'yes' }).skip).toBe(false)
  })
})
