/**
 * DestinationRule `connectionPool` settings that shape upstream connections rather than admit
 * requests (admission is src/traffic/circuit-breaker.ts): how long a connect may take, how long
 * an idle connection is kept, and how many requests one connection carries before it is
 * retired (Envoy's max_requests_per_connection, e.g. to spread load after endpoints change).
 */
import type http from 'node:http';
import type http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { ConnectionPoolSnapshot } from '../../mesh/snapshot.js';

export type ConnectionLimits = Pick<ConnectionPoolSnapshot, 'connectTimeoutMs' | 'idleTimeoutMs' | 'maxRequestsPerConnection'>;

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** A key part that keeps pools with different limits apart. */
export function limitsKey(limits: ConnectionLimits | undefined): string {
  return `${limits?.connectTimeoutMs ?? ''}/${limits?.idleTimeoutMs ?? ''}/${limits?.maxRequestsPerConnection ?? ''}`;
}

/**
 * Without an idleTimeout, pooled connections to sidecars close after 50 s idle: before the
 * peer's own 60 s keep-alive timeout (src/dataplane/l7/downstream.ts), so a request never
 * goes out on a connection the peer is closing at that moment.
 */
export const DEFAULT_MESH_IDLE_TIMEOUT_MS = 50_000;

/** Agent options for the limits: the socket timeout closes idle pooled connections. */
export function agentOptions(limits: ConnectionLimits | undefined, defaultIdleMs?: number): http.AgentOptions {
  const idle = limits?.idleTimeoutMs || defaultIdleMs;
  return idle ? { timeout: idle } : {};
}

/**
 * Retires a keep-alive socket after it has served `maxRequestsPerConnection` requests. Node
 * asks `keepSocketAlive` each time a request finishes with a socket (the agent has no socket
 * limit, so requests never queue for a freed socket); false closes it.
 */
export function limitRequestsPerSocket(agent: http.Agent, limits: ConnectionLimits | undefined): void {
  const max = limits?.maxRequestsPerConnection;
  if (max === undefined || max <= 0) return;
  const served = new WeakMap<Duplex, number>();
  const keep = agent.keepSocketAlive.bind(agent) as (socket: Duplex) => boolean;
  const limited = (socket: Duplex): boolean => {
    const count = (served.get(socket) ?? 0) + 1;
    served.set(socket, count);
    return count < max && keep(socket);
  };
  agent.keepSocketAlive = limited as typeof agent.keepSocketAlive;
}

/** HTTP/2: an idle session closes after `idleTimeoutMs`. */
export function limitIdleSession(session: http2.ClientHttp2Session, limits: ConnectionLimits | undefined): void {
  if (limits?.idleTimeoutMs) session.setTimeout(limits.idleTimeoutMs, () => session.close());
}
