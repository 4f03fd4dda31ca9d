/**
 * Istio's standard metric labels, derived the way Istio's stats filter derives them
 * (istio/proxy `source/extensions/filters/http/istio_stats/istio_stats.cc`, istio/istio
 * `pkg/model` CanonicalService): the reporting proxy fills its own side from its node metadata
 * and the other side from the peer's metadata; anything missing is "unknown" (a missing
 * canonical revision is "latest"). Pure: no I/O, no prom-client.
 */

export const UNKNOWN = 'unknown';

/** What a proxy knows about a workload: its own from its bootstrap, a peer's from the registry. */
export interface WorkloadMetadata {
  /** Workload name (the Deployment on Kubernetes, the WorkloadEntry otherwise; see {@link workloadNameOf}). */
  readonly name?: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** `global.multiCluster.clusterName` in Istio; Trellis's cluster/mesh name. */
  readonly cluster?: string;
}

/** `sidecar` inbound = destination, `sidecar` outbound = source, gateway/waypoint = waypoint (Istio's ServerGateway). */
export type Reporter = 'source' | 'destination' | 'waypoint';

/** The service a request was addressed to, as the route resolved it. */
export interface DestinationService {
  /** FQDN, e.g. `reviews.bookinfo.svc.cluster.local`. */
  readonly host: string;
  /** Short name, e.g. `reviews`; defaults to the host's first label. */
  readonly name?: string;
  readonly namespace?: string;
}

/** The connection-level facts label derivation needs (the parts that are not per request). */
export interface PeerContext {
  readonly reporter: Reporter;
  /** Metadata of the peer: the downstream for destination/waypoint reporters, the upstream for source. */
  readonly peer?: WorkloadMetadata;
  /** For a waypoint: the upstream endpoint it forwarded to. */
  readonly upstream?: WorkloadMetadata;
  /** The peer's SPIFFE ID from its certificate (URI SAN); absent for plaintext. */
  readonly peerPrincipal?: string;
  /** This proxy's own SPIFFE ID as presented on the connection. */
  readonly localPrincipal?: string;
  /** For waypoints: the upstream's SPIFFE ID. */
  readonly upstreamPrincipal?: string;
  readonly service?: DestinationService;
}

/** Label names every Istio standard metric carries, in Istio's order. */
export const PEER_LABEL_NAMES = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

/** HTTP/gRPC metrics add these two; TCP metrics do not carry them. */
export const HTTP_LABEL_NAMES = [...PEER_LABEL_NAMES, 'response_code', 'grpc_response_status'] as const;
export const TCP_LABEL_NAMES = PEER_LABEL_NAMES;

export type PeerLabelName = (typeof PEER_LABEL_NAMES)[number];
export type HttpLabelName = (typeof HTTP_LABEL_NAMES)[number];
export type PeerLabels = Record<PeerLabelName, string>;
export type HttpLabels = Record<HttpLabelName, string>;

const CANONICAL_NAME_LABELS = ['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app'] as const;
const CANONICAL_REVISION_LABELS = ['service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version'] as const;

function firstLabel(labels: Readonly<Record<string, string>> | undefined, keys: readonly string[]): string | undefined {
  if (labels === undefined) return undefined;
  for (const key of keys) {
    if (Object.hasOwn(labels, key)) return labels[key];
  }
  return undefined;
}

/**
 * Istio's canonical service: the `service.istio.io/canonical-name` label, else
 * `app.kubernetes.io/name`, else `app`, else the workload name; the revision from
 * `service.istio.io/canonical-revision`, else `app.kubernetes.io/version`, else `version`, else "latest".
 */
export function canonicalService(labels: Readonly<Record<string, string>> | undefined, workloadName: string | undefined): { name: string | undefined; revision: string } {
  return {
    name: firstLabel(labels, CANONICAL_NAME_LABELS) ?? workloadName,
    revision: firstLabel(labels, CANONICAL_REVISION_LABELS) ?? 'latest',
  };
}

/**
 * Istio's workload name for a WorkloadEntry: the auto-registration group annotation, else the
 * `service.istio.io/workload-name` label, else the entry's own name.
 */
export function workloadNameOf(entryName: string, labels?: Readonly<Record<string, string>>, annotations?: Readonly<Record<string, string>>): string {
  return firstLabel(annotations, ['istio.io/autoRegistrationGroup']) ?? firstLabel(labels, ['service.istio.io/workload-name']) ?? entryName;
}

