/**
 * The data plane's telemetry hooks: where a request or TCP connection finishes, the listeners
 * call in here, and this turns what the request context holds into Istio's standard metrics
 * (src/telemetry ProxyMetrics) and an access-log line (AccessLogWriter). Everything here is
 * synchronous counter increments and a queue push; the log is written on later ticks.
 *
 * Labels: the destination side knows itself (the workload snapshot) and the caller's SPIFFE ID,
 * plus the caller's workload from the peer metadata header (src/telemetry/peer-metadata.ts);
 * the source side knows itself and the endpoint it picked (EndpointSnapshot labels/workload).
 */
import type { Socket } from 'node:net';
import type { EndpointSnapshot, OutboundSnapshot, WorkloadSnapshot } from '../mesh/snapshot.js';
import type { InboundDecision } from '../policy/inbound.js';
import type { AccessLogEntry, AccessLogWriter } from '../telemetry/access-log.js';
import { type DestinationService, type WorkloadMetadata, workloadNameOf } from '../telemetry/istio-labels.js';
import type { ProxyMetrics, RequestRecord, TcpRecord } from '../telemetry/istio-metrics.js';
import { encodePeerMetadata } from '../telemetry/peer-metadata.js';
import type { ConnectionInfo } from './connection.js';
import { getHeader } from './headers.js';
import type { RequestOutcome } from './l7/downstream.js';
import { isGrpc, type L7Request } from './l7/types.js';
import { splitAuthority } from './service-resolver.js';

export type Direction = 'inbound' | 'outbound';

/** Istio reports long-lived TCP connections' bytes periodically, not only at close. */
const TCP_REPORT_INTERVAL_MS = 15_000;

export interface DataPlaneTelemetryOptions {
  metrics?: ProxyMetrics;
  accessLog?: AccessLogWriter;
  /** `namespace/name` of the WorkloadEntry, until its snapshot arrives. */
  workload: string;
  /** Cluster / mesh name for `source_cluster` / `destination_cluster`. */
  cluster?: string;
  tcpReportIntervalMs?: number;
}

/** The far end of an outbound TCP tunnel, or the caller of an inbound one. */
export interface TcpEdge {
  direction: Direction;
  connection: ConnectionInfo;
  /** Outbound: the service the tunnel leads to. */
  service?: { host: string; namespace?: string };
  /** Outbound: the endpoint it connected to (mesh) — absent for external destinations. */
  endpoint?: Pick<EndpointSnapshot, 'workload' | 'labels' | 'identity'>;
  upstreamHost?: string;
  upstreamCluster?: string;
}

interface LiveTcp {
  record: TcpRecord;
  /** The plaintext socket whose counters measure the downstream bytes. */
  socket: Socket;
  /** For inbound, the app-side socket: its writes are what the downstream sent. */
  inverted: boolean;
  sent: number;
  received: number;
}

export class DataPlaneTelemetry {
  readonly metrics: ProxyMetrics | undefined;
  readonly accessLog: AccessLogWriter | undefined;
  private self: WorkloadMetadata;
  private identity: string | undefined;
  private peerHeader: string | undefined;
  private services = new Map<string, DestinationService>();
  private readonly cluster: string | undefined;
  private readonly liveTcp = new Set<LiveTcp>();
  private readonly tcpTimer: NodeJS.Timeout;

  constructor(options: DataPlaneTelemetryOptions) {
    this.metrics = options.metrics;
    this.accessLog = options.accessLog;
    this.cluster = options.cluster;
    const [namespace, name] = options.workload.split('/');
    this.self = { ...(name ? { name } : {}), ...(namespace ? { namespace } : {}), ...(options.cluster ? { cluster: options.cluster } : {}) };
    this.metrics?.setWorkload(this.self);
    this.tcpTimer = setInterval(() => this.reportTcp(), options.tcpReportIntervalMs ?? TCP_REPORT_INTERVAL_MS);
    this.tcpTimer.unref();
  }

