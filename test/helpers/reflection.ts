// Asks a server's gRPC reflection service for its service names, as grpcurl's `list` does.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { credentials, loadPackageDefinition, type Client, type ClientDuplexStream } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { withTimeout } from './wait.js'

type ListResponse = { listServicesResponse?: { service: { name: string }[] } }

export async function listServices(address: string, version: 'v1' | 'v1alpha' = 'v1'): Promise<string[]> {
  const require = createRequire(import.meta.url)
  const protoRoot = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto')
  const pkg = loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [protoRoot] })
  const ns = (loadPackageDefinition(pkg).grpc as Record<string, Record<string, Record<string, unknown>>>).reflection![version]!
  const Reflection = ns.ServerReflection as new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client & {
    ServerReflectionInfo(): ClientDuplexStream<unknown, ListResponse>
  }
  const client = new Reflection(address, credentials.createInsecure())
  try {
    const call = client.ServerReflectionInfo()
    const names = await withTimeout(
      new Promise<string[]>((resolve, reject) => {
        call.on('data', (res: ListResponse) => resolve((res.listServicesResponse?.service ?? []).map((s) => s.name)))
        call.on('error', reject)
        call.write({ listServices: '*' })
      }),
      5000,
      'the reflection answer',
    )
    call.end()
    return names
  } finally {
    client.close()
  }
}
