import { TrellisError, errorMessage } from '../api/errors.js';
import type { AuthzAction } from '../api/schemas/security.js';
import { compileCondition, compileOperation, compileSource, type Check } from './authz-checks.js';
import { makeContext, type EvalContext } from './authz-context.js';
import type { AuthzPolicy, AuthzRule, WorkloadAuthzPolicies } from './authz-policies.js';
import type { AuthzRequest } from './authz-request.js';
import { RuleIndex, type IndexKey, type RuleRequirements } from './rule-index.js';
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
}

export interface AuthorizerOptions {
  /** File rules in an index so requests only try the rules that can match (default true; false tries every rule, for tests). */
  readonly indexRules?: boolean;
}

/** Compiles once per config version; throws TRELLIS_AUTHZ_INVALID_POLICY_SET on anything it cannot compile. */
export function buildAuthorizer(set: WorkloadAuthzPolicies, options: AuthorizerOptions = {}): Authorizer {
  const compiled = set.policies.map((policy) => {
    try {
      return compilePolicy(policy);
    } catch (err) {
      throw new TrellisError('TRELLIS_AUTHZ_INVALID_POLICY_SET', `cannot compile AuthorizationPolicy ${policy.namespace}/${policy.name}: ${errorMessage(err)}`, {
        policy: `${policy.namespace}/${policy.name}`,
      });
    }
  });
  const group = (keep: (p: CompiledPolicy) => boolean): RuleSet => new RuleSet(compiled.filter(keep), options.indexRules !== false);
  const custom = group((p) => p.action === 'CUSTOM' && !p.dryRun);
  const deny = group((p) => p.action === 'DENY' && !p.dryRun);
  const allow = group((p) => p.action === 'ALLOW' && !p.dryRun);
  const audit = group((p) => p.action === 'AUDIT' && !p.dryRun);
  const dryDeny = group((p) => p.action === 'DENY' && p.dryRun);
  const dryAllow = group((p) => p.action === 'ALLOW' && p.dryRun);
  const hasDryRun = dryDeny.policies.length + dryAllow.policies.length > 0;
  const workload = workloadName(set.workload);
  const defaultAction = set.mesh.defaultAuthorization;

  const evaluate = (request: AuthzRequest): AuthzDecision => {
    const parsed = makeContext(request);
    if (!parsed.ok) return failClosed(`the request could not be evaluated: ${parsed.reason}`);
    const context = parsed.context;

    const customMatch = custom.firstMatch(context);
    const denyMatch = customMatch ? undefined : deny.firstMatch(context);
    const allowMatch = customMatch || denyMatch ? undefined : allow.firstMatch(context);
    const result: AuthzDecision = {
      ...decide(context, customMatch, denyMatch, allowMatch),
      dryRun: [
        ...dryDeny.allMatches(context).map((m) => ({ ...m, action: 'DENY' as const, effect: 'would deny' as const })),
        ...dryAllow.allMatches(context).map((m) => ({ ...m, action: 'ALLOW' as const, effect: 'would allow' as const })),
      ],
      audit: audit.allMatches(context),
    };
    if (!hasDryRun) return result;
    // As if the dry-run policies were enforced too.
    const shadowDeny = customMatch !== undefined || denyMatch !== undefined || dryDeny.firstMatch(context) !== undefined;
    const allowCount = allow.policies.length + dryAllow.policies.length;
    const shadowAllow = allowCount === 0 ? defaultAction === 'ALLOW' : allowMatch !== undefined || (allow.policies.length > 0 && allow.firstMatch(context) !== undefined) || dryAllow.firstMatch(context) !== undefined;
    return { ...result, dryRunDecision: !shadowDeny && shadowAllow ? 'ALLOW' : 'DENY' };
  };

  const decide = (context: EvalContext, customMatch: Match | undefined, denyMatch: Match | undefined, allowMatch: Match | undefined): Omit<AuthzDecision, 'dryRun' | 'audit'> => {
    if (customMatch) {
      const { policy, rule } = customMatch;
      return {
        decision: 'DENY',
        policy: policy.id,
        action: 'CUSTOM',
        rule: rule.index,
        reason: `denied: CUSTOM policy ${policy.id} (rule ${rule.index}) sends this request to provider "${policy.provider ?? ''}", and Trellis cannot consult external authorization providers yet, so it fails closed`,
      };
    }
    if (denyMatch) {
      const { policy, rule } = denyMatch;
      return { decision: 'DENY', policy: policy.id, action: 'DENY', rule: rule.index, reason: `denied by DENY policy ${policy.id}, rule ${rule.index}${why(rule, context)}` };
    }
    if (allow.policies.length === 0) {
      return defaultAction === 'DENY'
        ? { decision: 'DENY', policy: null, action: null, rule: null, reason: `denied: no ALLOW policy applies to workload ${workload} and the mesh's defaultAuthorization is DENY` }
        : { decision: 'ALLOW', policy: null, action: null, rule: null, reason: `allowed: no ALLOW policy applies to workload ${workload}, so the default (ALLOW) applies` };
    }
    if (allowMatch) {
      const { policy, rule } = allowMatch;
      return { decision: 'ALLOW', policy: policy.id, action: 'ALLOW', rule: rule.index, reason: `allowed by ALLOW policy ${policy.id}, rule ${rule.index}${why(rule, context)}` };
    }
    const nearest = allow.nearest(context);
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

interface Match {
  readonly policy: CompiledPolicy;
  readonly rule: CompiledRule;
}

/** Below this many rules the explanation considers every rule; above, it is bounded (see `nearest`). */
const FULL_EXPLANATION_RULES = 64;

/**
 * The rules of a group of policies (all enforced DENY policies, say), in policy order, with an
 * index per protocol so a request only tries the rules that can match it.
 */
class RuleSet {
  private readonly http: RuleIndex<Match>;
  private readonly tcp: RuleIndex<Match>;
  /** TCP only: ALLOW rules that can never match, kept for explanations. */
  private readonly never: { policy: CompiledPolicy; rule: { index: number; never: readonly string[] } }[] = [];

  constructor(
    readonly policies: readonly CompiledPolicy[],
    indexed: boolean,
  ) {
    const http: Match[] = [];
    const tcp: Match[] = [];
    for (const policy of policies) {
      for (const rule of policy.http) http.push({ policy, rule });
      for (const rule of policy.tcp) {
        if ('never' in rule) this.never.push({ policy, rule });
        else tcp.push({ policy, rule });
      }
    }
    const keys = (m: Match): RuleRequirements => (indexed ? requirements(m.rule) : []);
    this.http = RuleIndex.build(http, keys);
    this.tcp = RuleIndex.build(tcp, keys);
  }

  /** The first matching rule in policy order. */
  firstMatch(context: EvalContext): Match | undefined {
    if (this.policies.length === 0) return undefined;
    const candidates = (context.http ? this.http : this.tcp).candidates(context);
    for (let i = 0; i < candidates.length; i++) {
      const match = candidates[i] as Match;
      if (ruleMatches(match.rule, context)) return match;
    }
    return undefined;
  }

  /** The first matching rule of every policy that matches. */
  allMatches(context: EvalContext): PolicyMatch[] {
    if (this.policies.length === 0) return [];
    const out: PolicyMatch[] = [];
    let last: CompiledPolicy | undefined;
    for (const match of (context.http ? this.http : this.tcp).candidates(context)) {
      if (match.policy === last) continue;
      if (ruleMatches(match.rule, context)) {
        out.push({ policy: match.policy.id, rule: match.rule.index });
        last = match.policy;
      }
    }
    return out;
  }

  /**
   * For a denial: the rule with the fewest failing fields and the words for its first failure.
   * Small sets are searched fully; large ones among the first 64 rules the index could not rule
   * out (or the first 64 rules), so explaining a denial stays cheap even with thousands of rules.
   */
  nearest(context: EvalContext): NearestRule | undefined {
    const index = context.http ? this.http : this.tcp;
    const small = index.size + this.never.length <= FULL_EXPLANATION_RULES;
    let pool: readonly (Match | { policy: CompiledPolicy; rule: { index: number; never: readonly string[] } })[];
    if (small) {
      pool = context.http ? index.all() : [...index.all(), ...this.never];
      pool = [...pool].sort((a, b) => this.policies.indexOf(a.policy) - this.policies.indexOf(b.policy) || a.rule.index - b.rule.index);
    } else {
      const candidates = index.candidates(context);
      pool = (candidates.length > 0 ? candidates : index.all()).slice(0, FULL_EXPLANATION_RULES);
      if (pool.length === 0) pool = this.never.slice(0, FULL_EXPLANATION_RULES);
    }
    let best: { policy: CompiledPolicy; rule: TcpRule; failed: number } | undefined;
    for (const { policy, rule } of pool) {
      const failed = 'never' in rule ? NEVER_ON_TCP : countFailures(rule, context);
      if (failed > 0 && (best === undefined || failed < best.failed)) best = { policy, rule, failed };
    }
    if (!best) return undefined;
    const { policy, rule, failed } = best;
    const field = 'never' in rule ? `the rule needs HTTP fields (${rule.never.join(', ')}) and this is a TCP connection` : (firstFailure(rule, context) ?? 'no field failed');
    return { policy: policy.id, rule: rule.index, failed, field };
  }
}

/**
 * The attributes every match of this rule needs a value of: from `when` conditions, and from
 * fields that every `from` (or every `to`) entry has. The index picks the most selective.
 */
function requirements(rule: CompiledRule): RuleRequirements {
  const options: IndexKey[] = [];
  for (const check of rule.when) if (check.key) options.push(check.key);
  for (const entries of [rule.from, rule.to]) {
    const first = entries?.[0];
    if (!entries || !first) continue;
    for (const check of first) {
      const attribute = check.key?.attribute;
      if (attribute === undefined) continue;
      const keys = entries.map((entry) => entry.find((c) => c.key?.attribute === attribute)?.key);
      if (keys.every((k): k is IndexKey => k !== undefined)) options.push(mergeKeys(keys));
    }
  }
  return options;
}

function mergeKeys(keys: readonly IndexKey[]): IndexKey {
  const [first] = keys as [IndexKey, ...IndexKey[]];
  return {
    attribute: first.attribute,
    read: first.read,
    exact: keys.flatMap((k) => k.exact),
    prefixes: keys.flatMap((k) => k.prefixes),
    suffixes: keys.flatMap((k) => k.suffixes),
    any: keys.some((k) => k.any),
  };
}

function allPass(checks: readonly Check[], context: EvalContext): boolean {
  for (let i = 0; i < checks.length; i++) if (!(checks[i] as Check).test(context)) return false;
  return true;
}

function anyEntryPasses(entries: readonly (readonly Check[])[], context: EvalContext): boolean {
  for (let i = 0; i < entries.length; i++) if (allPass(entries[i] as readonly Check[], context)) return true;
  return false;
}

function ruleMatches(rule: CompiledRule, context: EvalContext): boolean {
  if (rule.from !== undefined && !anyEntryPasses(rule.from, context)) return false;
  if (rule.to !== undefined && !anyEntryPasses(rule.to, context)) return false;
  return allPass(rule.when, context);
}

// ---- explanation ------------------------------------------------------------------------

/** ` (paths: "/admin" = "/admin*"; …)`: what made the deciding rule match. */
function why(rule: CompiledRule, context: EvalContext): string {
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

/** Ranks an ALLOW rule that can never match a TCP connection after every rule that can. */
const NEVER_ON_TCP = 1000;

/** Failing checks: the best entry of `from` and of `to`, plus each failing `when` condition. */
function countFailures(rule: CompiledRule, context: EvalContext): number {
  let failed = 0;
  for (const entries of [rule.from, rule.to]) {
    if (entries === undefined) continue;
    let fewest = Infinity;
    for (const entry of entries) {
      let n = 0;
      for (const check of entry) if (!check.test(context)) n++;
      if (n < fewest) fewest = n;
    }
    if (fewest !== Infinity) failed += fewest;
  }
  for (const check of rule.when) if (!check.test(context)) failed++;
  return failed;
}

function firstFailure(rule: CompiledRule, context: EvalContext): string | undefined {
  for (const entries of [rule.from, rule.to]) {
    if (entries === undefined) continue;
    let best: readonly Check[] | undefined;
    let fewest = Infinity;
    for (const entry of entries) {
      const n = entry.filter((c) => !c.test(context)).length;
      if (n < fewest) {
        fewest = n;
        best = entry;
      }
    }
    const failing = best?.find((c) => !c.test(context));
    if (failing) return failing.explain(context);
  }
  return rule.when.find((c) => !c.test(context))?.explain(context);
}
