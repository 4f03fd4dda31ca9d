import { TrellisError, errorMessage } from '../api/errors.js';
import type { AuthzAction } from '../api/schemas/security.js';
import { compileCondition, compileOperation, compileSource, type Check } from './authz-checks.js';
import { makeContext, type EvalContext } from './authz-context.js';
import type { AuthzPolicy, AuthzRule, WorkloadAuthzPolicies } from './authz-policies.js';
import type { AuthzRequest } from './authz-request.js';
import { workloadName } from './workload.js';

/**
 * Step two of authorization: compile one workload's policies once into matchers, then decide
 * each request with Istio's semantics — CUSTOM, then DENY, then ALLOW; AUDIT and dry-run
 * policies are evaluated and reported but never change the outcome. Deny is a value: every
 * decision says which policy and rule decided, and a denial says which field failed where.
 */

export interface AuthzDecision {
  readonly decision: 'ALLOW' | 'DENY';
  /** The deciding policy, `namespace/name`; null when a default decided. */
  readonly policy: string | null;
  readonly action: AuthzAction | null;
  /** Index of the deciding rule in its policy. */
  readonly rule: number | null;
  /** One sentence a person can act on. */
  readonly reason: string;
  /** Dry-run policies that matched, and what they would have done. */
  readonly dryRun: readonly DryRunMatch[];
  /** The decision if the dry-run policies were enforced too; present when there are dry-run policies. */
  readonly dryRunDecision?: 'ALLOW' | 'DENY';
  /** AUDIT policies that matched: the request should be audited. */
  readonly audit: readonly PolicyMatch[];
  /** For a denial because no ALLOW rule matched: the rule that came closest and the field that failed. */
  readonly nearest?: NearestRule;
}

export interface PolicyMatch {
  readonly policy: string;
  readonly rule: number;
}

export interface DryRunMatch extends PolicyMatch {
  readonly action: 'ALLOW' | 'DENY';
  /** `would deny` for a matching dry-run DENY policy, `would allow` for a matching dry-run ALLOW policy. */
  readonly effect: 'would deny' | 'would allow';
}

export interface NearestRule {
  readonly policy: string;
  readonly rule: number;
  /** How many fields or conditions failed. */
  readonly failed: number;
  /** The first failure, e.g. `paths: "/admin" ≠ "/api/*"`. */
  readonly field: string;
}

export interface Authorizer {
  readonly workload: string;
  evaluate(request: AuthzRequest): AuthzDecision;
}

interface CompiledRule {
  readonly index: number;
  /** TCP variant of a DENY/AUDIT/CUSTOM rule: the HTTP fields Istio's TCP rule dropped. */
  readonly ignored?: readonly string[];
  /** OR of ANDs; undefined = any source. */
  readonly from: readonly (readonly Check[])[] | undefined;
  readonly to: readonly (readonly Check[])[] | undefined;
  readonly when: readonly Check[];
}

/** `never`: an ALLOW rule with HTTP-only fields cannot match a TCP connection. */
type TcpRule = CompiledRule | { readonly index: number; readonly never: readonly string[] };

interface CompiledPolicy {
  readonly id: string;
  readonly action: AuthzAction;
  readonly provider: string | undefined;
  readonly dryRun: boolean;
  readonly http: readonly CompiledRule[];
  readonly tcp: readonly TcpRule[];
  readonly ruleCount: number;
}

