/**
 * The service registry, built from WorkloadEntry and ServiceEntry as Istio does for VMs: which
 * services exist, which endpoints serve them, on which ports, with which identities, and who
 * may see them. Pure: a function of the validated config set.
 */
import type { ConfigSet } from '../api/config-set.js';
import type { ServiceEntryResource, WorkloadEntryResource } from '../api/resources.js';
import type { ServicePort, WorkloadEntrySpec } from '../api/schemas/networking.js';
import { compareCreation, exportedTo } from './hosts.js';
import type { EndpointSnapshot, PortProtocol, ServicePortSnapshot } from './snapshot.js';

export type ServiceLocation = 'MESH_INTERNAL' | 'MESH_EXTERNAL';
export type ServiceResolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';

/** A WorkloadEntry as the mesh sees it. */
export interface RegistryWorkload {
  readonly namespace: string;
  readonly name: string;
  readonly address: string;
  readonly labels: Readonly<Record<string, string>>;
  /** `default` when the WorkloadEntry names none, as in Kubernetes. */
  readonly serviceAccount: string;
  /** spiffe://<trust domain>/ns/<namespace>/sa/<service account> */
  readonly identity: string;
  readonly ports: Readonly<Record<string, number>>;
  readonly weight?: number;
}

/** One host of one ServiceEntry (a ServiceEntry with several hosts yields several services). */
export interface RegistryService {
  readonly host: string;
  readonly namespace: string;
  /** `ServiceEntry namespace/name`, for messages. */
  readonly source: string;
  readonly createdAt?: string;
  readonly location: ServiceLocation;
  /** How endpoints are found (ServiceEntry `resolution`, Istio's default NONE). */
  readonly resolution: ServiceResolution;
  /** Resolved exportTo: `*` (everyone), `.` (own namespace) and namespace names. */
  readonly exportTo: readonly string[];
  readonly ports: readonly ServicePortSnapshot[];
  readonly endpoints: readonly EndpointSnapshot[];
  /** Identities allowed to serve the service: endpoint identities (mesh-internal) and subjectAltNames. */
  readonly identities: readonly string[];
  /** The ServiceEntry's ports as written, for inbound protocol detection. */
  readonly declaredPorts: readonly ServicePort[];
}

export interface Registry {
  readonly trustDomain: string;
  /** Sorted by namespace, then name. */
  readonly workloads: readonly RegistryWorkload[];
  /** Sorted by host, then namespace, then source. */
  readonly services: readonly RegistryService[];
}

export const DEFAULT_SERVICE_ACCOUNT = 'default';

export function buildRegistry(config: ConfigSet): Registry {
  const trustDomain = config.mesh.trustDomain;
  const workloads = config.workloadEntries.map((entry) => toWorkload(entry, trustDomain)).sort(compareWorkloads);
  const services = config.serviceEntries.flatMap((entry) => toServices(entry, workloads, trustDomain)).sort(compareServices);
  return { trustDomain, workloads, services };
}

/** The workload named `namespace/name`, if the registry has it. */
export function findWorkload(registry: Registry, ref: string): RegistryWorkload | undefined {
  return registry.workloads.find((w) => `${w.namespace}/${w.name}` === ref);
}

