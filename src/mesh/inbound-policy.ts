/**
 * The policy part of a proxy's inbound snapshot, behind one function so the compile step does
 * not depend on how policy is selected.
 *
 * STAND-IN until src/policy lands (branch policy-api): the effective PeerAuthentication mode is
 * resolved here with Istio's precedence (workload selector > namespace > root namespace, oldest
 * wins among equals, portLevelMtls per port, UNSET inherits, default PERMISSIVE), and `policy`
 * is null. Replace `selectInboundPolicy` with a call into src/policy (per-workload authorization
 * policies, RequestAuthentication JWT rules, effective PeerAuthentication per port); nothing
 * else in src/mesh needs to change.
 */
import type { ConfigSet } from '../api/config-set.js';
import type { PeerAuthenticationResource } from '../api/resources.js';
import { labelsMatch, type RegistryWorkload } from './registry.js';
import type { MtlsMode } from './snapshot.js';

export interface InboundPolicy {
  /** JSON-serializable; pushed as `inbound.policy`. */
  readonly policy: unknown;
  /** The effective mTLS mode for one of the workload's ports. */
  mtlsForPort(port: number): MtlsMode;
}

export type InboundPolicySelector = (config: ConfigSet, workload: RegistryWorkload) => InboundPolicy;

export const selectInboundPolicy: InboundPolicySelector = (config, workload) => {
  const chain = peerAuthenticationChain(config, workload);
  const inherited = chain.reduce<MtlsMode>((mode, pa) => settingToMode(pa.spec.mtls?.mode) ?? mode, 'PERMISSIVE');
  // Only a workload-specific PeerAuthentication may set port-level modes (Istio).
  const specific = chain.find((pa) => hasSelector(pa) && pa.metadata.namespace === workload.namespace);
  return {
    policy: null,
    mtlsForPort(port: number): MtlsMode {
      return settingToMode(specific?.spec.portLevelMtls?.[String(port)]?.mode) ?? inherited;
    },
  };
};

/** Root-namespace mesh policy, then namespace policy, then the workload's own: later overrides. */
function peerAuthenticationChain(config: ConfigSet, workload: RegistryWorkload): PeerAuthenticationResource[] {
  const root = config.mesh.rootNamespace;
  const oldest = (list: PeerAuthenticationResource[]): PeerAuthenticationResource | undefined =>
    [...list].sort((a, b) => age(a) - age(b) || (a.metadata.name < b.metadata.name ? -1 : 1))[0];
  const all = config.peerAuthentications;
  const mesh = oldest(all.filter((pa) => pa.metadata.namespace === root && !hasSelector(pa)));
  const namespace = workload.namespace === root ? undefined : oldest(all.filter((pa) => pa.metadata.namespace === workload.namespace && !hasSelector(pa)));
  const own = oldest(all.filter((pa) => pa.metadata.namespace === workload.namespace && hasSelector(pa) && labelsMatch(pa.spec.selector?.matchLabels, workload.labels)));
  return [mesh, namespace, own].filter((pa): pa is PeerAuthenticationResource => pa !== undefined);
}

function hasSelector(pa: PeerAuthenticationResource): boolean {
  return Object.keys(pa.spec.selector?.matchLabels ?? {}).length > 0;
}

function age(pa: PeerAuthenticationResource): number {
  const t = pa.metadata.creationTimestamp === undefined ? NaN : Date.parse(pa.metadata.creationTimestamp);
  return Number.isNaN(t) ? Number.MAX_SAFE_INTEGER : t;
}

function settingToMode(setting: string | undefined): MtlsMode | undefined {
  return setting === 'STRICT' || setting === 'PERMISSIVE' || setting === 'DISABLE' ? setting : undefined;
}
