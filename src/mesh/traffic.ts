/**
 * Traffic compile: VirtualServices, DestinationRules, the Sidecar and the registry → the
 * TrafficSnapshot of one proxy. One route table per (service, port) the proxy may call, one
 * cluster per (service, port, subset) a route or mirror names plus the default subset of each
 * service port. Pure and deterministic.
 */
import type { ConfigSet } from '../api/config-set.js';
import type { DestinationRuleResource, SidecarResource, VirtualServiceResource } from '../api/resources.js';
import type { Destination } from '../api/schemas/traffic.js';
import type { DestinationResolver } from './http-routes.js';
import { httpRouteSnapshot, tcpRouteSnapshot } from './http-routes.js';
import { compareCreation, exportedTo, hostMatchScore, resolveShortName } from './hosts.js';
import { compareStrings, labelsMatch, type RegistryService, type RegistryWorkload } from './registry.js';
import type { ClusterSnapshot, EndpointSnapshot, RouteDestinationSnapshot, RouteTableSnapshot, TrafficSnapshot } from './snapshot.js';
import { connectionPoolSnapshot, effectivePolicy, loadBalancerSnapshot, outlierDetectionSnapshot } from './traffic-policy.js';

export function clusterName(port: number, subset: string | undefined, host: string): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

export function compileTraffic(config: ConfigSet, workload: RegistryWorkload, services: readonly RegistryService[], sidecar: SidecarResource | undefined): TrafficSnapshot {
  const clusters = new Map<string, { service: RegistryService | undefined; host: string; port: number; subset: string | undefined }>();
  const want = (service: RegistryService | undefined, host: string, port: number, subset: string | undefined): string => {
    const name = clusterName(port, subset, host);
    if (!clusters.has(name)) clusters.set(name, { service, host, port, subset });
    return name;
  };

  const virtualServices = visibleVirtualServices(config, workload.namespace);
  const routeTables: RouteTableSnapshot[] = [];
  for (const service of services) {
    const virtualService = bestMatch(virtualServices, service, workload.namespace, (vs) => (vs.spec.hosts ?? []).map((h) => resolveShortName(h, ns(vs))));
    for (const port of service.ports) {
      const defaultDestination: RouteDestinationSnapshot = { cluster: want(service, service.host, port.number, undefined), host: service.host, port: port.number, weight: 100 };
      if (virtualService === undefined) {
        routeTables.push(defaultTable(service.host, port.number, defaultDestination));
        continue;
      }
      const resolve: DestinationResolver = (destination) => resolveDestination(destination, ns(virtualService), service, port.number, services, want);
      const spec = virtualService.spec;
      const table = defaultTable(service.host, port.number, defaultDestination);
      routeTables.push({
        host: service.host,
        port: port.number,
        virtualService: `${ns(virtualService)}/${virtualService.metadata.name}`,
        http: spec.http === undefined || spec.http.length === 0 ? table.http : spec.http.map((route, index) => httpRouteSnapshot(route, index, resolve)),
        tcp: spec.tcp === undefined || spec.tcp.length === 0 ? table.tcp : spec.tcp.map((route, index) => tcpRouteSnapshot(route, index, resolve)),
        tls: (spec.tls ?? []).map((route, index) => tcpRouteSnapshot(route, index, resolve)),
      });
    }
  }

  const destinationRules = visibleDestinationRules(config, workload);
  const clusterSnapshots = [...clusters.entries()]
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([name, wanted]) => clusterSnapshot(name, wanted, wanted.service ? bestDestinationRule(destinationRules, wanted.service, workload.namespace, config.mesh.rootNamespace) : undefined));

  const mode = sidecar?.spec.outboundTrafficPolicy?.mode;
  const meshMode = config.meshConfig?.spec.outboundTrafficPolicy?.mode;
  return {
    routeTables,
    clusters: clusterSnapshots,
    outboundTrafficPolicy: mode ?? config.mesh.outboundTrafficPolicy,
    outboundTrafficPolicySource:
      mode !== undefined ? `Sidecar ${ns(sidecar as SidecarResource)}/${(sidecar as SidecarResource).metadata.name}` : meshMode !== undefined ? `MeshConfig ${config.meshConfig?.metadata.name ?? ''}` : 'Istio default',
  };
}

