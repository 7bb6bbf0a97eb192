// GetBuildInfo's answer. os/arch use Go's GOOS/GOARCH spelling, because cunīcu clients show this
// message next to answers from Go servers and "x64" vs "amd64" would read as a different build.
import { BuildInfo } from '../../gen/common.js'

const GO_OS: Partial<Record<NodeJS.Platform, string>> = { win32: 'windows', sunos: 'solaris' }
const GO_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', loong64: 'loong64', riscv64: 'riscv64', mips: 'mips', mipsel: 'mipsle' }

export function serverBuildInfo(version: string): BuildInfo {
  return BuildInfo.create({
    version,
    os: GO_OS[process.platform] ?? process.platform,
    arch: GO_ARCH[process.arch] ?? process.arch,
    builtBy: `cunicu-ts (node ${process.version})`,
  })
}
