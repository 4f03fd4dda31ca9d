/**
 * Connections to other sidecars: always mTLS with this workload's SVID, and the server must
 * present an identity the registry allows to serve the service (the endpoint's own, another
 * endpoint's, or a ServiceEntry subjectAltName) — an address alone proves nothing. Pools are
 * kept per endpoint and per certificate generation, so a rotation starts fresh pools while
 * in-flight requests finish on the old ones.
 */
import https from 'node:https';
import http2 from 'node:http2';
import tls from 'node:tls';
import type { SpiffeTls } from '../identity/tls.js';
import type { EndpointSnapshot } from '../mesh/snapshot.js';
import type { L7Request, L7Response } from './l7/types.js';
import { agentOptions, type ConnectionLimits, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MESH_IDLE_TIMEOUT_MS, limitIdleSession, limitRequestsPerSocket, limitsKey } from './l7/pool-limits.js';
import { Http2SessionPool, sendHttp1, sendHttp2 } from './l7/upstream.js';
import { MESH_ALPN } from './alpn.js';

export interface MeshDestination {
  endpoint: EndpointSnapshot;
  port: number;
  /**
   * Identities allowed to serve the service besides the endpoint's own (the other endpoints'
   * and ServiceEntry subjectAltNames): the server must hold one of these.
   */
  serviceIdentities: readonly string[];
  /** SNI, Istio style: outbound_.<port>_._.<host>. */
  serverName: string;
  /** The cluster's connectionPool limits on connections (connect and idle timeouts, requests per connection). */
  limits?: ConnectionLimits;
}

export class MeshUpstream {
  private readonly tlsMaterial: () => SpiffeTls;
  private readonly agents = new Map<string, https.Agent>();
  private readonly sessions = new Http2SessionPool();
  private generation = -1;

  constructor(tlsMaterial: () => SpiffeTls) {
    this.tlsMaterial = tlsMaterial;
  }

  sendHttp(request: L7Request, destination: MeshDestination, http2Upstream: boolean): Promise<L7Response> {
    this.checkGeneration();
    const key = this.keyOf(destination);
    if (http2Upstream) {
      const session = this.sessions.get(
        key,
        () => {
          const connected = http2.connect(`https://${destination.endpoint.address}:${destination.port}`, {
            createConnection: () => this.connectTls(destination, MESH_ALPN.http2),
          });
          limitIdleSession(connected, destination.limits);
          return connected;
        },
        destination.limits?.maxRequestsPerConnection,
      );
      return sendHttp2(request, session, 'https');
    }
    let agent = this.agents.get(key);
    if (!agent) {
      // No session resumption: every connection is a full handshake, verified from scratch
      // (pooling amortizes the cost), and resumed sessions would not carry the peer's chain.
      agent = new https.Agent({ keepAlive: true, scheduling: 'lifo', maxCachedSessions: 0, ...agentOptions(destination.limits, DEFAULT_MESH_IDLE_TIMEOUT_MS), ...this.tlsOptions(destination, MESH_ALPN.http1) });
      limitRequestsPerSocket(agent, destination.limits);
      this.agents.set(key, agent);
    }
    return sendHttp1(request, { host: destination.endpoint.address, port: destination.port, agent, secure: true, connectTimeoutMs: destination.limits?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
  }

  /** A raw mTLS tunnel for TCP traffic. */
  connectTls(destination: MeshDestination, alpn: string): tls.TLSSocket {
    const socket = tls.connect({ host: destination.endpoint.address, port: destination.port, ...this.tlsOptions(destination, alpn) });
    socket.setNoDelay(true);
    const timeout = destination.limits?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const timer = setTimeout(() => socket.destroy(new Error(`connect timeout after ${timeout} ms`)), timeout);
    socket.once('secureConnect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return socket;
  }

  /** Drops every pool, e.g. after a revocation, so no connection outlives its verification. */
  reset(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
    this.sessions.closeAll();
  }

  close(): void {
    this.reset();
  }

  private tlsOptions(destination: MeshDestination, alpn: string): tls.ConnectionOptions {
    const expected = destination.endpoint.identity;
    const allowed = new Set([expected, ...destination.serviceIdentities]);
    return this.tlsMaterial().clientOptions((id) => (allowed.has(id.toString()) ? true : `expected ${expected} (or another identity of the service) for ${destination.endpoint.workload}`), {
      servername: destination.serverName,
      ALPNProtocols: [alpn],
    });
  }

  private keyOf(destination: MeshDestination): string {
    return `${destination.endpoint.address}:${destination.port}|${destination.endpoint.identity}|${limitsKey(destination.limits)}`;
  }

  private checkGeneration(): void {
    const generation = this.tlsMaterial().materialGeneration;
    if (generation === this.generation) return;
    this.generation = generation;
    // Old pools are simply forgotten: idle sockets close on their own, busy ones finish first.
    this.agents.clear();
    this.sessions.closeAll();
  }
}
