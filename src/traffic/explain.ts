/**
 * `trellis route check` in the pure core: what the sidecar of one workload would do with one
 * request, and why — from its compiled snapshot, with the functions the outbound path runs and
 * in its order (src/dataplane/traffic-router.ts, outbound.ts):
 *
 *   name lookup (host + aliases + port, service-lookup.ts) → egress policy for unregistered
 *   names (egress.ts) → the route table of (service, port) → first matching HTTP route, or tcp
 *   route on a TCP port (route-select.ts) → fault → redirect / direct response → weighted
 *   destinations and their clusters (load balancer, connection pool, outlier detection) →
 *   timeout, retries (Istio's default when the route sets none), mirrors.
 *
 * Nothing here is drawn at random: every destination is listed with its weight, every fault
 * and mirror with its percentage. The result is plain JSON; its first eight fields are the
 * `-o json` contract of the command (docs/reference/cli.md).
 */
import { formatDuration } from '../api/duration.js';
import type {
  ClusterSnapshot,
  ConnectionPoolSnapshot,
  HttpRetrySnapshot,
  HttpRouteSnapshot,
  LoadBalancerSnapshot,
  OutboundSnapshot,
  OutlierDetectionSnapshot,
  RouteDestinationSnapshot,
  WorkloadSnapshot,
} from '../mesh/snapshot.js';
import { egressDecision, type EgressDecision } from './egress.js';
import { lbEndpoints } from './load-balancer.js';
import { redirectResponse } from './redirect.js';
import type { RequestView, SourceView } from './request.js';
import { ISTIO_DEFAULT_RETRY } from './retry.js';
import { type CompiledRouteTable, RouteTables, selectHttpRoute, selectL4Route } from './route-select.js';
import { type ResolvedTarget, ServiceResolver, splitAuthority } from './service-lookup.js';

/** The request to explain, as the application would send it through its sidecar. */
export interface RouteCheckRequest {
  /** The destination as the application names it: `reviews`, `reviews.default:9080`, `api.example.com`. */
  host: string;
  /** The destination port when `host` carries none. */
  port?: number;
  /** Default GET. */
  method?: string;
  /** Origin-form request target with an optional query; default `/`. */
  path?: string;
  /** Lower-case header name → value (repeated names joined with `,`). */
  headers?: ReadonlyMap<string, string>;
  /** Explain a plain TCP connection (tcp routes) whatever the port's protocol. */
  tcp?: boolean;
}

/**
 * routed: to the destinations listed. redirect / direct-response: answered by the proxy.
 * passthrough: unregistered, sent to the original address (ALLOW_ANY). no-route: the service
 * is known but nothing routes the request (404). blocked: unregistered and REGISTRY_ONLY (502).
 */
export type RouteOutcome = 'routed' | 'redirect' | 'direct-response' | 'passthrough' | 'no-route' | 'blocked';

export interface DestinationExplanation {
  host: string;
  subset: string | null;
  port: number;
  /** The route's weight for it (0-100); a route's only destination takes every request. */
  weight: number;
  /** Envoy-style cluster name, `outbound|<port>|<subset>|<host>`; `PassthroughCluster` for ALLOW_ANY. */
  cluster: string;
  loadBalancer: LoadBalancerSnapshot | null;
  connectionPool: ConnectionPoolSnapshot | null;
  /** null: outlier detection is off for this cluster (no DestinationRule sets it). */
  outlierDetection: OutlierDetectionSnapshot | null;
  /** `namespace/name` of the DestinationRule that shaped the cluster; null: none (Istio's defaults). */
  destinationRule: string | null;
  tls: string | null;
  location: ClusterSnapshot['location'] | null;
  /** `address:port` (and the WorkloadEntry) of each endpoint the load balancer picks from. */
  endpoints: Array<{ address: string; port: number; workload: string }>;
}

export interface RetriesExplanation {
  /** Retries after the first attempt; 0: retries disabled. */
  attempts: number;
  perTryTimeout: string | null;
  retryOn: string[];
  retriableStatusCodes: number[];
  backoffBase: string;
  /** Whether retries avoid endpoints already tried (false under consistent hashing by default). */
  retryIgnorePreviousHosts: boolean;
  /** True: the route sets no `retries`, so Istio's default policy applies. */
  default: boolean;
}

