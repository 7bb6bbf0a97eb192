// The --metrics listener: GET /metrics (Prometheus text format) and GET /healthz (200 while serving, 503
// while draining), on an HTTP port of its own so that it can stay off the public interface.
import { createServer, type Server } from 'node:http'
import type { ServerMetrics } from './metrics.js'

export class MetricsHttpServer {
  #closing: Promise<void> | undefined

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  static async start(host: string, port: number, metrics: ServerMetrics, serving: () => boolean): Promise<MetricsHttpServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end()
      } else if (path === '/metrics') {
        metrics.text().then(
          (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
          (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
        )
      } else if (path === '/healthz') {
        const ok = serving()
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'draining\n')
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n')
      }
    })
    // Scrapers keep connections alive; a drain must not wait for them.
    server.keepAliveTimeout = 5000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port }, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const bound = server.address()
    const address = typeof bound === 'object' && bound ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : `${host}:${port}`
    return new MetricsHttpServer(server, address)
  }

  close(): Promise<void> {
    this.#closing ??= new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
    return this.#closing
  }
}
