/**
 * The per-proxy snapshot: everything one proxy needs and nothing more, as plain JSON. The
 * control plane compiles it from resources + registry (pure), pushes it in four parts, one per
 * resource type, and the proxy applies each part atomically. Proxies never read Istio YAML.
 */
import type { AllowSampling } from '../api/audit-config.js';
import type { SpiffeBundleJson } from '../identity/bundle.js';
import type { RevocationListJson } from '../identity/revocation.js';
import type { WorkloadPolicy } from '../policy/inbound.js';

/** The resource types of the discovery protocol, pushed and acknowledged independently. */
export const RESOURCE_TYPES = ['workload', 'inbound', 'outbound', 'trust'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** How a port's traffic is parsed. UNKNOWN: sniffed (HTTP/1.1, HTTP/2 prior knowledge, else TCP). */
export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP' | 'UNKNOWN';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** Who this proxy is: from its WorkloadEntry. */
export interface WorkloadSnapshot {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** The SPIFFE ID its SVID must carry. */
  identity: string;
  /** Where mesh peers reach this workload's sidecar (WorkloadEntry address). */
  address: string;
  trustDomain: string;
}

export interface InboundPortSnapshot {
  /** Port name from the WorkloadEntry (`http`, `grpc-api`, …). */
  name: string;
  /** The port the sidecar listens on for mesh traffic (the WorkloadEntry's port). */
  port: number;
  protocol: PortProtocol;
  /** Effective PeerAuthentication mode for this port. */
  mtls: MtlsMode;
}

/**
 * What the inbound side enforces. `policy` is the serializable output of the policy selection
 * step in src/policy (`workloadPolicy`: authorization policies, effective PeerAuthentication,
 * RequestAuthentication JWT rules and mesh options for this workload); the proxy compiles it
 * once per version with `compileWorkloadPolicy`.
 */
export interface InboundSnapshot {
  ports: InboundPortSnapshot[];
  /** Local rate limits on this workload's inbound requests (issue 5); absent: none. */
  rateLimits?: RateLimitSnapshot[];
  /** MeshConfig `audit.allows`: which authorization allows the proxy audits; absent: `none`. */
  audit?: { allows: AllowSampling };
  policy: WorkloadPolicy;
}

export interface EndpointSnapshot {
  address: string;
  /**
   * Service port name → the port this endpoint serves it on, resolved as Istio does: the
   * WorkloadEntry's port of that name, else the ServicePort's targetPort, else its number.
   */
  ports: Record<string, number>;
  labels: Record<string, string>;
  /** The SPIFFE ID the endpoint's sidecar must present. */
  identity: string;
  /** `namespace/name` of the WorkloadEntry, for logs. */
  workload: string;
  weight?: number;
}

export interface ServicePortSnapshot {
  number: number;
  name: string;
  protocol: PortProtocol;
  /** The key of `EndpointSnapshot.ports` that holds this port's endpoint port (the port's name). */
  targetPortName: string;
}

export interface ServiceSnapshot {
  /** The service host as declared (e.g. `reviews.default.svc.cluster.local`). */
  host: string;
  /** Other names the workload may use for it (`reviews`, `reviews.default`, …). */
  aliases: string[];
  namespace: string;
  /**
   * ServiceEntry location. MESH_INTERNAL: endpoints run sidecars, the proxy originates mTLS and
   * checks `identities`. MESH_EXTERNAL (Istio's default): endpoints are outside the mesh.
   */
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  ports: ServicePortSnapshot[];
  endpoints: EndpointSnapshot[];
  /** Identities allowed to serve this service (endpoint identities + subjectAltNames). */
  identities: string[];
}

export interface OutboundSnapshot {
  services: ServiceSnapshot[];
  /**
   * Traffic management (issue 5). Absent in snapshots from control planes that predate it;
   * then every service gets its default route (all endpoints, round robin).
   */
  traffic?: TrafficSnapshot;
}

// ---- Traffic management: the compiled, resolved form of VirtualService, DestinationRule,
// Sidecar and RateLimit for one proxy. Durations are milliseconds, percentages 0-100,
// regular expressions are source strings (validated by the control plane, compiled by the
// proxy once per version). Names follow Istio's fields so they can be looked up there.

export interface TrafficSnapshot {
  /** One route table per (service host, service port) this proxy may call. */
  routeTables: RouteTableSnapshot[];
  /** One cluster per (service host, service port, subset); the default subset is ''. */
  clusters: ClusterSnapshot[];
  /** Sidecar `outboundTrafficPolicy.mode` (else MeshConfig's, else Istio's ALLOW_ANY). */
  outboundTrafficPolicy: 'REGISTRY_ONLY' | 'ALLOW_ANY';
  /** Where the setting came from, for explanations (`Sidecar ns/name`, `MeshConfig mesh`, `default`). */
  outboundTrafficPolicySource: string;
}

export interface RouteTableSnapshot {
  host: string;
  port: number;
  /** `namespace/name` of the VirtualService that defines these routes; absent: the default route. */
  virtualService?: string;
  http: HttpRouteSnapshot[];
  tcp: TcpRouteSnapshot[];
  tls: TlsRouteSnapshot[];
}

export interface StringMatchSnapshot {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface HttpMatchSnapshot {
  name?: string;
  uri?: StringMatchSnapshot;
  scheme?: StringMatchSnapshot;
  method?: StringMatchSnapshot;
  authority?: StringMatchSnapshot;
  /** Lower-case header names. */
  headers?: Record<string, StringMatchSnapshot>;
  withoutHeaders?: Record<string, StringMatchSnapshot>;
  queryParams?: Record<string, StringMatchSnapshot>;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  ignoreUriCase?: boolean;
}

export interface HeaderOperationsSnapshot {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface HeadersSnapshot {
  request?: HeaderOperationsSnapshot;
  response?: HeaderOperationsSnapshot;
}

export interface RouteDestinationSnapshot {
  /** The cluster name (see ClusterSnapshot.name). */
  cluster: string;
  host: string;
  subset?: string;
  port: number;
  /** 0-100; the weights of a route add up to 100. */
  weight: number;
  headers?: HeadersSnapshot;
}

export interface HttpRetrySnapshot {
  /** Retries after the first attempt (Envoy's num_retries); 0 disables retries. */
  attempts: number;
  perTryTimeoutMs?: number;
  /** Envoy/Istio condition names: 5xx, gateway-error, reset, connect-failure, retriable-4xx,
   * refused-stream, retriable-status-codes, cancelled, deadline-exceeded, internal,
   * resource-exhausted, unavailable; and bare status codes ("503"). */
  retryOn: string[];
  /** Status codes that `retriable-status-codes` (and bare codes in retryOn) retry. */
  retriableStatusCodes: number[];
  /** Base interval of the exponential backoff with jitter (Envoy default 25 ms). */
  backoffBaseMs: number;
  /**
   * Istio's `retryIgnorePreviousHosts`: retries avoid endpoints already tried. Absent: Istio's
   * default — true, except for destinations with consistent hashing.
   */
  retryIgnorePreviousHosts?: boolean;
}

export interface HttpFaultSnapshot {
  delay?: { fixedDelayMs: number; percentage: number };
  abort?: { httpStatus?: number; grpcStatus?: number; percentage: number };
}

export interface CorsPolicySnapshot {
  allowOrigins: StringMatchSnapshot[];
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
  allowCredentials?: boolean;
  /** Istio's `unmatchedPreflights`: preflights from disallowed origins go upstream (FORWARD, default) or get a plain 200 (IGNORE). */
  unmatchedPreflights?: 'FORWARD' | 'IGNORE';
}

export interface HttpRouteSnapshot {
  /** The route's `name`, else its index in the VirtualService's `http` list. */
  name?: string;
  index: number;
  /** Empty: matches every request. Several: any of them (OR). */
  match: HttpMatchSnapshot[];
  route: RouteDestinationSnapshot[];
  /** `protocolDefaultPort`: Istio's `derivePort: FROM_PROTOCOL_DEFAULT` — the Location carries no port. */
  redirect?: { uri?: string; authority?: string; port?: number; scheme?: string; redirectCode: number; protocolDefaultPort?: boolean };
  /** `body`: text as written (`body.string`); `bodyBase64`: bytes as written (`body.bytes`). */
  directResponse?: { status: number; body?: string; bodyBase64?: string };
  rewrite?: { uri?: string; authority?: string; uriRegexRewrite?: { match: string; rewrite: string } };
  /** Overall timeout; absent or 0: none (Istio's default for HTTP). */
  timeoutMs?: number;
  /** Absent: Istio's default policy (src/traffic/retry.ts ISTIO_DEFAULT_RETRY); `attempts: 0`: no retries. */
  retries?: HttpRetrySnapshot;
  fault?: HttpFaultSnapshot;
  mirrors: Array<{ cluster: string; host: string; subset?: string; port: number; percentage: number }>;
  corsPolicy?: CorsPolicySnapshot;
  headers?: HeadersSnapshot;
}

export interface L4MatchSnapshot {
  port?: number;
  destinationSubnets?: string[];
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  /** TLS routes only. */
  sniHosts?: string[];
}

export interface TcpRouteSnapshot {
  index: number;
  match: L4MatchSnapshot[];
  route: RouteDestinationSnapshot[];
}

export type TlsRouteSnapshot = TcpRouteSnapshot;

export type LoadBalancerSnapshot =
  | { simple: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' }
  | {
      consistentHash:
        | { httpHeaderName: string }
        | { httpCookie: { name: string; path?: string; ttlMs?: number } }
        | { useSourceIp: true }
        | { httpQueryParameterName: string };
      /** Ring size (Envoy's minimumRingSize; Istio default 1024). */
      minimumRingSize: number;
    };

export interface ConnectionPoolSnapshot {
  /** tcp.maxConnections: concurrent connections to the cluster (Envoy default 2^32-1). */
  maxConnections?: number;
  connectTimeoutMs?: number;
  /** http.http1MaxPendingRequests: requests waiting for a connection. */
  http1MaxPendingRequests?: number;
  /** http.http2MaxRequests: concurrent requests to the cluster. */
  http2MaxRequests?: number;
  maxRequestsPerConnection?: number;
  /** http.maxRetries: concurrent retries to the cluster. */
  maxRetries?: number;
  idleTimeoutMs?: number;
}

/** Absent fields take the defaults Envoy applies to Istio's config (see src/traffic/outlier.ts). */
export interface OutlierDetectionSnapshot {
  /** Absent: 5 (Envoy's default, enforced); 0: disabled. */
  consecutive5xxErrors?: number;
  /** Absent or 0: disabled. */
  consecutiveGatewayErrors?: number;
  /** Locally originated failures (connect failures, resets, timeouts) counted apart from 5xx. */
  splitExternalLocalOriginErrors?: boolean;
  /** With splitExternalLocalOriginErrors; absent: 5. */
  consecutiveLocalOriginFailures?: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}

export interface ClusterSnapshot {
  /** Envoy-style: `outbound|<port>|<subset>|<host>`. */
  name: string;
  host: string;
  port: number;
  subset?: string;
  protocol: PortProtocol;
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  /** For MESH_EXTERNAL: how endpoints are found (DNS resolves `host` at connect time). */
  resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  /** Endpoints of the subset; `ports` keyed like EndpointSnapshot.ports. */
  endpoints: EndpointSnapshot[];
  /** The endpoint port name for this service port. */
  targetPortName: string;
  /** ISTIO_MUTUAL inside the mesh; DISABLE / SIMPLE for external destinations. */
  tls: { mode: 'ISTIO_MUTUAL' | 'DISABLE' | 'SIMPLE'; sni?: string };
  loadBalancer: LoadBalancerSnapshot;
  connectionPool: ConnectionPoolSnapshot;
  outlierDetection?: OutlierDetectionSnapshot;
  /** `namespace/name` of the DestinationRule that shaped it, for explanations. */
  destinationRule?: string;
}

/** trellis.dev/v1alpha1 RateLimit, compiled for the inbound side of one workload. */
export interface RateLimitSnapshot {
  /** `namespace/name` of the RateLimit. */
  source: string;
  rules: Array<{
    /** Empty: every request. Same operation fields as AuthorizationPolicy `to.operation`. */
    match: { paths?: string[]; methods?: string[]; ports?: number[] };
    /** One bucket for the workload, or one per caller identity. */
    per: 'workload' | 'caller';
    maxTokens: number;
    tokensPerFill: number;
    fillIntervalMs: number;
  }>;
}

export interface TrustSnapshot {
  trustDomain: string;
  bundle: SpiffeBundleJson;
  revocations: RevocationListJson;
}

export interface ProxySnapshot {
  workload: WorkloadSnapshot;
  inbound: InboundSnapshot;
  outbound: OutboundSnapshot;
  trust: TrustSnapshot;
}

export type ResourceOfType<T extends ResourceType> = ProxySnapshot[T];
