/**
 * The policy part of a proxy's inbound snapshot, behind one function so the compile step does
 * not depend on how policy is selected: src/policy builds the workload's WorkloadPolicy
 * (authorization policies, effective PeerAuthentication per port, RequestAuthentication JWT
 * rules — plain JSON), which is pushed as `inbound.policy`; the proxy compiles it with
 * `compileWorkloadPolicy` and `trellis authz check` runs the same code.
 */
import type { ConfigSet } from '../api/config-set.js';
import { type WorkloadPolicy, workloadPolicy } from '../policy/inbound.js';
import { mtlsModeForPort } from '../policy/peer-authn.js';
import type { RegistryWorkload } from './registry.js';
import type { MtlsMode } from './snapshot.js';

export interface InboundPolicy {
  /** Plain JSON; pushed as `inbound.policy`. */
  readonly policy: WorkloadPolicy;
  /** The effective mTLS mode for one of the workload's ports. */
  mtlsForPort(port: number): MtlsMode;
}

export type InboundPolicySelector = (config: ConfigSet, workload: RegistryWorkload) => InboundPolicy;

export const selectInboundPolicy: InboundPolicySelector = (config, workload) => {
  const policy = workloadPolicy(config, {
    namespace: workload.namespace,
    name: workload.name,
    labels: { ...workload.labels },
    serviceAccount: workload.serviceAccount,
  });
  return { policy, mtlsForPort: (port) => mtlsModeForPort(policy.mtls, port) };
};