  /** The pushed workload snapshot: this proxy's own labels and identity. */
  setWorkload(workload: WorkloadSnapshot): void {
    this.self = {
      name: workloadNameOf(workload.name, workload.labels),
      namespace: workload.namespace,
      labels: workload.labels,
      ...(this.cluster ? { cluster: this.cluster } : {}),
    };
    this.identity = workload.identity;
    this.peerHeader = encodePeerMetadata(this.self);
    this.metrics?.setWorkload(this.self);
  }

  /** The pushed outbound snapshot: names of services, for the inbound `destination_service`. */
  setOutbound(outbound: OutboundSnapshot): void {
    const services = new Map<string, DestinationService>();
    for (const service of outbound.services) {
      const value = { host: service.host, namespace: service.namespace };
      for (const name of [service.host, ...service.aliases]) services.set(name.toLowerCase(), value);
    }
    this.services = services;
  }

  /** False when neither metrics nor an access log are on: the listeners then measure nothing. */
  get measuring(): boolean {
    return this.metrics !== undefined || this.accessLog !== undefined;
  }

  /** The value of the peer metadata header this sidecar sends on mesh requests. */
  peerMetadataHeader(): string | undefined {
    return this.peerHeader;
  }

  requestDone(direction: Direction, request: L7Request, outcome: RequestOutcome): void {
    const context = request.context;
    const extra = context.telemetry;
    const peer = request.connection.peer;
    const flags = context.responseFlags;
    if (this.metrics) {
      const protocol = isGrpc(request) ? 'grpc' : 'http';
      const common = {
        protocol,
        responseCode: outcome.responseCode,
        ...(outcome.grpcStatus === undefined ? {} : { grpcStatus: outcome.grpcStatus }),
        responseFlags: flags,
        durationMs: outcome.durationMs,
        requestBytes: outcome.requestBytes,
        responseBytes: outcome.responseBytes,
      } as const;
      let record: RequestRecord;
      if (direction === 'inbound') {
        const caller = extra?.peerMetadata ?? (peer ? { namespace: peer.identity.serviceAccount?.namespace } : undefined);
        record = {
          reporter: 'destination',
          ...common,
          ...(caller ? { peer: caller as WorkloadMetadata } : {}),
          ...(peer ? { peerPrincipal: peer.identity.toString(), ...(this.identity ? { localPrincipal: this.identity } : {}) } : {}),
          service: this.inboundService(request.authority),
        };
      } else {
        const endpoint = extra?.upstreamWorkload;
        record = {
          reporter: 'source',
          ...common,
          ...(endpoint ? { peer: endpointMetadata(endpoint, this.cluster), peerPrincipal: endpoint.identity, ...(this.identity ? { localPrincipal: this.identity } : {}) } : {}),
          ...(extra?.service ? { service: extra.service } : { service: { host: splitAuthority(request.authority, 80).host } }),
        };
      }
      this.metrics.recordRequest(record);
      if (extra?.overflow) this.metrics.recordCircuitBreakerRejection(extra.overflow.cluster, extra.overflow.reason);
      if (extra?.rateLimited) this.metrics.recordRateLimitRejection(extra.rateLimited.source, extra.rateLimited.per);
    }
    if (this.accessLog) this.accessLog.log(this.requestEntry(direction, request, outcome));
  }

  /** The inbound authorization decision of a request or TCP connection. */
  authzDecision(decision: InboundDecision): void {
    const metrics = this.metrics;
    if (!metrics) return;
    if (decision.stage === 'authentication') metrics.recordJwtFailure(jwtReason(decision.reason));
    metrics.recordAuthzDecision(decision.decision === 'ALLOW' ? 'allow' : 'deny', decision.action ?? 'none', decision.policy);
    for (const match of decision.dryRun) metrics.recordAuthzDryRun(match.effect, match.policy);
  }