/** Compiles once per config version; throws TRELLIS_AUTHZ_INVALID_POLICY_SET on anything it cannot compile. */
export function buildAuthorizer(set: WorkloadAuthzPolicies): Authorizer {
  const compiled = set.policies.map((policy) => {
    try {
      return compilePolicy(policy);
    } catch (err) {
      throw new TrellisError('TRELLIS_AUTHZ_INVALID_POLICY_SET', `cannot compile AuthorizationPolicy ${policy.namespace}/${policy.name}: ${errorMessage(err)}`, {
        policy: `${policy.namespace}/${policy.name}`,
      });
    }
  });
  const enforced = (action: AuthzAction): CompiledPolicy[] => compiled.filter((p) => p.action === action && !p.dryRun);
  const custom = enforced('CUSTOM');
  const deny = enforced('DENY');
  const allow = enforced('ALLOW');
  const audit = enforced('AUDIT');
  const dryDeny = compiled.filter((p) => p.dryRun && p.action === 'DENY');
  const dryAllow = compiled.filter((p) => p.dryRun && p.action === 'ALLOW');
  const hasDryRun = dryDeny.length + dryAllow.length > 0;
  const workload = workloadName(set.workload);
  const defaultAction = set.mesh.defaultAuthorization;

  const evaluate = (request: AuthzRequest): AuthzDecision => {
    const parsed = makeContext(request);
    if (!parsed.ok) return failClosed(`the request could not be evaluated: ${parsed.reason}`);
    const context = parsed.context;

    const auditMatches = matchAll(audit, context);
    const dryRunMatches: DryRunMatch[] = [
      ...matchAll(dryDeny, context).map((m) => ({ ...m, action: 'DENY' as const, effect: 'would deny' as const })),
      ...matchAll(dryAllow, context).map((m) => ({ ...m, action: 'ALLOW' as const, effect: 'would allow' as const })),
    ];
    const extras = { dryRun: dryRunMatches, audit: auditMatches };

    const outcome = decide(context, custom, deny, allow);
    const result: AuthzDecision = { ...outcome, ...extras };
    if (!hasDryRun) return result;
    const shadow = decide(context, custom, [...deny, ...dryDeny], [...allow, ...dryAllow]);
    return { ...result, dryRunDecision: shadow.decision };
  };

  /** The enforced decision; `extras` are added by the caller. */
  const decide = (context: EvalContext, customs: readonly CompiledPolicy[], denies: readonly CompiledPolicy[], allows: readonly CompiledPolicy[]): Omit<AuthzDecision, 'dryRun' | 'audit'> => {
    for (const policy of customs) {
      const rule = firstMatch(policy, context);
      if (rule !== undefined) {
        return {
          decision: 'DENY',
          policy: policy.id,
          action: 'CUSTOM',
          rule,
          reason: `denied: CUSTOM policy ${policy.id} (rule ${rule}) sends this request to provider "${policy.provider ?? ''}", and Trellis cannot consult external authorization providers yet, so it fails closed`,
        };
      }
    }
    for (const policy of denies) {
      const rule = firstMatch(policy, context);
      if (rule !== undefined) {
        return { decision: 'DENY', policy: policy.id, action: 'DENY', rule, reason: `denied by DENY policy ${policy.id}, rule ${rule}${why(policy, rule, context)}` };
      }
    }
    if (allows.length === 0) {
      return defaultAction === 'DENY'
        ? { decision: 'DENY', policy: null, action: null, rule: null, reason: `denied: no ALLOW policy applies to workload ${workload} and the mesh's defaultAuthorization is DENY` }
        : { decision: 'ALLOW', policy: null, action: null, rule: null, reason: `allowed: no ALLOW policy applies to workload ${workload}, so the default (ALLOW) applies` };
    }
    for (const policy of allows) {
      const rule = firstMatch(policy, context);
      if (rule !== undefined) {
        return { decision: 'ALLOW', policy: policy.id, action: 'ALLOW', rule, reason: `allowed by ALLOW policy ${policy.id}, rule ${rule}${why(policy, rule, context)}` };
      }
    }
    const nearest = nearestRule(allows, context);
    const reason = nearest
      ? `denied: no ALLOW policy matched; the nearest is ${nearest.policy} rule ${nearest.rule}, where ${nearest.field}`
      : `denied: no ALLOW policy matched (the ALLOW policies for ${workload} have no rules, so they allow nothing)`;
    return { decision: 'DENY', policy: null, action: null, rule: null, reason, ...(nearest ? { nearest } : {}) };
  };

  return {
    workload,
    evaluate: (request) => {
      try {
        return evaluate(request);
      } catch (err) {
        return failClosed(`internal error while evaluating (${errorMessage(err)})`);
      }
    },
  };
}

function failClosed(why: string): AuthzDecision {
  return { decision: 'DENY', policy: null, action: null, rule: null, reason: `denied (fail closed): ${why}`, dryRun: [], audit: [] };
}

// ---- compilation ------------------------------------------------------------------------

function compilePolicy(policy: AuthzPolicy): CompiledPolicy {
  const http = policy.rules.map((rule, index) => compileRule(rule, index));
  // Istio's TCP rules: an ALLOW rule that needs HTTP fields never matches a TCP connection
  // (narrower); a DENY, AUDIT or CUSTOM rule ignores its HTTP fields (wider).
  const tcp = http.map((rule): TcpRule => {
    const httpFields = httpOnlyFields(rule);
    if (httpFields.length === 0) return rule;
    if (policy.action === 'ALLOW') return { index: rule.index, never: httpFields };
    const strip = (checks: readonly Check[]): Check[] => checks.filter((c) => !c.httpOnly);
    return { index: rule.index, ignored: httpFields, from: rule.from?.map(strip), to: rule.to?.map(strip), when: strip(rule.when) };
  });
  return {
    id: `${policy.namespace}/${policy.name}`,
    action: policy.action,
    provider: policy.provider,
    dryRun: policy.dryRun,
    http,
    tcp,
    ruleCount: policy.rules.length,
  };
}

