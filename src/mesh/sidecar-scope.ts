/**
 * The Sidecar resource that applies to a workload, and what it lets the workload's proxy see.
 * Istio's rules: a Sidecar in the workload's namespace whose workloadSelector matches wins, then
 * the namespace's Sidecar without a selector, then the root namespace's one (the mesh default).
 */
import type { ConfigSet } from '../api/config-set.js';
import type { SidecarResource } from '../api/resources.js';
import { compareCreation, hostMatches } from './hosts.js';
import { labelsMatch, type RegistryService, type RegistryWorkload } from './registry.js';

export function selectSidecar(config: ConfigSet, workload: RegistryWorkload): SidecarResource | undefined {
  const byAge = (a: SidecarResource, b: SidecarResource): number => compareCreation(a.metadata.creationTimestamp, b.metadata.creationTimestamp) || (a.metadata.name < b.metadata.name ? -1 : 1);
  const inNamespace = (namespace: string): SidecarResource[] => config.sidecars.filter((s) => s.metadata.namespace === namespace).sort(byAge);
  const hasSelector = (s: SidecarResource): boolean => Object.keys(s.spec.workloadSelector?.labels ?? {}).length > 0;
  const own = inNamespace(workload.namespace);
  return (
    own.find((s) => hasSelector(s) && labelsMatch(s.spec.workloadSelector?.labels, workload.labels)) ??
    own.find((s) => !hasSelector(s)) ??
    inNamespace(config.mesh.rootNamespace).find((s) => !hasSelector(s))
  );
}

/**
 * Whether the Sidecar's egress hosts (`namespace/dnsName`) include the service. No Sidecar, or
 * one without egress listeners, means Istio's default `*\/*`: every visible service.
 */
export function sidecarAllows(sidecar: SidecarResource | undefined, service: RegistryService): boolean {
  const listeners = sidecar?.spec.egress ?? [];
  if (sidecar === undefined || listeners.length === 0) return true;
  const own = sidecar.metadata.namespace ?? 'default';
  return listeners.some((listener) =>
    listener.hosts.some((entry) => {
      const slash = entry.indexOf('/');
      const namespace = slash === -1 ? '*' : entry.slice(0, slash);
      const dnsName = slash === -1 ? entry : entry.slice(slash + 1);
      if (namespace === '~') return false;
      const namespaceOk = namespace === '*' || namespace === service.namespace || (namespace === '.' && own === service.namespace);
      return namespaceOk && hostMatches(dnsName, service.host);
    }),
  );
}
