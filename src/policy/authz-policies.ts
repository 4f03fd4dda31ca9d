import type { ConfigSet } from '../api/config-set.js';
import type { AuthorizationPolicyResource } from '../api/resources.js';
import type { DefaultAuthorization, PathNormalization } from '../api/schemas/mesh-config.js';
import type { AuthzAction, Condition, Operation, Rule, Source } from '../api/schemas/security.js';
import { DRY_RUN_ANNOTATION } from '../api/validate/common.js';
import { selectorMatches, type Workload } from './workload.js';

/**
 * Step one of authorization: select, for one workload, the AuthorizationPolicies that apply to
 * it, normalized into plain JSON. The control plane computes this per proxy and pushes it; the
 * proxy compiles it with `buildAuthorizer`. Pure and deterministic: same input, same output.
 */

export interface WorkloadAuthzPolicies {
  readonly workload: Workload;
  readonly mesh: {
    readonly trustDomain: string;
    readonly rootNamespace: string;
    readonly defaultAuthorization: DefaultAuthorization;
    readonly pathNormalization: PathNormalization;
  };
  /** Root-namespace policies first, then by namespace and name. */
  readonly policies: readonly AuthzPolicy[];
}

export interface AuthzPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly action: AuthzAction;
  /** CUSTOM only: the extension provider's name. */
  readonly provider?: string;
  /** `istio.io/dry-run: "true"`: evaluated and reported, never enforced. */
  readonly dryRun: boolean;
  /** Empty: the policy matches nothing (Istio's "allow nothing" when the action is ALLOW). */
  readonly rules: readonly AuthzRule[];
}

/** A rule as written, with unset fields omitted and service accounts made `namespace/name`. */
export interface AuthzRule {
  readonly from?: readonly Source[];
  readonly to?: readonly Operation[];
  readonly when?: readonly Condition[];
}

export function policiesForWorkload(config: ConfigSet, workload: Workload): WorkloadAuthzPolicies {
  const root = config.mesh.rootNamespace;
  const policies = config.authorizationPolicies
    .filter((p) => appliesTo(p, workload, root))
    .map(normalizePolicy)
    .sort((a, b) => comparePolicies(a, b, root));
  return {
    workload: { namespace: workload.namespace, labels: { ...workload.labels }, ...(workload.name === undefined ? {} : { name: workload.name }), ...(workload.serviceAccount === undefined ? {} : { serviceAccount: workload.serviceAccount }) },
    mesh: {
      trustDomain: config.mesh.trustDomain,
      rootNamespace: root,
      defaultAuthorization: config.mesh.defaultAuthorization,
      pathNormalization: config.mesh.pathNormalization,
    },
    policies,
  };
}

/** Istio's scoping: same namespace (or the root namespace, mesh-wide) and a matching selector; targetRefs never select sidecars. */
function appliesTo(policy: AuthorizationPolicyResource, workload: Workload, rootNamespace: string): boolean {
  const ns = policy.metadata.namespace;
  if (ns !== workload.namespace && ns !== rootNamespace) return false;
  if (policy.spec.targetRef !== undefined || (policy.spec.targetRefs ?? []).length > 0) return false;
  return selectorMatches(policy.spec.selector?.matchLabels, workload.labels);
}

function normalizePolicy(policy: AuthorizationPolicyResource): AuthzPolicy {
  const namespace = policy.metadata.namespace ?? 'default';
  const action = policy.spec.action ?? 'ALLOW';
  return {
    namespace,
    name: policy.metadata.name,
    action,
    ...(action === 'CUSTOM' && policy.spec.provider?.name !== undefined ? { provider: policy.spec.provider.name } : {}),
    dryRun: policy.metadata.annotations[DRY_RUN_ANNOTATION] === 'true',
    rules: (policy.spec.rules ?? []).map((rule) => normalizeRule(rule, namespace)),
  };
}

function normalizeRule(rule: Rule, namespace: string): AuthzRule {
  const out: { from?: Source[]; to?: Operation[]; when?: Condition[] } = {};
  if (rule.from !== undefined) out.from = rule.from.map((f) => normalizeSource(f.source ?? {}, namespace));
  if (rule.to !== undefined) out.to = rule.to.map((t) => compact(t.operation ?? {}));
  if (rule.when !== undefined && rule.when.length > 0) {
    out.when = rule.when.map((c) => {
      const qualify = c.key === 'source.serviceAccount' ? (v: string[] | undefined) => v?.map((sa) => qualifyServiceAccount(sa, namespace)) : (v: string[] | undefined) => v;
      const values = qualify(c.values);
      const notValues = qualify(c.notValues);
      return { key: c.key, ...(values === undefined ? {} : { values }), ...(notValues === undefined ? {} : { notValues }) };
    });
  }
  return out;
}

function normalizeSource(source: Source, namespace: string): Source {
  const out = compact(source);
  return {
    ...out,
    ...(out.serviceAccounts === undefined ? {} : { serviceAccounts: out.serviceAccounts.map((sa) => qualifyServiceAccount(sa, namespace)) }),
    ...(out.notServiceAccounts === undefined ? {} : { notServiceAccounts: out.notServiceAccounts.map((sa) => qualifyServiceAccount(sa, namespace)) }),
  };
}

/** `name` means a service account in the policy's own namespace. */
function qualifyServiceAccount(value: string, namespace: string): string {
  return value.includes('/') ? value : `${namespace}/${value}`;
}

/** Drops unset fields so the JSON only says what the policy says. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, Array.isArray(v) ? [...(v as unknown[])] : v])) as T;
}

function comparePolicies(a: AuthzPolicy, b: AuthzPolicy, root: string): number {
  const rank = (p: AuthzPolicy): number => (p.namespace === root ? 0 : 1);
  return rank(a) - rank(b) || cmp(a.namespace, b.namespace) || cmp(a.name, b.name);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