function compileRule(rule: AuthzRule, index: number): CompiledRule {
  return {
    index,
    from: rule.from?.map((source) => compileSource(source)),
    to: rule.to?.map((operation) => compileOperation(operation)),
    when: (rule.when ?? []).flatMap((condition) => compileCondition(condition)),
  };
}

function httpOnlyFields(rule: CompiledRule): string[] {
  const all = [...(rule.from ?? []).flat(), ...(rule.to ?? []).flat(), ...rule.when];
  return [...new Set(all.filter((c) => c.httpOnly).map((c) => c.field))];
}

// ---- matching ---------------------------------------------------------------------------

function allPass(checks: readonly Check[], context: EvalContext): boolean {
  for (let i = 0; i < checks.length; i++) if (!checks[i]!.test(context)) return false;
  return true;
}

function anyEntryPasses(entries: readonly (readonly Check[])[], context: EvalContext): boolean {
  for (let i = 0; i < entries.length; i++) if (allPass(entries[i]!, context)) return true;
  return false;
}

function ruleMatches(rule: CompiledRule, context: EvalContext): boolean {
  if (rule.from !== undefined && !anyEntryPasses(rule.from, context)) return false;
  if (rule.to !== undefined && !anyEntryPasses(rule.to, context)) return false;
  return allPass(rule.when, context);
}

function rulesFor(policy: CompiledPolicy, context: EvalContext): readonly TcpRule[] {
  return context.http ? policy.http : policy.tcp;
}

function firstMatch(policy: CompiledPolicy, context: EvalContext): number | undefined {
  const rules = rulesFor(policy, context);
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (!('never' in rule) && ruleMatches(rule, context)) return rule.index;
  }
  return undefined;
}

function matchAll(policies: readonly CompiledPolicy[], context: EvalContext): PolicyMatch[] {
  const out: PolicyMatch[] = [];
  for (const policy of policies) {
    const rule = firstMatch(policy, context);
    if (rule !== undefined) out.push({ policy: policy.id, rule });
  }
  return out;
}

// ---- explanation ------------------------------------------------------------------------

/** ` (paths: "/admin" = "/admin*"; …)`: what made the deciding rule match. */
function why(policy: CompiledPolicy, index: number, context: EvalContext): string {
  const rule = rulesFor(policy, context).find((r) => r.index === index);
  if (rule === undefined || 'never' in rule) return '';
  const parts: string[] = [];
  for (const entries of [rule.from, rule.to]) {
    const entry = entries?.find((e) => allPass(e, context));
    if (entry) parts.push(...entry.map((c) => c.describe(context)));
  }
  parts.push(...rule.when.map((c) => c.describe(context)));
  if (rule.ignored && rule.ignored.length > 0) parts.push(`on TCP its HTTP fields (${rule.ignored.join(', ')}) are ignored, as in Istio`);
  if (parts.length === 0) return ': the rule matches every request';
  const shown = parts.slice(0, 4);
  if (parts.length > 4) shown.push('…');
  return ` (${shown.join('; ')})`;
}

/** Only computed for denials: the ALLOW rule with the fewest failing fields, and its first failure. */
function nearestRule(policies: readonly CompiledPolicy[], context: EvalContext): NearestRule | undefined {
  let best: NearestRule | undefined;
  for (const policy of policies) {
    for (const rule of rulesFor(policy, context)) {
      const scored =
        'never' in rule
          ? { failed: 1000, field: `the rule needs HTTP fields (${rule.never.join(', ')}) and this is a TCP connection` }
          : scoreRule(rule, context);
      if (scored && (best === undefined || scored.failed < best.failed)) {
        best = { policy: policy.id, rule: rule.index, ...scored };
      }
    }
  }
  return best;
}

function scoreRule(rule: CompiledRule, context: EvalContext): { failed: number; field: string } | undefined {
  let failed = 0;
  let first: string | undefined;
  for (const entries of [rule.from, rule.to]) {
    if (entries === undefined) continue;
    let bestEntry: { failed: number; first: string | undefined } | undefined;
    for (const entry of entries) {
      const failing = entry.filter((c) => !c.test(context));
      if (bestEntry === undefined || failing.length < bestEntry.failed) {
        bestEntry = { failed: failing.length, first: failing[0]?.explain(context) };
      }
    }
    if (bestEntry && bestEntry.failed > 0) {
      failed += bestEntry.failed;
      first ??= bestEntry.first;
    }
  }
  for (const check of rule.when) {
    if (!check.test(context)) {
      failed++;
      first ??= check.explain(context);
    }
  }
  return first === undefined ? undefined : { failed, field: first };
}
