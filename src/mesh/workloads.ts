import type { ConfigSet } from '../api/config-set.js';
import type { WorkloadEntryResource } from '../api/resources.js';
import type { Workload } from '../policy/workload.js';

/**
 * The registry's view of WorkloadEntries: the workloads policies select. (On Kubernetes the
 * same shape comes from Pods.)
 */
export interface RegisteredWorkload extends Workload {
  readonly name: string;
  readonly address?: string;
  /** Port name → number. */
  readonly ports: Readonly<Record<string, number>>;
}

export function workloadFromEntry(entry: WorkloadEntryResource): RegisteredWorkload {
  return {
    namespace: entry.metadata.namespace ?? 'default',
    name: entry.metadata.name,
    labels: entry.spec.labels ?? {},
    ...(entry.spec.serviceAccount === undefined ? {} : { serviceAccount: entry.spec.serviceAccount }),
    ...(entry.spec.address === undefined ? {} : { address: entry.spec.address }),
    ports: entry.spec.ports ?? {},
  };
}

export function findWorkloadEntry(config: ConfigSet, namespace: string, name: string): WorkloadEntryResource | undefined {
  return config.workloadEntries.find((e) => e.metadata.namespace === namespace && e.metadata.name === name);
}

/** The SPIFFE principal (Istio form, without `spiffe://`) a workload's certificate carries. */
export function workloadPrincipal(workload: Workload, trustDomain: string): string {
  return `${trustDomain}/ns/${workload.namespace}/sa/${workload.serviceAccount ?? 'default'}`;
}
