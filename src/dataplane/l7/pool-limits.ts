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

/** Agent options for the limits: the socket timeout closes idle pooled connections. */
export function agentOptions(limits: ConnectionLimits | undefined): http.AgentOptions {
  return limits?.idleTimeoutMs ? { timeout: limits.idleTimeoutMs } : {};
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
