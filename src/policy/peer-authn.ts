import type { ConfigSet } from '../api/config-set.js';
import type { PeerAuthenticationResource } from '../api/resources.js';
import type { MtlsModeSetting } from '../api/schemas/security.js';
import { selectorMatches, type Workload } from './workload.js';

/**
 * PeerAuthentication: the effective mTLS mode of one workload, per port, with Istio's rules —
 * workload level beats namespace level beats mesh level (root namespace); among several
 * policies at one level the oldest (creationTimestamp, then name) wins; UNSET inherits from the
 * level above; with no policy at all the mode is PERMISSIVE. The result is plain JSON.
 */

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface WorkloadMtls {
  /** The mode for ports without a port-level setting. */
  readonly mode: MtlsMode;
  /** Port-level modes (workload port number → mode), from the workload-level policy. */
  readonly ports: Readonly<Record<string, MtlsMode>>;
  /** The policies that decided, `namespace/name`, by level. */
  readonly policies: { readonly mesh?: string; readonly namespace?: string; readonly workload?: string };
}

export function peerAuthenticationForWorkload(config: ConfigSet, workload: Workload): WorkloadMtls {
  const root = config.mesh.rootNamespace;
  const hasSelector = (p: PeerAuthenticationResource): boolean => Object.keys(p.spec.selector?.matchLabels ?? {}).length > 0;
  const oldest = (candidates: PeerAuthenticationResource[]): PeerAuthenticationResource | undefined => [...candidates].sort(byAge)[0];

  const mesh = oldest(config.peerAuthentications.filter((p) => p.metadata.namespace === root && !hasSelector(p)));
  const namespace = workload.namespace === root ? undefined : oldest(config.peerAuthentications.filter((p) => p.metadata.namespace === workload.namespace && !hasSelector(p)));
  // Selector policies in the root namespace are ignored, as in Istio.
  const workloadLevel = workload.namespace === root ? undefined : oldest(
    config.peerAuthentications.filter((p) => p.metadata.namespace === workload.namespace && hasSelector(p) && selectorMatches(p.spec.selector?.matchLabels, workload.labels)),
  );

  let mode: MtlsMode = 'PERMISSIVE';
  for (const level of [mesh, namespace, workloadLevel]) {
    const setting = level?.spec.mtls?.mode;
    if (setting !== undefined && setting !== 'UNSET') mode = setting;
  }
  const ports: Record<string, MtlsMode> = {};
  for (const [port, setting] of Object.entries(workloadLevel?.spec.portLevelMtls ?? {})) {
    ports[String(Number(port))] = resolve(setting.mode, mode);
  }
  const id = (p: PeerAuthenticationResource | undefined): string | undefined => (p === undefined ? undefined : `${p.metadata.namespace ?? ''}/${p.metadata.name}`);
  const policies: { mesh?: string; namespace?: string; workload?: string } = {};
  if (mesh) policies.mesh = id(mesh) ?? '';
  if (namespace) policies.namespace = id(namespace) ?? '';
  if (workloadLevel) policies.workload = id(workloadLevel) ?? '';
  return { mode, ports, policies };
}

/** The mode that applies to connections to `port` of the workload. */
export function mtlsModeForPort(mtls: WorkloadMtls, port: number): MtlsMode {
  return mtls.ports[String(port)] ?? mtls.mode;
}

function resolve(setting: MtlsModeSetting | undefined, inherited: MtlsMode): MtlsMode {
  return setting === undefined || setting === 'UNSET' ? inherited : setting;
}

/** Oldest first; no timestamp counts as oldest (files carry none); ties by name, then namespace. */
function byAge(a: PeerAuthenticationResource, b: PeerAuthenticationResource): number {
  const time = (p: PeerAuthenticationResource): number => (p.metadata.creationTimestamp === undefined ? -Infinity : Date.parse(p.metadata.creationTimestamp));
  const ta = time(a);
  const tb = time(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return cmp(a.metadata.name, b.metadata.name) || cmp(a.metadata.namespace ?? '', b.metadata.namespace ?? '');
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