  /**
   * A TCP connection was allowed and is being forwarded. `socket` is the plaintext side whose
   * counters give the downstream's bytes: outbound the application's socket; inbound the socket
   * to the application (what it reads was sent to the downstream).
   */
  tcpOpened(edge: TcpEdge, socket: Socket): void {
    if (!this.measuring) return;
    const started = Date.now();
    const record = this.tcpRecord(edge);
    const live: LiveTcp = { record, socket, inverted: edge.direction === 'inbound', sent: 0, received: 0 };
    this.metrics?.recordTcpOpen(record);
    this.liveTcp.add(live);
    socket.once('close', () => {
      this.liveTcp.delete(live);
      const { sent, received } = this.tcpDelta(live);
      this.metrics?.recordTcpClose(record, sent, received);
      this.accessLog?.log({
        startTime: new Date(started),
        durationMs: Date.now() - started,
        bytesReceived: live.received,
        bytesSent: live.sent,
        ...(edge.upstreamHost ? { upstreamHost: edge.upstreamHost } : {}),
        ...(edge.upstreamCluster ? { upstreamCluster: edge.upstreamCluster } : {}),
        ...addresses(edge.connection),
        ...this.principals(edge.direction, edge.connection, edge.endpoint?.identity),
      });
    });
  }

  /** Stops the periodic TCP report and writes what the access log holds. */
  async close(): Promise<void> {
    clearInterval(this.tcpTimer);
    this.reportTcp();
    await this.accessLog?.close();
  }

  private reportTcp(): void {
    if (!this.metrics) return;
    for (const live of this.liveTcp) {
      const { sent, received } = this.tcpDelta(live);
      this.metrics.recordTcpBytes(live.record, sent, received);
    }
  }

  /** Bytes since the last report; updates the totals. */
  private tcpDelta(live: LiveTcp): { sent: number; received: number } {
    const read = live.socket.bytesRead;
    const written = live.socket.bytesWritten;
    const sentTotal = live.inverted ? read : written;
    const receivedTotal = live.inverted ? written : read;
    const delta = { sent: Math.max(0, sentTotal - live.sent), received: Math.max(0, receivedTotal - live.received) };
    live.sent = sentTotal;
    live.received = receivedTotal;
    return delta;
  }

  private tcpRecord(edge: TcpEdge): TcpRecord {
    const peer = edge.connection.peer;
    if (edge.direction === 'inbound') {
      return {
        reporter: 'destination',
        // A TCP stream carries no metadata header: the caller's workload is unknown here.
        ...(peer ? { peer: { namespace: peer.identity.serviceAccount?.namespace } as WorkloadMetadata, peerPrincipal: peer.identity.toString(), ...(this.identity ? { localPrincipal: this.identity } : {}) } : {}),
      };
    }
    return {
      reporter: 'source',
      ...(edge.endpoint ? { peer: endpointMetadata(edge.endpoint, this.cluster), peerPrincipal: edge.endpoint.identity, ...(this.identity ? { localPrincipal: this.identity } : {}) } : {}),
      ...(edge.service ? { service: edge.service } : {}),
    };
  }

  private inboundService(authority: string): DestinationService {
    const { host } = splitAuthority(authority, 80);
    // Istio falls back to the Host header when the service is not known.
    return this.services.get(host.toLowerCase()) ?? { host: host === '' ? 'unknown' : host };
  }

  private principals(direction: Direction, connection: ConnectionInfo, upstreamIdentity: string | undefined): Pick<AccessLogEntry, 'sourcePrincipal' | 'destinationPrincipal'> {
    if (direction === 'inbound') {
      return connection.peer ? { sourcePrincipal: connection.peer.identity.toString(), ...(this.identity ? { destinationPrincipal: this.identity } : {}) } : {};
    }
    return upstreamIdentity ? { destinationPrincipal: upstreamIdentity, ...(this.identity ? { sourcePrincipal: this.identity } : {}) } : {};
  }