export interface FaultExplanation {
  delay?: { fixedDelay: string; percentage: number };
  abort?: { httpStatus?: number; grpcStatus?: number; percentage: number };
}

export interface MirrorExplanation {
  host: string;
  subset: string | null;
  port: number;
  percentage: number;
  cluster: string;
}

export interface RouteExplanation {
  /** `namespace/name`; null for the default route of a service or when nothing was routed. */
  virtualService: string | null;
  /** The route's `name`, else its index in the VirtualService's `http` (or `tcp`) list; `default` for the default route. */
  route: string | number | null;
  destinations: DestinationExplanation[];
  /** Istio notation (`10s`); null: no timeout (Istio's default for HTTP routes), or not applicable. */
  timeout: string | null;
  /** null: not applicable (TCP, redirect, direct response, passthrough). */
  retries: RetriesExplanation | null;
  fault: FaultExplanation | null;
  mirror: MirrorExplanation[];
  /** `"allowed"`, or why the request is blocked. */
  egress: string;

  outcome: RouteOutcome;
  /** One sentence: the route-select explanation, or what stopped the request. */
  explanation: string;
  from: string;
  request: { host: string; port: number; protocol: 'HTTP' | 'TCP'; method?: string; path?: string };
  /** The service the name resolved to; null when it resolved to none. */
  service: { host: string; namespace: string; location: string; port: number; portName: string; protocol: string } | null;
  /** The `match` entry that held and its conditions; null when no route matched. */
  match: { index: number | null; conditions: string[] } | null;
  /** For `no-route`: for each route, the first failing condition of each match entry. */
  noMatch: Array<{ route: string; failures: string[] }> | null;
  redirect: { status: number; location: string } | null;
  directResponse: { status: number; body: string | null } | null;
  rewrite: NonNullable<HttpRouteSnapshot['rewrite']> | null;
  /** The egress decision in full: registered or not, the mode and where it was set. */
  egressPolicy: { allowed: boolean; reason: string; mode: 'REGISTRY_ONLY' | 'ALLOW_ANY'; source: string };
  /** What the proxy would answer by itself: 404 (no route), 502 (blocked), a redirect's or direct response's status. */
  localReply: number | null;
  notes: string[];
}

/** The snapshot parts the outbound path reads. */
export interface RouteCheckSnapshot {
  workload: Pick<WorkloadSnapshot, 'namespace' | 'name' | 'labels'>;
  outbound: OutboundSnapshot;
}

/** The destination port the proxy assumes when the application names none (plain HTTP). */
const HTTP_DEFAULT_PORT = 80;

/** Explains one request of the workload of `snapshot`. Pure; throws only for a snapshot with a bad regex. */
export function explainRoute(snapshot: RouteCheckSnapshot, input: RouteCheckRequest): RouteExplanation {
  return ordered(explain(snapshot, input));
}

/** The contract fields first, then the details, in the order the reference documents them. */
function ordered(e: RouteExplanation): RouteExplanation {
  return {
    virtualService: e.virtualService,
    route: e.route,
    destinations: e.destinations,
    timeout: e.timeout,
    retries: e.retries,
    fault: e.fault,
    mirror: e.mirror,
    egress: e.egress,
    outcome: e.outcome,
    explanation: e.explanation,
    from: e.from,
    request: e.request,
    service: e.service,
    match: e.match,
    noMatch: e.noMatch,
    redirect: e.redirect,
    directResponse: e.directResponse,
    rewrite: e.rewrite,
    egressPolicy: e.egressPolicy,
    localReply: e.localReply,
    notes: e.notes,
  };
}