function ns(resource: { metadata: { namespace?: string } }): string {
  return resource.metadata.namespace ?? 'default';
}

function defaultTable(host: string, port: number, destination: RouteDestinationSnapshot): RouteTableSnapshot {
  return { host, port, http: [{ name: 'default', index: 0, match: [], route: [destination], mirrors: [] }], tcp: [{ index: 0, match: [], route: [destination] }], tls: [] };
}

/** VirtualServices that apply to sidecars (no gateways, or the `mesh` gateway) and are exported to the namespace. */
function visibleVirtualServices(config: ConfigSet, namespace: string): VirtualServiceResource[] {
  return config.virtualServices.filter((vs) => {
    const gateways = vs.spec.gateways ?? [];
    return (gateways.length === 0 || gateways.includes('mesh')) && exportedTo(vs.spec.exportTo, ns(vs), namespace);
  });
}

function visibleDestinationRules(config: ConfigSet, workload: RegistryWorkload): DestinationRuleResource[] {
  return config.destinationRules.filter((dr) => {
    const selector = dr.spec.workloadSelector?.matchLabels;
    if (selector !== undefined && Object.keys(selector).length > 0) return ns(dr) === workload.namespace && labelsMatch(selector, workload.labels);
    return exportedTo(dr.spec.exportTo, ns(dr), workload.namespace);
  });
}

/**
 * How specifically a resource's hosts (short names already resolved) name the service. As in
 * Istio, and as validation checks them, only the full host counts: `reviews.default` is a
 * different name from `reviews.default.svc.cluster.local`.
 */
function matchScore(patterns: readonly string[], service: RegistryService): number | undefined {
  let best: number | undefined;
  for (const pattern of patterns) {
    const score = hostMatchScore(pattern, service.host);
    if (score !== undefined && (best === undefined || score > best)) best = score;
  }
  return best;
}

/**
 * The resource whose hosts name the service most specifically; ties go to the caller's own
 * namespace, then the oldest, then the first by namespace/name (Istio's conflict rule).
 */
function bestMatch<R extends { metadata: { name: string; namespace?: string; creationTimestamp?: string } }>(
  resources: readonly R[],
  service: RegistryService,
  callerNamespace: string,
  hostsOf: (resource: R) => string[],
  rank: (resource: R) => number = (r) => (ns(r) === callerNamespace ? 0 : 1),
  namespaceFirst = false,
): R | undefined {
  let best: { resource: R; score: number } | undefined;
  for (const resource of resources) {
    const score = matchScore(hostsOf(resource), service);
    if (score === undefined) continue;
    if (best === undefined || isBetter(resource, score, best.resource, best.score, rank, namespaceFirst)) best = { resource, score };
  }
  return best?.resource;
}

function isBetter<R extends { metadata: { name: string; namespace?: string; creationTimestamp?: string } }>(a: R, scoreA: number, b: R, scoreB: number, rank: (r: R) => number, namespaceFirst: boolean): boolean {
  if (namespaceFirst && rank(a) !== rank(b)) return rank(a) < rank(b);
  if (scoreA !== scoreB) return scoreA > scoreB;
  if (rank(a) !== rank(b)) return rank(a) < rank(b);
  const age = compareCreation(a.metadata.creationTimestamp, b.metadata.creationTimestamp);
  if (age !== 0) return age < 0;
  return compareStrings(`${ns(a)}/${a.metadata.name}`, `${ns(b)}/${b.metadata.name}`) < 0;
}

/**
 * Istio's DestinationRule lookup: the caller's namespace first, then the service's, then the
 * root namespace, then any other that exports it; within one namespace the most specific host.
 */
function bestDestinationRule(rules: readonly DestinationRuleResource[], service: RegistryService, callerNamespace: string, rootNamespace: string): DestinationRuleResource | undefined {
  const rank = (dr: DestinationRuleResource): number => (ns(dr) === callerNamespace ? 0 : ns(dr) === service.namespace ? 1 : ns(dr) === rootNamespace ? 2 : 3);
  return bestMatch(rules, service, callerNamespace, (dr) => [resolveShortName(dr.spec.host, ns(dr))], rank, true);
}