  private requestEntry(direction: Direction, request: L7Request, outcome: RequestOutcome): AccessLogEntry {
    const context = request.context;
    const extra = context.telemetry;
    const header = (name: string): string | undefined => getHeader(request.headers, name);
    const requestId = header('x-request-id');
    // The trace this proxy joined or started (tracing on), else one the request carries.
    const traceId = context.trace?.traceId ?? traceIdOf(header('traceparent'));
    const userAgent = header('user-agent');
    const forwardedFor = header('x-forwarded-for');
    const details = responseCodeDetails(request);
    const upstreamCluster = extra?.upstreamCluster ?? (direction === 'inbound' ? 'inbound' : undefined);
    return {
      startTime: new Date(outcome.startTime),
      durationMs: outcome.durationMs,
      protocol: request.protocol,
      method: request.method,
      path: outcome.path,
      authority: request.authority,
      responseCode: outcome.responseCode,
      responseFlags: context.responseFlags,
      ...(details ? { responseCodeDetails: details } : {}),
      bytesReceived: outcome.requestBytes,
      bytesSent: outcome.responseBytes,
      ...(outcome.headersMs !== undefined && context.upstreamHost !== undefined ? { upstreamServiceTimeMs: outcome.headersMs } : {}),
      ...(context.upstreamHost ? { upstreamHost: context.upstreamHost } : {}),
      ...(upstreamCluster ? { upstreamCluster } : {}),
      ...addresses(request.connection),
      ...this.principals(direction, request.connection, extra?.upstreamWorkload?.identity),
      ...(requestId ? { requestId } : {}),
      ...(traceId ? { traceId } : {}),
      ...(userAgent ? { userAgent } : {}),
      ...(forwardedFor ? { xForwardedFor: forwardedFor } : {}),
    };
  }
}

function endpointMetadata(endpoint: Pick<EndpointSnapshot, 'workload' | 'labels'>, cluster: string | undefined): WorkloadMetadata {
  const slash = endpoint.workload.indexOf('/');
  const namespace = slash < 0 ? undefined : endpoint.workload.slice(0, slash);
  const entry = slash < 0 ? endpoint.workload : endpoint.workload.slice(slash + 1);
  return { name: workloadNameOf(entry, endpoint.labels), labels: endpoint.labels, ...(namespace ? { namespace } : {}), ...(cluster ? { cluster } : {}) };
}

function addresses(connection: ConnectionInfo): Pick<AccessLogEntry, 'downstreamRemoteAddress' | 'downstreamLocalAddress' | 'requestedServerName'> {
  return {
    downstreamRemoteAddress: hostPort(connection.sourceIp, connection.sourcePort),
    downstreamLocalAddress: hostPort(connection.destIp, connection.destPort),
    ...(connection.sni ? { requestedServerName: connection.sni } : {}),
  };
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Envoy-like `%RESPONSE_CODE_DETAILS%` for the refusals the proxy makes itself. */
function responseCodeDetails(request: L7Request): string | undefined {
  const authz = request.context.authz;
  if (authz?.decision === 'DENY') return request.context.responseFlags.includes('UAEX') ? 'jwt_authn_access_denied' : `rbac_access_denied_matched_policy[${authz.policy ?? 'none'}]`;
  if (request.context.responseFlags.includes('RL')) return 'local_rate_limited';
  if (request.context.responseFlags.includes('UO')) return 'upstream_overflow';
  return undefined;
}

/** W3C traceparent `00-<trace id>-<span id>-<flags>`: the trace id. */
function traceIdOf(traceparent: string | undefined): string | undefined {
  const match = traceparent === undefined ? null : /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(traceparent.trim());
  return match?.[1];
}

/** The verifier's short reason from `invalid JWT (<reason>): …`; `verification_failed` otherwise. */
function jwtReason(reason: string): string {
  return /invalid JWT \(([a-z_-]+)\)/.exec(reason)?.[1] ?? 'verification_failed';
}
