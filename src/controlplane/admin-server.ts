/**
 * The control plane's admin API: JSON over HTTP, bound to loopback only (it shows every
 * proxy's identity and the config's errors). `trellis status` and `trellis proxy-status` read it.
 *
 *   GET /status        config health: live version, last change, errors with file:line
 *   GET /debug/syncz   every connected proxy and its per-type sync state
 *   GET /healthz/ready 200 once the control plane serves discovery
 *   GET /metrics       Prometheus metrics (also /stats/prometheus), like istiod's 15014
 *   GET /audit         the mesh's audit records as newline-delimited JSON (see AuditHub.serve)
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { errorMessage } from '../api/errors.js';

export interface AdminRoutes {
  status: () => unknown;
  syncz: () => unknown;
  ready: () => boolean;
  /** Prometheus text exposition (GET /metrics, /stats/prometheus), as istiod serves on 15014. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** A streaming endpoint: writes the response itself. */
  audit?: (req: IncomingMessage, res: ServerResponse) => void;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

export class AdminServer {
  private constructor(private readonly server: Server) {}

  static async start(options: { host: string; port: number; routes: AdminRoutes; logger: Logger }): Promise<AdminServer> {
    if (!LOOPBACK.has(options.host) && options.host !== 'localhost') {
      throw new Error(`the admin API listens on loopback only; ${options.host} is not a loopback address`);
    }
    const server = createServer((req, res) => handle(req, res, options.routes, options.logger));
    server.listen(options.port, options.host);
    await once(server, 'listening');
    return new AdminServer(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function handle(req: IncomingMessage, res: ServerResponse, routes: AdminRoutes, logger: Logger): void {
  // Defense in depth: the socket is loopback-bound, but refuse anything else outright.
  if (!LOOPBACK.has(req.socket.remoteAddress ?? '')) return send(res, 403, { error: 'the admin API is available on loopback only' });
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'only GET is supported' });
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  try {
    switch (path) {
      case '/status':
        return send(res, 200, routes.status());
      case '/debug/syncz':
        return send(res, 200, routes.syncz());
      case '/healthz/ready':
        return routes.ready() ? send(res, 200, { ready: true }) : send(res, 503, { ready: false });
      case '/metrics':
      case '/stats/prometheus':
        if (routes.metrics) return sendMetrics(res, routes.metrics, logger);
        return send(res, 404, { error: 'metrics are not enabled' });
      case '/audit':
        if (routes.audit) return routes.audit(req, res);
        return send(res, 404, { error: 'this control plane has no audit stream' });
      default:
        return send(res, 404, { error: `no such endpoint ${path}; try /status, /debug/syncz, /healthz/ready or /metrics` });
    }
  } catch (err) {
    logger.error({ event: 'admin.error', path, err: errorMessage(err) }, 'admin request failed');
    return send(res, 500, { error: 'internal error; see the control plane log' });
  }
}

function sendMetrics(res: ServerResponse, metrics: NonNullable<AdminRoutes['metrics']>, logger: Logger): void {
  metrics().then(
    ({ contentType, body }) => {
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(res.req.method === 'HEAD' ? undefined : body);
    },
    (err: unknown) => {
      logger.error({ event: 'admin.error', path: '/metrics', err: errorMessage(err) }, 'metrics collection failed');
      send(res, 500, { error: 'metrics collection failed; see the control plane log' });
    },
  );
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
