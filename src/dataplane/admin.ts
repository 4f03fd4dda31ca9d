/**
 * The proxy's admin endpoint (Istio's port 15000): readiness, identity and a config dump. It
 * binds to loopback only — never configurable to anything else — because it reveals the
 * proxy's whole configuration.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Sidecar } from './sidecar.js';

export const ADMIN_HOST = '127.0.0.1';

export interface AdminStatus {
  /** Connected to the control plane right now (false while it is unreachable: fail static). */
  connected: () => boolean;
}

export class AdminServer {
  private readonly server: http.Server;

  constructor(sidecar: () => Sidecar | undefined, status: AdminStatus) {
    this.server = http.createServer((req, res) => {
      const send = (code: number, body: unknown): void => {
        res.writeHead(code, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' });
        res.end(typeof body === 'string' ? `${body}\n` : `${JSON.stringify(body, null, 2)}\n`);
      };
      if (req.method !== 'GET') return send(405, 'method not allowed');
      const current = sidecar();
      const path = (req.url ?? '/').split('?')[0];
      switch (path) {
        case '/ready':
        case '/healthz/ready':
          return current?.ready ? send(200, 'ready') : send(503, 'not ready');
        case '/identity': {
          if (!current) return send(503, 'no identity yet');
          const svid = current.identity;
          return send(200, { spiffeId: svid.id.toString(), serial: svid.leaf.serialNumber, notBefore: svid.notBefore.toISOString(), notAfter: svid.notAfter.toISOString() });
        }
        case '/config_dump':
          return current ? send(200, { ...current.configDump(), connected: status.connected(), listening: current.listening }) : send(503, 'no config yet');
        case '/stats':
          return current ? send(200, { liveConnections: current.liveConnections, versions: current.versions, connected: status.connected() }) : send(503, 'not started');
        default:
          return send(404, 'endpoints: /ready /healthz/ready /identity /config_dump /stats');
      }
    });
  }

  async listen(port: number): Promise<number> {
    this.server.listen(port, ADMIN_HOST);
    await once(this.server, 'listening');
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