function explain(snapshot: RouteCheckSnapshot, input: RouteCheckRequest): RouteExplanation {
  const authority = input.port === undefined || hasPort(input.host) ? input.host : `${input.host}:${input.port}`;
  const traffic = snapshot.outbound.traffic;
  const source: SourceView = { namespace: snapshot.workload.namespace, labels: snapshot.workload.labels };
  const base = {
    from: `${snapshot.workload.namespace}/${snapshot.workload.name}`,
    notes: [] as string[],
  };
  if (traffic === undefined) base.notes.push('the snapshot has no traffic settings: the proxy would route every service to all its endpoints and block unregistered hosts');
  const egressMode = traffic?.outboundTrafficPolicy ?? 'REGISTRY_ONLY';
  const egressSource = traffic?.outboundTrafficPolicySource ?? 'proxy default (no traffic settings)';
  const policyOf = (decision: EgressDecision): RouteExplanation['egressPolicy'] => ({ allowed: decision.allowed, reason: decision.reason, mode: egressMode, source: egressSource });

  const target = new ServiceResolver(snapshot.outbound).resolve(authority, HTTP_DEFAULT_PORT);
  if (target === undefined) return unregistered(snapshot, input, authority, base, policyOf);

  const egress = egressDecision(traffic, { host: target.service.host, registered: true });
  const tcp = input.tcp === true || target.port.protocol === 'TCP';
  const request: RouteExplanation['request'] = tcp
    ? { host: input.host, port: target.port.number, protocol: 'TCP' }
    : { host: input.host, port: target.port.number, protocol: 'HTTP', method: input.method ?? 'GET', path: input.path ?? '/' };
  const common = {
    ...empty(),
    ...base,
    request,
    service: serviceOf(target),
    egress: 'allowed',
    egressPolicy: policyOf(egress),
  };
  if (!tcp && target.port.protocol === 'UNKNOWN') {
    common.notes.push(`port ${target.port.number} (${target.port.name}) declares no protocol: the proxy sniffs; HTTP requests take the HTTP routes, other bytes the tcp routes (--tcp)`);
  }
  if (tcp && target.port.protocol !== 'TCP' && target.port.protocol !== 'UNKNOWN') {
    common.notes.push(`port ${target.port.number} is ${target.port.protocol}: the proxy takes the tcp routes only for a CONNECT tunnel to a MESH_EXTERNAL service`);
  }

  const table = new RouteTables(traffic?.routeTables ?? []).get(target.service.host, target.port.number);
  if (table === undefined) {
    return { ...common, outcome: 'no-route', localReply: 404, explanation: `no route table for ${target.service.host}:${target.port.number}` };
  }
  const clusters = new Map((traffic?.clusters ?? []).map((cluster) => [cluster.name, cluster]));
  const virtualService = table.table.virtualService ?? null;

  if (tcp) return explainTcp(table, target, source, clusters, { ...common, virtualService });

  const view: RequestView = {
    method: request.method ?? 'GET',
    path: request.path ?? '/',
    authority,
    scheme: 'http',
    headers: input.headers ?? new Map(),
    port: target.port.number,
    source,
  };
  const selection = selectHttpRoute(table, view);
  if (!selection.matched) {
    return {
      ...common,
      virtualService,
      outcome: 'no-route',
      localReply: 404,
      explanation: selection.explanation,
      noMatch: selection.routes.map((r) => ({ route: r.route, failures: [...r.failures] })),
    };
  }
  const route = selection.route;
  const matched = {
    ...common,
    virtualService,
    route: routeId(route.name, route.index),
    explanation: selection.explanation,
    match: { index: selection.matchIndex ?? null, conditions: [...selection.conditions] },
    fault: faultOf(route),
  };
  if (route.fault?.abort !== undefined && route.fault.abort.percentage >= 100) {
    matched.notes.push(`every request is aborted by the fault (${route.fault.abort.httpStatus !== undefined ? `HTTP ${route.fault.abort.httpStatus}` : `gRPC status ${route.fault.abort.grpcStatus ?? '?'}`}) before it reaches a destination`);
  }
  if (route.redirect !== undefined) {
    const redirect = redirectResponse(route.redirect, { scheme: view.scheme, authority, path: view.path });
    return { ...matched, outcome: 'redirect', localReply: redirect.status, redirect };
  }
  if (route.directResponse !== undefined) {
    return { ...matched, outcome: 'direct-response', localReply: route.directResponse.status, directResponse: { status: route.directResponse.status, body: route.directResponse.body ?? (route.directResponse.bodyBase64 === undefined ? null : `(${Buffer.from(route.directResponse.bodyBase64, 'base64').length} bytes)`) } };
  }

  const destinations = route.route.map((d) => destinationOf(d, clusters, matched.notes));
  if (route.route.length === 0) matched.notes.push('the route has no destination: the proxy answers 503 (no cluster)');
  if (route.route.length > 1 && route.route.every((d) => d.weight <= 0)) matched.notes.push('every destination has weight 0: the proxy answers 503 (no cluster)');
  const hashed = destinations.some((d) => d.loadBalancer !== null && 'consistentHash' in d.loadBalancer);
  return {
    ...matched,
    outcome: 'routed',
    destinations,
    timeout: route.timeoutMs !== undefined && route.timeoutMs > 0 ? formatDuration(route.timeoutMs) : null,
    retries: retriesOf(route.retries, hashed),
    mirror: route.mirrors.map((m) => ({ host: m.host, subset: m.subset ?? null, port: m.port, percentage: m.percentage, cluster: m.cluster })),
    rewrite: route.rewrite ?? null,
  };
}