export function workloadIdentity(trustDomain: string, namespace: string, serviceAccount: string | undefined): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount || DEFAULT_SERVICE_ACCOUNT}`;
}

/**
 * The services a workload in `namespace` may see, one per host. When several ServiceEntries
 * declare the same host, the one in the caller's own namespace wins, then the oldest (Istio's
 * conflict rule), then the first by namespace/name.
 */
export function servicesVisibleTo(registry: Registry, namespace: string): RegistryService[] {
  const byHost = new Map<string, RegistryService>();
  for (const service of registry.services) {
    if (!isExportedTo(service, namespace)) continue;
    const current = byHost.get(service.host);
    if (current === undefined || preferService(service, current, namespace)) byHost.set(service.host, service);
  }
  return [...byHost.values()].sort(compareServices);
}

export function isExportedTo(service: RegistryService, namespace: string): boolean {
  return exportedTo(service.exportTo, service.namespace, namespace);
}

/**
 * Short names for Kubernetes-style hosts `name.ns.svc.<domain>`: `name.ns.svc` and `name.ns`
 * for everyone, `name` only for callers in the same namespace (as Kubernetes DNS search paths).
 */
export function hostAliases(host: string, callerNamespace: string): string[] {
  const match = /^([^.]+)\.([^.]+)\.svc\.(.+)$/.exec(host);
  if (!match) return [];
  const [, name, ns] = match as unknown as [string, string, string];
  const aliases = [`${name}.${ns}.svc`, `${name}.${ns}`];
  if (ns === callerNamespace) aliases.push(name);
  return aliases.sort();
}

/**
 * The protocol of a port: the declared protocol when it is one Trellis parses (others are
 * opaque TCP to the proxy), else Istio's port-name convention (`http`, `http-web`, `grpc-api`…),
 * else UNKNOWN (the proxy sniffs).
 */
export function portProtocol(port: { protocol?: string | undefined; name?: string | undefined }): PortProtocol {
  if (port.protocol !== undefined && port.protocol !== '') return declaredProtocol(port.protocol);
  return protocolFromName(port.name ?? '');
}

export function protocolFromName(name: string): PortProtocol {
  const prefix = (name.split('-')[0] ?? '').toUpperCase();
  if (prefix === 'HTTP' || prefix === 'HTTP2' || prefix === 'GRPC' || prefix === 'TCP') return prefix;
  if (prefix === 'HTTPS' || prefix === 'TLS' || prefix === 'MONGO' || prefix === 'REDIS' || prefix === 'MYSQL') return 'TCP';
  return 'UNKNOWN';
}

function declaredProtocol(protocol: string): PortProtocol {
  const upper = protocol.toUpperCase();
  if (upper === 'HTTP' || upper === 'HTTP2' || upper === 'GRPC' || upper === 'TCP') return upper;
  // gRPC-Web is HTTP/1.1 or HTTP/2 on the wire.
  if (upper === 'GRPC-WEB') return 'HTTP';
  // HTTPS and TLS are encrypted by the app: opaque bytes to the proxy, as are the database protocols.
  return 'TCP';
}

/** The port an endpoint serves a service port on: its own port of that name, else targetPort, else the number. */
export function endpointPort(servicePort: ServicePort, endpointPorts: Readonly<Record<string, number>> | undefined): number {
  return endpointPorts?.[servicePort.name] ?? servicePort.targetPort ?? servicePort.number;
}

function toWorkload(entry: WorkloadEntryResource, trustDomain: string): RegistryWorkload {
  const namespace = entry.metadata.namespace ?? 'default';
  const serviceAccount = entry.spec.serviceAccount || DEFAULT_SERVICE_ACCOUNT;
  return {
    namespace,
    name: entry.metadata.name,
    address: entry.spec.address ?? '',
    labels: { ...(entry.spec.labels ?? {}) },
    serviceAccount,
    identity: workloadIdentity(trustDomain, namespace, serviceAccount),
    ports: { ...(entry.spec.ports ?? {}) },
    ...(entry.spec.weight === undefined ? {} : { weight: entry.spec.weight }),
  };
}

function toServices(entry: ServiceEntryResource, workloads: readonly RegistryWorkload[], trustDomain: string): RegistryService[] {
  const namespace = entry.metadata.namespace ?? 'default';
  const spec = entry.spec;
  const location: ServiceLocation = spec.location ?? 'MESH_EXTERNAL';
  // DYNAMIC_DNS is Istio's DNS with per-host clusters; a connect-time lookup is the same thing here.
  const resolution: ServiceResolution = spec.resolution === 'DYNAMIC_DNS' ? 'DNS' : (spec.resolution ?? 'NONE');
  const declaredPorts = [...(spec.ports ?? [])].sort((a, b) => a.number - b.number);
  const ports: ServicePortSnapshot[] = declaredPorts.map((port) => ({
    number: port.number,
    name: port.name,
    protocol: portProtocol(port),
    targetPortName: port.name,
  }));

  const endpoints: EndpointSnapshot[] = [];
  const selector = spec.workloadSelector;
  if (selector !== undefined && location === 'MESH_INTERNAL') {
    for (const workload of workloads) {
      if (workload.namespace !== namespace || workload.address === '' || !labelsMatch(selector.labels, workload.labels)) continue;
      endpoints.push({
        address: workload.address,
        ports: resolvePorts(declaredPorts, workload.ports),
        labels: { ...workload.labels },
        identity: workload.identity,
        workload: `${workload.namespace}/${workload.name}`,
        ...(workload.weight === undefined ? {} : { weight: workload.weight }),
      });
    }
  }
  (spec.endpoints ?? []).forEach((endpoint: WorkloadEntrySpec, index) => {
    if (endpoint.address === undefined || endpoint.address === '') return;
    endpoints.push({
      address: endpoint.address,
      ports: resolvePorts(declaredPorts, endpoint.ports),
      labels: { ...(endpoint.labels ?? {}) },
      identity: workloadIdentity(trustDomain, namespace, endpoint.serviceAccount),
      workload: `ServiceEntry ${namespace}/${entry.metadata.name} endpoints[${index}]`,
      ...(endpoint.weight === undefined ? {} : { weight: endpoint.weight }),
    });
  });
  endpoints.sort((a, b) => compareStrings(a.workload, b.workload) || compareStrings(a.address, b.address));

  // Outside the mesh, endpoints hold no SVID: only the declared subjectAltNames can vouch for them.
  const endpointIdentities = location === 'MESH_INTERNAL' ? endpoints.map((e) => e.identity) : [];
  const identities = [...new Set([...endpointIdentities, ...(spec.subjectAltNames ?? [])])].sort();
  const exportTo = spec.exportTo === undefined || spec.exportTo.length === 0 ? ['*'] : [...new Set(spec.exportTo)].sort();
  const source = `ServiceEntry ${namespace}/${entry.metadata.name}`;
  return [...new Set(spec.hosts)].map((host) => ({
    host,
    namespace,
    source,
    ...(entry.metadata.creationTimestamp === undefined ? {} : { createdAt: entry.metadata.creationTimestamp }),
    location,
    resolution,
    exportTo,
    ports,
    endpoints,
    identities,
    declaredPorts,
  }));
}

function resolvePorts(servicePorts: readonly ServicePort[], endpointPorts: Readonly<Record<string, number>> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const port of servicePorts) out[port.name] = endpointPort(port, endpointPorts);
  return out;
}

/** Istio selector semantics: every selector label present with the same value; empty selects all. */
export function labelsMatch(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector ?? {}).every(([key, value]) => Object.hasOwn(labels, key) && labels[key] === value);
}

function preferService(candidate: RegistryService, current: RegistryService, callerNamespace: string): boolean {
  const own = (s: RegistryService): number => (s.namespace === callerNamespace ? 0 : 1);
  if (own(candidate) !== own(current)) return own(candidate) < own(current);
  const age = compareCreation(candidate.createdAt, current.createdAt);
  if (age !== 0) return age < 0;
  return compareStrings(candidate.source, current.source) < 0;
}


function compareWorkloads(a: RegistryWorkload, b: RegistryWorkload): number {
  return compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}

function compareServices(a: RegistryService, b: RegistryService): number {
  return compareStrings(a.host, b.host) || compareStrings(a.namespace, b.namespace) || compareStrings(a.source, b.source);
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