/**
 * A route destination → its cluster. The host resolves against the VirtualService's namespace;
 * the port is the one written, else the route table's own port when the destination is the
 * same service or serves that port, else the destination's only port.
 */
function resolveDestination(
  destination: Destination,
  namespace: string,
  tableService: RegistryService,
  tablePort: number,
  services: readonly RegistryService[],
  want: (service: RegistryService | undefined, host: string, port: number, subset: string | undefined) => string,
): Omit<RouteDestinationSnapshot, 'weight' | 'headers'> {
  const written = resolveShortName(destination.host, namespace);
  const service = services.find((s) => s.host === written);
  const host = service?.host ?? written;
  const port =
    destination.port?.number ??
    (service === tableService || service?.ports.some((p) => p.number === tablePort) ? tablePort : service?.ports.length === 1 ? (service.ports[0]?.number ?? tablePort) : tablePort);
  const subset = destination.subset === undefined || destination.subset === '' ? undefined : destination.subset;
  return { cluster: want(service, host, port, subset), host, ...(subset === undefined ? {} : { subset }), port };
}

function clusterSnapshot(
  name: string,
  wanted: { service: RegistryService | undefined; host: string; port: number; subset: string | undefined },
  rule: DestinationRuleResource | undefined,
): ClusterSnapshot {
  const { service, host, port, subset } = wanted;
  const servicePort = service?.ports.find((p) => p.number === port);
  const policy = effectivePolicy(rule?.spec, port, subset);
  const subsetLabels = subset === undefined ? undefined : rule?.spec.subsets?.find((s) => s.name === subset)?.labels;
  // A subset no DestinationRule defines selects nothing (validation reports it where it can).
  const knownSubset = subset === undefined || subsetLabels !== undefined || rule?.spec.subsets?.some((s) => s.name === subset) === true;
  const endpoints = !service || !knownSubset ? [] : endpointsOf(service, servicePort?.name ?? '', port).filter((e) => labelsMatch(subsetLabels, e.labels));
  const location = service?.location ?? 'MESH_INTERNAL';
  const outlier = outlierDetectionSnapshot(policy.outlierDetection);
  return {
    name,
    host,
    port,
    ...(subset === undefined ? {} : { subset }),
    protocol: servicePort?.protocol ?? 'UNKNOWN',
    location,
    resolution: service?.resolution ?? 'STATIC',
    endpoints,
    targetPortName: servicePort?.targetPortName ?? '',
    tls: clusterTls(location, policy.tls, host),
    loadBalancer: loadBalancerSnapshot(policy.loadBalancer),
    connectionPool: connectionPoolSnapshot(policy.connectionPool),
    ...(outlier === undefined ? {} : { outlierDetection: outlier }),
    ...(rule === undefined ? {} : { destinationRule: `${ns(rule)}/${rule.metadata.name}` }),
  };
}

/**
 * A service's endpoints. An external service with no endpoints (resolution NONE or DNS) is
 * reached at its own host name, as Envoy's DNS / original-destination clusters do.
 */
function endpointsOf(service: RegistryService, portName: string, port: number): EndpointSnapshot[] {
  if (service.endpoints.length > 0 || service.location === 'MESH_INTERNAL' || service.resolution === 'STATIC' || service.host.startsWith('*')) {
    return service.endpoints.map((e) => ({ ...e }));
  }
  // The ServiceEntry port's targetPort, if any, is where the host listens (Istio's TLS origination example maps 80 → 443).
  const declared = service.declaredPorts.find((p) => p.name === portName);
  return [{ address: service.host, ports: { [portName]: declared?.targetPort ?? port }, labels: {}, identity: '', workload: `${service.source} (${service.host})` }];
}

function clusterTls(location: ClusterSnapshot['location'], tls: { mode?: string | undefined; sni?: string | undefined } | undefined, host: string): ClusterSnapshot['tls'] {
  if (location === 'MESH_INTERNAL') return { mode: tls?.mode === 'DISABLE' ? 'DISABLE' : 'ISTIO_MUTUAL' };
  // Trellis originates TLS with the system CAs; MUTUAL origination (client certificates) is SIMPLE plus a certificate it does not have, so the server refuses: closed, not downgraded.
  if (tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL') return { mode: 'SIMPLE', sni: tls.sni ?? host };
  return { mode: 'DISABLE' };
}