/** The fields that are empty until a step fills them. */
function empty(): Pick<RouteExplanation, 'virtualService' | 'route' | 'destinations' | 'timeout' | 'retries' | 'fault' | 'mirror' | 'match' | 'noMatch' | 'redirect' | 'directResponse' | 'rewrite' | 'localReply'> {
  return { virtualService: null, route: null, destinations: [], timeout: null, retries: null, fault: null, mirror: [], match: null, noMatch: null, redirect: null, directResponse: null, rewrite: null, localReply: null };
}

/** A name the proxy does not know: the egress policy decides (Istio's PassthroughCluster or BlackHole). */
function unregistered(
  snapshot: RouteCheckSnapshot,
  input: RouteCheckRequest,
  authority: string,
  base: { from: string; notes: string[] },
  policyOf: (decision: EgressDecision) => RouteExplanation['egressPolicy'],
): RouteExplanation {
  const { host, port } = splitAuthority(authority, HTTP_DEFAULT_PORT);
  const decision = egressDecision(snapshot.outbound.traffic, { host, registered: false });
  const notes = [...base.notes, ...lookupHints(snapshot, host, port)];
  const request: RouteExplanation['request'] =
    input.tcp === true ? { host: input.host, port, protocol: 'TCP' } : { host: input.host, port, protocol: 'HTTP', method: input.method ?? 'GET', path: input.path ?? '/' };
  const common = { ...empty(), from: base.from, notes, request, service: null, egressPolicy: policyOf(decision) };
  if (!decision.allowed) {
    return { ...common, outcome: 'blocked', egress: decision.reason, localReply: decision.status, explanation: `blocked: ${decision.reason}` };
  }
  notes.push('passthrough traffic gets no route-level settings: no retries, timeout, fault or mirror, and plain TCP/HTTP to the original address (no mTLS)');
  return {
    ...common,
    outcome: 'passthrough',
    egress: 'allowed',
    explanation: `passthrough: ${decision.reason}`,
    destinations: [
      { host, subset: null, port, weight: 100, cluster: 'PassthroughCluster', loadBalancer: null, connectionPool: null, outlierDetection: null, destinationRule: null, tls: 'DISABLE', location: null, endpoints: [{ address: host, port, workload: '(original destination)' }] },
    ],
  };
}

