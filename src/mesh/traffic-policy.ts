/**
 * DestinationRule traffic policies, resolved for one cluster (host, port, subset). Istio's
 * precedence, each of loadBalancer / connectionPool / outlierDetection / tls replaced whole:
 * the rule's policy, then its portLevelSettings for the port, then the subset's policy, then the
 * subset's portLevelSettings for the port.
 */
import { parseDuration } from '../api/duration.js';
import type { ClientTlsSettings, ConnectionPoolSettings, DestinationRuleSpec, LoadBalancerSettings, OutlierDetection, TrafficPolicy } from '../api/schemas/traffic.js';
import { DEFAULT_MIN_RING_SIZE } from '../traffic/load-balancer.js';
import type { ConnectionPoolSnapshot, LoadBalancerSnapshot, OutlierDetectionSnapshot } from './snapshot.js';

interface PolicyParts {
  loadBalancer?: LoadBalancerSettings | undefined;
  connectionPool?: ConnectionPoolSettings | undefined;
  outlierDetection?: OutlierDetection | undefined;
  tls?: ClientTlsSettings | undefined;
}

export function effectivePolicy(rule: DestinationRuleSpec | undefined, port: number, subset: string | undefined): PolicyParts {
  const parts: PolicyParts = {};
  const apply = (policy: TrafficPolicy | undefined): void => {
    if (policy === undefined) return;
    overlay(parts, policy);
    const forPort = policy.portLevelSettings?.find((p) => p.port?.number === port);
    if (forPort) overlay(parts, forPort);
  };
  apply(rule?.trafficPolicy);
  if (subset !== undefined) apply(rule?.subsets?.find((s) => s.name === subset)?.trafficPolicy);
  return parts;
}

function overlay(parts: PolicyParts, policy: PolicyParts): void {
  if (policy.loadBalancer) parts.loadBalancer = policy.loadBalancer;
  if (policy.connectionPool) parts.connectionPool = policy.connectionPool;
  if (policy.outlierDetection) parts.outlierDetection = policy.outlierDetection;
  if (policy.tls) parts.tls = policy.tls;
}

/** Istio's default load balancer is LEAST_REQUEST; LEAST_CONN is its old name. */
export function loadBalancerSnapshot(settings: LoadBalancerSettings | undefined): LoadBalancerSnapshot {
  const hash = settings?.consistentHash;
  if (hash) {
    const minimumRingSize = hash.ringHash?.minimumRingSize ?? hash.minimumRingSize ?? DEFAULT_MIN_RING_SIZE;
    if (hash.httpHeaderName !== undefined) return { consistentHash: { httpHeaderName: hash.httpHeaderName.toLowerCase() }, minimumRingSize };
    if (hash.httpCookie !== undefined) {
      const { name, path, ttl } = hash.httpCookie;
      return { consistentHash: { httpCookie: { name, ...(path === undefined ? {} : { path }), ...(ttl === undefined ? {} : { ttlMs: parseDuration(ttl) }) } }, minimumRingSize };
    }
    if (hash.useSourceIp === true) return { consistentHash: { useSourceIp: true }, minimumRingSize };
    if (hash.httpQueryParameterName !== undefined) return { consistentHash: { httpQueryParameterName: hash.httpQueryParameterName }, minimumRingSize };
  }
  switch (settings?.simple) {
    case 'ROUND_ROBIN':
    case 'RANDOM':
    case 'PASSTHROUGH':
      return { simple: settings.simple };
    default:
      return { simple: 'LEAST_REQUEST' };
  }
}

export function connectionPoolSnapshot(settings: ConnectionPoolSettings | undefined): ConnectionPoolSnapshot {
  const tcp = settings?.tcp;
  const http = settings?.http;
  const idle = http?.idleTimeout ?? tcp?.idleTimeout;
  return {
    ...(tcp?.maxConnections === undefined ? {} : { maxConnections: tcp.maxConnections }),
    ...(tcp?.connectTimeout === undefined ? {} : { connectTimeoutMs: parseDuration(tcp.connectTimeout) }),
    ...(http?.http1MaxPendingRequests === undefined ? {} : { http1MaxPendingRequests: http.http1MaxPendingRequests }),
    ...(http?.http2MaxRequests === undefined ? {} : { http2MaxRequests: http.http2MaxRequests }),
    ...(http?.maxRequestsPerConnection === undefined ? {} : { maxRequestsPerConnection: http.maxRequestsPerConnection }),
    ...(http?.maxRetries === undefined ? {} : { maxRetries: http.maxRetries }),
    ...(idle === undefined ? {} : { idleTimeoutMs: parseDuration(idle) }),
  };
}

/** Istio's defaults: interval 10s, baseEjectionTime 30s, maxEjectionPercent 10, minHealthPercent 0. */
export function outlierDetectionSnapshot(settings: OutlierDetection | undefined): OutlierDetectionSnapshot | undefined {
  if (settings === undefined) return undefined;
  const gateway = settings.consecutiveGatewayErrors ?? settings.consecutiveErrors;
  return {
    ...(settings.consecutive5xxErrors === undefined ? {} : { consecutive5xxErrors: settings.consecutive5xxErrors }),
    ...(gateway === undefined ? {} : { consecutiveGatewayErrors: gateway }),
    ...(settings.splitExternalLocalOriginErrors === undefined ? {} : { splitExternalLocalOriginErrors: settings.splitExternalLocalOriginErrors }),
    ...(settings.consecutiveLocalOriginFailures === undefined ? {} : { consecutiveLocalOriginFailures: settings.consecutiveLocalOriginFailures }),
    intervalMs: parseDuration(settings.interval ?? '10s'),
    baseEjectionTimeMs: parseDuration(settings.baseEjectionTime ?? '30s'),
    maxEjectionPercent: settings.maxEjectionPercent ?? 10,
    minHealthPercent: settings.minHealthPercent ?? 0,
  };
}
