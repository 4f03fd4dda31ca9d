/**
 * The compile step: config + registry + trust → the snapshot of one proxy, holding only what
 * that proxy needs. Pure and deterministic (every list sorted), so the control plane, the CLI
 * and tests run the very same code, and a resource's content hash is its version.
 */
import type { ConfigSet } from '../api/config-set.js';
import { type InboundPolicySelector, selectInboundPolicy } from './inbound-policy.js';
import { rateLimitsFor } from './rate-limits.js';
import { selectSidecar, sidecarAllows } from './sidecar-scope.js';
import { compileTraffic } from './traffic.js';
import { compareStrings, endpointPort, findWorkload, hostAliases, portProtocol, protocolFromName, type Registry, type RegistryWorkload, servicesVisibleTo } from './registry.js';
import {
  type InboundPortSnapshot,
  type InboundSnapshot,
  type OutboundSnapshot,
  type PortProtocol,
  type ProxySnapshot,
  RESOURCE_TYPES,
  type ResourceType,
  type ServiceSnapshot,
  type TrustSnapshot,
  type WorkloadSnapshot,
} from './snapshot.js';
import { contentVersion } from './version.js';

export interface CompileOptions {
  /** How inbound policy is selected; defaults to src/mesh/inbound-policy.ts. */
  selectPolicy?: InboundPolicySelector;
}

export type ResourceVersions = Record<ResourceType, string>;

/**
 * The snapshot for the proxy of WorkloadEntry `workloadRef` (`namespace/name`), or undefined
 * when the config has no such workload.
 */
export function compileSnapshot(config: ConfigSet, registry: Registry, workloadRef: string, trust: TrustSnapshot, options: CompileOptions = {}): ProxySnapshot | undefined {
  const workload = findWorkload(registry, workloadRef);
  if (workload === undefined) return undefined;
  return {
    workload: workloadSnapshot(workload, registry.trustDomain),
    inbound: inboundSnapshot(config, registry, workload, options.selectPolicy ?? selectInboundPolicy),
    outbound: outboundSnapshot(config, registry, workload),
    trust,
  };
}

/** The version of each resource type: a hash of its content. */
export function snapshotVersions(snapshot: ProxySnapshot): ResourceVersions {
  const versions = {} as ResourceVersions;
  for (const type of RESOURCE_TYPES) versions[type] = contentVersion(snapshot[type]);
  return versions;
}

function workloadSnapshot(workload: RegistryWorkload, trustDomain: string): WorkloadSnapshot {
  return {
    namespace: workload.namespace,
    name: workload.name,
    labels: sortedRecord(workload.labels),
    serviceAccount: workload.serviceAccount,
    identity: workload.identity,
    address: workload.address,
    trustDomain,
  };
}

/**
 * Inbound ports: the WorkloadEntry's ports plus the endpoint ports of the MESH_INTERNAL services
 * that select it. A protocol declared on a selecting ServiceEntry port wins over the name
 * convention, as in Istio, where the service port decides how inbound traffic is parsed.
 */
function inboundSnapshot(config: ConfigSet, registry: Registry, workload: RegistryWorkload, select: InboundPolicySelector): InboundSnapshot {
  const ref = `${workload.namespace}/${workload.name}`;
  const ports = new Map<number, { name: string; declared?: PortProtocol; named: PortProtocol }>();
  for (const [name, port] of Object.entries(workload.ports).sort(([a], [b]) => compareStrings(a, b))) {
    if (!ports.has(port)) ports.set(port, { name, named: protocolFromName(name) });
  }
  for (const service of registry.services) {
    if (service.location !== 'MESH_INTERNAL' || !service.endpoints.some((e) => e.workload === ref)) continue;
    for (const servicePort of service.declaredPorts) {
      const port = endpointPort(servicePort, workload.ports);
      const entry = ports.get(port) ?? { name: servicePort.name, named: protocolFromName(servicePort.name) };
      if (entry.declared === undefined && servicePort.protocol !== undefined && servicePort.protocol !== '') entry.declared = portProtocol(servicePort);
      if (entry.named === 'UNKNOWN') entry.named = protocolFromName(servicePort.name);
      ports.set(port, entry);
    }
  }
  const policy = select(config, workload);
  const rateLimits = rateLimitsFor(config, workload);
  const inboundPorts: InboundPortSnapshot[] = [...ports.entries()]
    .sort(([a], [b]) => a - b)
    .map(([port, entry]) => ({ name: entry.name, port, protocol: entry.declared ?? entry.named, mtls: policy.mtlsForPort(port) }));
  // Absent means the default (`none`): snapshots of meshes without audit settings stay as they were.
  const allows = config.mesh.audit?.allows ?? 'none';
  const audit = allows === 'none' ? undefined : { allows };
  return { ports: inboundPorts, ...(rateLimits.length === 0 ? {} : { rateLimits }), ...(audit ? { audit } : {}), policy: policy.policy };
}

/** Every service exported to the workload's namespace that its Sidecar lets it see, and how to route to them. */
function outboundSnapshot(config: ConfigSet, registry: Registry, workload: RegistryWorkload): OutboundSnapshot {
  const sidecar = selectSidecar(config, workload);
  const visible = servicesVisibleTo(registry, workload.namespace).filter((service) => sidecarAllows(sidecar, service));
  const services: ServiceSnapshot[] = visible.map((service) => ({
    host: service.host,
    aliases: hostAliases(service.host, workload.namespace),
    namespace: service.namespace,
    location: service.location,
    ports: service.ports.map((port) => ({ ...port })),
    endpoints: service.endpoints.map((endpoint) => ({
      ...endpoint,
      ports: sortedRecord(endpoint.ports),
      labels: sortedRecord(endpoint.labels),
    })),
    identities: [...service.identities],
  }));
  return { services, traffic: compileTraffic(config, workload, visible, sidecar) };
}

function sortedRecord<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => compareStrings(a, b)));
}