/** Why a name did not resolve, when the snapshot suggests a near miss (another port, another namespace). */
function lookupHints(snapshot: RouteCheckSnapshot, host: string, port: number): string[] {
  const lower = host.toLowerCase();
  const hints: string[] = [];
  for (const service of snapshot.outbound.services) {
    const names = [service.host, ...service.aliases].map((n) => n.toLowerCase());
    if (names.includes(lower)) {
      hints.push(`${service.host} is registered but has no port ${port} (its ports: ${service.ports.map((p) => `${p.number} ${p.name}`).join(', ')}); the proxy treats the request as unregistered`);
    } else if (!lower.includes('.') && service.host.toLowerCase().startsWith(`${lower}.`)) {
      hints.push(`the short name ${host} resolves only in the caller's namespace ${snapshot.workload.namespace} (${host}.${snapshot.workload.namespace}.svc.cluster.local); did you mean ${service.host}?`);
    }
  }
  return hints;
}

function explainTcp(
  table: CompiledRouteTable,
  target: ResolvedTarget,
  source: SourceView,
  clusters: ReadonlyMap<string, ClusterSnapshot>,
  common: Omit<RouteExplanation, 'outcome' | 'explanation' | 'localReply'>,
): RouteExplanation {
  const selection = selectL4Route(table, { port: target.port.number, source }, 'tcp');
  if (!selection.matched) {
    // The proxy closes the connection: there is no status to answer with.
    return { ...common, outcome: 'no-route', localReply: null, explanation: selection.explanation, noMatch: selection.routes.map((r) => ({ route: r.route, failures: [...r.failures] })) };
  }
  const notes = [...common.notes, 'a TCP connection has no HTTP timeout, retries, fault or mirror; it is closed when its destination has no healthy endpoint'];
  return {
    ...common,
    notes,
    outcome: 'routed',
    localReply: null,
    route: table.table.virtualService === undefined ? 'default' : selection.route.index,
    explanation: selection.explanation,
    match: { index: selection.matchIndex ?? null, conditions: [] },
    destinations: selection.route.route.map((d) => destinationOf(d, clusters, notes)),
  };
}

function serviceOf(target: ResolvedTarget): NonNullable<RouteExplanation['service']> {
  return {
    host: target.service.host,
    namespace: target.service.namespace,
    location: target.service.location,
    port: target.port.number,
    portName: target.port.name,
    protocol: target.port.protocol,
  };
}

function routeId(name: string | undefined, index: number): string | number {
  return name === undefined || name === '' ? index : name;
}

