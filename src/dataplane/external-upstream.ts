/**
 * Connections to destinations outside the mesh: MESH_EXTERNAL ServiceEntries and, under
 * ALLOW_ANY, unregistered hosts passed through. No mesh identity is presented or required:
 * plain HTTP, TLS origination with the system's CAs (DestinationRule `tls.mode: SIMPLE`), or a
 * raw TCP connection for traffic the application encrypts itself.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { L7Request, L7Response } from './l7/types.js';
import { agentOptions, type ConnectionLimits, DEFAULT_CONNECT_TIMEOUT_MS, limitRequestsPerSocket, limitsKey } from './l7/pool-limits.js';
import { sendHttp1 } from './l7/upstream.js';

export interface ExternalDestination {
  /** Host name (resolved by DNS at connect time) or address. */
  host: string;
  port: number;
  tls: 'DISABLE' | 'SIMPLE';
  /** Server name to send and verify under SIMPLE (default: `host`). */
  sni?: string;
  connectTimeoutMs?: number;
  /** Idle timeout and requests per connection from the cluster's connectionPool. */
  limits?: ConnectionLimits;
}

export class ExternalUpstream {
  private readonly agents = new Map<string, http.Agent>();

  sendHttp(request: L7Request, destination: ExternalDestination): Promise<L7Response> {
    const secure = destination.tls === 'SIMPLE';
    const key = `${destination.host}:${destination.port}|${secure ? `tls:${destination.sni ?? destination.host}` : 'plain'}|${destination.connectTimeoutMs ?? ''}|${limitsKey(destination.limits)}`;
    let agent = this.agents.get(key);
    if (!agent) {
      const options = { keepAlive: true, scheduling: 'lifo' as const, ...agentOptions(destination.limits) };
      agent = secure ? new https.Agent({ ...options, servername: destination.sni ?? destination.host }) : new http.Agent(options);
      limitRequestsPerSocket(agent, destination.limits);
      this.agents.set(key, agent);
    }
    return sendHttp1(request, { host: destination.host, port: destination.port, agent, secure, connectTimeoutMs: destination.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
  }

  connectTcp(destination: Pick<ExternalDestination, 'host' | 'port' | 'connectTimeoutMs'>): net.Socket {
    const socket = net.connect({ host: destination.host, port: destination.port, noDelay: true });
    const timeout = destination.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const timer = setTimeout(() => socket.destroy(new Error(`connect timeout after ${timeout} ms`)), timeout);
    socket.once('connect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return socket;
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
