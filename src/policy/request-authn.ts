import type { ConfigSet } from '../api/config-set.js';
import type { RequestAuthenticationResource } from '../api/resources.js';
import { normalizeJwtRule, type JwtRule } from '../api/schemas/security.js';
import type { VerifiedJwt } from './authz-request.js';
import { selectorMatches, type Workload } from './workload.js';

/**
 * RequestAuthentication: which JWT rules apply to a workload (plain JSON, computed by the
 * control plane), and the decision glue the data plane runs per request — find the token where
 * the rules say, have the verifier check it, turn the result into authorization attributes.
 * Istio's outcome: an invalid token is rejected (401); no token means no request principal
 * (authorization decides); the rules of every applicable policy are pooled.
 */

export interface WorkloadJwtRules {
  readonly rules: readonly WorkloadJwtRule[];
}

export interface WorkloadJwtRule {
  /** `namespace/name` of the RequestAuthentication. */
  readonly policy: string;
  /** Index in its `jwtRules`. */
  readonly index: number;
  readonly rule: JwtRule;
}

export function jwtRulesForWorkload(config: ConfigSet, workload: Workload): WorkloadJwtRules {
  const root = config.mesh.rootNamespace;
  const applies = (p: RequestAuthenticationResource): boolean =>
    (p.metadata.namespace === workload.namespace || p.metadata.namespace === root) &&
    p.spec.targetRef === undefined &&
    (p.spec.targetRefs ?? []).length === 0 &&
    selectorMatches(p.spec.selector?.matchLabels, workload.labels);
  const rules = config.requestAuthentications
    .filter(applies)
    .sort((a, b) => rank(a, root) - rank(b, root))
    .flatMap((p) => (p.spec.jwtRules ?? []).map((rule, index) => ({ policy: `${p.metadata.namespace ?? ''}/${p.metadata.name}`, index, rule: normalizeJwtRule(rule) })));
  return { rules };
}

function rank(p: RequestAuthenticationResource, root: string): number {
  return p.metadata.namespace === root ? 0 : 1;
}

// ---- verification glue ------------------------------------------------------------------

/**
 * The JWT verifier's contract (src/policy/jwt.ts `verifyRequestJwt` implements it): it finds the
 * token at the rules' locations, verifies it and says what to strip and add before forwarding.
 */
export type VerifyRequestJwt = (rules: readonly JwtRule[], request: JwtRequestView) => Promise<JwtCheck>;

export interface JwtRequestView {
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The raw query string without `?`, or null. */
  readonly query: string | null;
}

export type TokenLocation =
  | { readonly kind: 'header'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

export type JwtCheck =
  | { readonly status: 'none'; readonly removeHeaders: readonly string[] }
  | {
      readonly status: 'valid';
      readonly ruleIndex: number;
      readonly issuer: string;
      readonly subject: string;
      readonly principal: string;
      readonly audiences: readonly string[];
      readonly presenter?: string;
      readonly claims: Readonly<Record<string, unknown>>;
      readonly removeHeaders: readonly string[];
      readonly setHeaders: readonly { readonly name: string; readonly value: string }[];
      readonly strip: readonly TokenLocation[];
    }
  | { readonly status: 'invalid'; readonly reason: string; readonly message: string };

/** What the proxy changes before forwarding: forged output headers out, verified ones in, the token stripped unless forwarded. */
export interface ForwardChanges {
  readonly removeHeaders: readonly string[];
  readonly setHeaders: readonly { readonly name: string; readonly value: string }[];
  readonly strip: readonly TokenLocation[];
}

export type RequestAuthnResult =
  | { readonly status: 'no-token'; readonly forward: ForwardChanges }
  | { readonly status: 'authenticated'; readonly jwt: VerifiedJwt; readonly policy: string; readonly forward: ForwardChanges }
  | { readonly status: 'rejected'; readonly httpStatus: 401; readonly reason: string };

/**
 * Istio's outcome for one request: no applicable rule or no token → continue without a request
 * principal; an invalid token → 401; a valid one → the attributes authorization reads. The
 * rules of every applicable RequestAuthentication are checked together.
 */
export async function authenticateRequest(selection: WorkloadJwtRules, request: JwtRequestView, verify: VerifyRequestJwt): Promise<RequestAuthnResult> {
  const none: ForwardChanges = { removeHeaders: [], setHeaders: [], strip: [] };
  if (selection.rules.length === 0) return { status: 'no-token', forward: none };
  let result: JwtCheck;
  try {
    result = await verify(selection.rules.map((r) => r.rule), request);
  } catch (err) {
    // The verifier promises not to throw; if it does, the token is not trusted.
    return { status: 'rejected', httpStatus: 401, reason: `JWT verification failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (result.status === 'none') return { status: 'no-token', forward: { ...none, removeHeaders: result.removeHeaders } };
  if (result.status === 'invalid') return { status: 'rejected', httpStatus: 401, reason: `invalid JWT (${result.reason}): ${result.message}` };
  const matched = selection.rules[result.ruleIndex];
  if (!matched) return { status: 'rejected', httpStatus: 401, reason: 'invalid JWT: the verifier named no applicable rule' };
  const jwt: VerifiedJwt = {
    issuer: result.issuer,
    subject: result.subject,
    principal: result.principal,
    audiences: result.audiences,
    ...(result.presenter === undefined ? {} : { presenter: result.presenter }),
    claims: result.claims,
  };
  return {
    status: 'authenticated',
    jwt,
    policy: matched.policy,
    forward: { removeHeaders: result.removeHeaders, setHeaders: result.setHeaders, strip: result.strip },
  };
}