function destinationOf(destination: RouteDestinationSnapshot, clusters: ReadonlyMap<string, ClusterSnapshot>, notes: string[]): DestinationExplanation {
  const cluster = clusters.get(destination.cluster);
  const subset = destination.subset ?? null;
  const what = `${destination.host}:${destination.port}${subset === null ? '' : ` subset ${subset}`}`;
  if (cluster === undefined) {
    notes.push(`${what} has no cluster: requests to it get 503 (NC)`);
  } else if (cluster.endpoints.length === 0) {
    notes.push(`${what} has no endpoints${subset === null ? '' : ` (no endpoint carries the subset's labels, or no DestinationRule defines subset ${subset})`}: requests to it get 503 no healthy upstream (UH)`);
  }
  return {
    host: destination.host,
    subset,
    port: destination.port,
    weight: destination.weight,
    cluster: destination.cluster,
    loadBalancer: cluster?.loadBalancer ?? null,
    connectionPool: cluster?.connectionPool ?? null,
    outlierDetection: cluster?.outlierDetection ?? null,
    destinationRule: cluster?.destinationRule ?? null,
    tls: cluster === undefined ? null : cluster.tls.mode,
    location: cluster?.location ?? null,
    endpoints: cluster === undefined ? [] : lbEndpoints(cluster.endpoints, cluster.targetPortName, cluster.port).map((e) => ({ address: e.endpoint.address, port: e.port, workload: e.endpoint.workload })),
  };
}

function retriesOf(retries: HttpRetrySnapshot | undefined, consistentHash: boolean): RetriesExplanation {
  const policy = retries ?? ISTIO_DEFAULT_RETRY;
  return {
    attempts: policy.attempts,
    perTryTimeout: policy.perTryTimeoutMs !== undefined && policy.perTryTimeoutMs > 0 ? formatDuration(policy.perTryTimeoutMs) : null,
    retryOn: [...policy.retryOn],
    retriableStatusCodes: [...policy.retriableStatusCodes],
    backoffBase: formatDuration(policy.backoffBaseMs),
    retryIgnorePreviousHosts: policy.retryIgnorePreviousHosts ?? !consistentHash,
    default: retries === undefined,
  };
}

function faultOf(route: HttpRouteSnapshot): FaultExplanation | null {
  const fault = route.fault;
  if (fault === undefined || (fault.delay === undefined && fault.abort === undefined)) return null;
  return {
    ...(fault.delay === undefined ? {} : { delay: { fixedDelay: formatDuration(fault.delay.fixedDelayMs), percentage: fault.delay.percentage } }),
    ...(fault.abort === undefined
      ? {}
      : {
          abort: {
            ...(fault.abort.httpStatus === undefined ? {} : { httpStatus: fault.abort.httpStatus }),
            ...(fault.abort.grpcStatus === undefined ? {} : { grpcStatus: fault.abort.grpcStatus }),
            percentage: fault.abort.percentage,
          },
        }),
  };
}

function hasPort(host: string): boolean {
  return /:\d+$/.test(host);
}

/** One line about a load-balancing policy: `ROUND_ROBIN`, `consistent hash on header x-user (ring ≥ 1024)`. */
export function describeLoadBalancer(lb: LoadBalancerSnapshot): string {
  if ('simple' in lb) return lb.simple;
  const hash = lb.consistentHash;
  const on =
    'httpHeaderName' in hash
      ? `header ${hash.httpHeaderName}`
      : 'httpCookie' in hash
        ? `cookie ${hash.httpCookie.name}${hash.httpCookie.ttlMs === undefined ? '' : ` (ttl ${formatDuration(hash.httpCookie.ttlMs)})`}`
        : 'useSourceIp' in hash
          ? 'source IP'
          : `query parameter ${hash.httpQueryParameterName}`;
  return `consistent hash on ${on} (ring ≥ ${lb.minimumRingSize})`;
}

/** The connection pool limits that are set, or that none are (Envoy's defaults: effectively unlimited). */
export function describeConnectionPool(pool: ConnectionPoolSnapshot): string {
  const parts: string[] = [];
  if (pool.maxConnections !== undefined) parts.push(`maxConnections ${pool.maxConnections}`);
  if (pool.connectTimeoutMs !== undefined) parts.push(`connectTimeout ${formatDuration(pool.connectTimeoutMs)}`);
  if (pool.http1MaxPendingRequests !== undefined) parts.push(`http1MaxPendingRequests ${pool.http1MaxPendingRequests}`);
  if (pool.http2MaxRequests !== undefined) parts.push(`http2MaxRequests ${pool.http2MaxRequests}`);
  if (pool.maxRequestsPerConnection !== undefined) parts.push(`maxRequestsPerConnection ${pool.maxRequestsPerConnection}`);
  if (pool.maxRetries !== undefined) parts.push(`maxRetries ${pool.maxRetries}`);
  if (pool.idleTimeoutMs !== undefined) parts.push(`idleTimeout ${formatDuration(pool.idleTimeoutMs)}`);
  return parts.length === 0 ? 'no limits (Envoy defaults)' : `${parts.join(', ')} (beyond: 503, flag UO)`;
}

/** Outlier detection in one line, with the defaults Envoy fills in. */
export function describeOutlierDetection(outlier: OutlierDetectionSnapshot | null): string {
  if (outlier === null) return 'off';
  const parts = [
    `consecutive5xxErrors ${outlier.consecutive5xxErrors ?? '5 (default)'}`,
    ...(outlier.consecutiveGatewayErrors === undefined || outlier.consecutiveGatewayErrors === 0 ? [] : [`consecutiveGatewayErrors ${outlier.consecutiveGatewayErrors}`]),
    `interval ${formatDuration(outlier.intervalMs)}`,
    `baseEjectionTime ${formatDuration(outlier.baseEjectionTimeMs)}`,
    `maxEjectionPercent ${outlier.maxEjectionPercent}`,
    `minHealthPercent ${outlier.minHealthPercent}`,
  ];
  return parts.join(', ');
}