/** The namespace in a SPIFFE ID `spiffe://<td>/ns/<namespace>/sa/<sa>`, as Istio reads it (no validation). */
export function namespaceFromPrincipal(principal: string | undefined): string | undefined {
  if (principal === undefined) return undefined;
  const at = principal.indexOf('/ns/');
  if (at < 0) return undefined;
  const start = at + 4;
  const end = principal.indexOf('/', start);
  const ns = end < 0 ? principal.slice(start) : principal.slice(start, end);
  return ns === '' ? undefined : ns;
}

/** Empty and missing are both "not known" to Istio. */
function or(value: string | undefined, fallback: string): string {
  return value === undefined || value === '' ? fallback : value;
}

interface Side {
  workload: string;
  namespace: string;
  principal: string;
  app: string;
  version: string;
  canonicalService: string;
  canonicalRevision: string;
  cluster: string;
}

/** One side of the edge from its metadata; `principalNamespace` wins over metadata like in Istio. */
function side(meta: WorkloadMetadata | undefined, principal: string | undefined): Side {
  const canonical = canonicalService(meta?.labels, meta?.name);
  return {
    workload: or(meta?.name, UNKNOWN),
    namespace: or(namespaceFromPrincipal(principal) ?? meta?.namespace, UNKNOWN),
    principal: or(principal, UNKNOWN),
    app: or(meta?.labels?.['app'], UNKNOWN),
    version: or(meta?.labels?.['version'], UNKNOWN),
    canonicalService: or(canonical.name, UNKNOWN),
    canonicalRevision: meta === undefined ? 'latest' : canonical.revision,
    cluster: or(meta?.cluster, UNKNOWN),
  };
}

function firstHostLabel(host: string): string {
  const dot = host.indexOf('.');
  return dot < 0 ? host : host.slice(0, dot);
}

/**
 * The peer labels of one edge as seen by `local`. `requestProtocol` is `http`, `grpc` or `tcp`;
 * `responseFlags` is Envoy's short string (`-` when there are none).
 */
export function peerLabels(local: WorkloadMetadata, context: PeerContext, requestProtocol: 'http' | 'grpc' | 'tcp', responseFlags: string): PeerLabels {
  const { reporter } = context;
  let source: Side;
  let destination: Side;
  let serviceHost: string;
  let serviceName: string;
  let serviceNamespace: string;
  let security: string;
  if (reporter === 'source') {
    source = side(local, context.localPrincipal);
    destination = side(context.peer, context.peerPrincipal);
    serviceHost = or(context.service?.host, UNKNOWN);
    serviceName = context.service === undefined ? UNKNOWN : or(context.service.name, firstHostLabel(context.service.host));
    serviceNamespace = or(context.service?.namespace, destination.namespace);
    // The client cannot see the server's policy, so Istio reports "unknown" from the source.
    security = UNKNOWN;
  } else {
    source = side(context.peer, context.peerPrincipal);
    destination =
      reporter === 'destination' ? side(local, context.localPrincipal) : side(context.upstream, context.upstreamPrincipal);
    serviceHost = or(context.service?.host, destination.canonicalService);
    serviceName = context.service === undefined ? destination.canonicalService : or(context.service.name, firstHostLabel(context.service.host));
    serviceNamespace = or(context.service?.namespace ?? local.namespace, UNKNOWN);
    const peerSan = context.peerPrincipal ?? '';
    const localSan = context.localPrincipal ?? '';
    security = peerSan !== '' && localSan !== '' ? 'mutual_tls' : 'none';
  }
  return {
    reporter,
    source_workload: source.workload,
    source_canonical_service: source.canonicalService,
    source_canonical_revision: source.canonicalRevision,
    source_workload_namespace: source.namespace,
    source_principal: source.principal,
    source_app: source.app,
    source_version: source.version,
    source_cluster: source.cluster,
    destination_workload: destination.workload,
    destination_workload_namespace: destination.namespace,
    destination_principal: destination.principal,
    destination_app: destination.app,
    destination_version: destination.version,
    destination_service: serviceHost,
    destination_canonical_service: destination.canonicalService,
    destination_canonical_revision: destination.canonicalRevision,
    destination_service_name: serviceName,
    destination_service_namespace: serviceNamespace,
    destination_cluster: destination.cluster,
    request_protocol: requestProtocol,
    response_flags: or(responseFlags, '-'),
    connection_security_policy: security,
  };
}

/** Envoy's `%RESPONSE_FLAGS%` short form: comma-joined, `-` when there are none. */
export function responseFlagsString(flags: readonly string[] | undefined): string {
  return flags === undefined || flags.length === 0 ? '-' : flags.join(',');
}
