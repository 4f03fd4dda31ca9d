/**
 * A minimal Prometheus scrape endpoint: `GET /metrics` and Istio's `/stats/prometheus` serve the
 * text exposition of one or more registries (a proxy's, plus e.g. process metrics). Plain HTTP
 * like Istio's 15020/15014; bind it to loopback or a scrape network as the operator decides.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export const METRICS_PATHS: readonly string[] = ['/metrics', '/stats/prometheus'];

export interface MetricsServerOptions {
  readonly host: string;
  /** 0 picks a free port; read it back from {@link MetricsServer.port}. */
  readonly port: number;
  readonly registries: readonly Registry[];
}

/** Text exposition of several registries; a metric name in two of them would be invalid output. */
export async function exposeRegistries(registries: readonly Registry[]): Promise<{ contentType: string; body: string }> {
  const bodies = await Promise.all(registries.map((r) => r.metrics()));
  const contentType = registries[0]?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8';
  return { contentType, body: bodies.filter((b) => b !== '').join('\n') };
}

function assertDistinctNames(registries: readonly Registry[]): void {
  const seen = new Set<string>();
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray()) {
      if (seen.has(metric.name)) throw new Error(`metric ${metric.name} is registered in two registries served together; give each proxy its own server`);
      seen.add(metric.name);
    }
  }
}

export class MetricsServer {
  private constructor(
    private readonly server: http.Server,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(options: MetricsServerOptions): Promise<MetricsServer> {
    assertDistinctNames(options.registries);
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (!METRICS_PATHS.includes(path)) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
      }
      exposeRegistries(options.registries).then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        // A failing collect() must not take the server down; the scrape shows as failed instead.
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    });
    // Scrapers keep connections alive; do not let them hold close() open.
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    return new MetricsServer(server, options.host, address.port);
  }

  /** `http://host:port/metrics`, with IPv6 hosts bracketed. */
  url(path = '/metrics'): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `http://${host}:${this.port}${path}`;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
    this.server.closeAllConnections();
    await closed;
  }
}
