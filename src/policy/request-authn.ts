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

/** The JWT verifier's contract (src/policy/jwt.ts implements it). */
export type VerifyJwt = (token: string, rules: readonly JwtRule[]) => Promise<JwtVerification>;

export type JwtVerification =
  | { readonly ok: true; /** index into the rules passed */ readonly rule: number; readonly payload: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly reason: string };

/** The parts of an HTTP request tokens are read from. */
export interface TokenSources {
  /** Lower-case names. */
  readonly headers: ReadonlyMap<string, string>;
  /** The raw query string without `?`, if any. */
  readonly query?: string;
}

export interface HeaderChanges {
  readonly remove: readonly string[];
  readonly set: readonly (readonly [string, string])[];
}

export type RequestAuthnResult =
  | { readonly status: 'no-token'; readonly headers: HeaderChanges }
  | { readonly status: 'authenticated'; readonly jwt: VerifiedJwt; readonly policy: string; readonly headers: HeaderChanges }
  | { readonly status: 'rejected'; readonly httpStatus: 401; readonly reason: string; readonly headers: HeaderChanges };

type Location = { readonly kind: 'header'; readonly name: string } | { readonly kind: 'param'; readonly name: string } | { readonly kind: 'cookie'; readonly name: string };

interface Found {
  readonly token: string;
  readonly location: Location;
  readonly rules: number[];
}

/** Claims Istio always treats as space-delimited lists. */
const SPACE_DELIMITED = ['scope', 'permission'];

export async function authenticateRequest(selection: WorkloadJwtRules, request: TokenSources, verify: VerifyJwt): Promise<RequestAuthnResult> {
  const rules = selection.rules;
  // Headers the rules write are always removed first, so a client cannot forge them.
  const remove = new Set<string>();
  for (const { rule } of rules) {
    if (rule.outputPayloadToHeader !== undefined) remove.add(rule.outputPayloadToHeader.toLowerCase());
    for (const item of rule.outputClaimToHeaders ?? []) remove.add(item.header.toLowerCase());
  }
  const headers = (extraRemove: readonly string[] = [], set: [string, string][] = []): HeaderChanges => ({ remove: [...new Set([...remove, ...extraRemove])], set });

  if (rules.length === 0) return { status: 'no-token', headers: headers() };
  const found = findTokens(rules.map((r) => r.rule), request);
  if (found.length === 0) return { status: 'no-token', headers: headers() };
  const distinct = new Set(found.map((f) => f.token));
  if (distinct.size > 1) {
    return { status: 'rejected', httpStatus: 401, reason: `the request carries ${distinct.size} different tokens (${found.map((f) => describeLocation(f.location)).join(', ')}); send one`, headers: headers() };
  }
  const token = found[0]?.token ?? '';
  const candidates = [...new Set(found.flatMap((f) => f.rules))].sort((a, b) => a - b);
  const candidateRules = candidates.map((i) => rules[i]).filter((r): r is WorkloadJwtRule => r !== undefined);
  let result: JwtVerification;
  try {
    result = await verify(token, candidateRules.map((r) => r.rule));
  } catch (err) {
    result = { ok: false, reason: `verification failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!result.ok) return { status: 'rejected', httpStatus: 401, reason: `invalid JWT: ${result.reason}`, headers: headers() };
  const matched = candidateRules[result.rule];
  if (!matched) return { status: 'rejected', httpStatus: 401, reason: 'invalid JWT: the verifier named no rule', headers: headers() };

  const jwt = verifiedJwt(result.payload, matched.rule);
  if (typeof jwt === 'string') return { status: 'rejected', httpStatus: 401, reason: `invalid JWT: ${jwt}`, headers: headers() };

  const forwarded = matched.rule.forwardOriginalToken === true;
  const tokenHeaders = forwarded ? [] : found.filter((f) => f.location.kind === 'header').map((f) => f.location.name);
  const set: [string, string][] = [];
  if (matched.rule.outputPayloadToHeader !== undefined) set.push([matched.rule.outputPayloadToHeader.toLowerCase(), token.split('.')[1] ?? '']);
  for (const item of matched.rule.outputClaimToHeaders ?? []) {
    const value = claimText(result.payload, item.claim);
    if (value !== undefined) set.push([item.header.toLowerCase(), value]);
  }
  return { status: 'authenticated', jwt, policy: matched.policy, headers: headers(tokenHeaders, set) };
}

/** Where each rule looks: its own locations, or Istio's defaults (Bearer header, `access_token` parameter). */
function findTokens(rules: readonly JwtRule[], request: TokenSources): Found[] {
  const found: Found[] = [];
  const add = (token: string, location: Location, rule: number): void => {
    if (token === '') return;
    const existing = found.find((f) => f.token === token && f.location.kind === location.kind && f.location.name === location.name);
    if (existing) existing.rules.push(rule);
    else found.push({ token, location, rules: [rule] });
  };
  const params = new URLSearchParams(request.query ?? '');
  const cookies = parseCookies(request.headers.get('cookie'));
  rules.forEach((rule, index) => {
    const explicit = (rule.fromHeaders ?? []).length + (rule.fromParams ?? []).length + (rule.fromCookies ?? []).length > 0;
    if (!explicit) {
      const auth = request.headers.get('authorization');
      if (auth !== undefined && auth.slice(0, 7).toLowerCase() === 'bearer ') add(auth.slice(7).trim(), { kind: 'header', name: 'authorization' }, index);
      const param = params.get('access_token');
      if (param !== null) add(param, { kind: 'param', name: 'access_token' }, index);
      return;
    }
    for (const header of rule.fromHeaders ?? []) {
      const name = header.name.toLowerCase();
      const value = request.headers.get(name);
      if (value === undefined) continue;
      const prefix = header.prefix ?? '';
      if (value.startsWith(prefix)) add(value.slice(prefix.length).trim(), { kind: 'header', name }, index);
    }
    for (const name of rule.fromParams ?? []) {
      const value = params.get(name);
      if (value !== null) add(value, { kind: 'param', name }, index);
    }
    for (const name of rule.fromCookies ?? []) {
      const value = cookies.get(name);
      if (value !== undefined) add(value, { kind: 'cookie', name }, index);
    }
  });
  return found;
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (name !== '' && !out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

function describeLocation(location: Location): string {
  return location.kind === 'header' ? `header ${location.name}` : location.kind === 'param' ? `query parameter ${location.name}` : `cookie ${location.name}`;
}

/** Authorization's view of a verified payload. */
export function verifiedJwt(payload: Readonly<Record<string, unknown>>, rule: JwtRule): VerifiedJwt | string {
  const issuer = payload['iss'];
  if (typeof issuer !== 'string' || issuer === '') return 'the token has no issuer (iss)';
  const sub = payload['sub'];
  const subject = typeof sub === 'string' ? sub : '';
  const aud = payload['aud'];
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
  const azp = payload['azp'];
  const claims = splitSpaceDelimited(payload, [...SPACE_DELIMITED, ...(rule.spaceDelimitedClaims ?? [])]);
  return {
    issuer,
    subject,
    principal: `${issuer}/${subject}`,
    audiences,
    ...(typeof azp === 'string' ? { presenter: azp } : {}),
    claims,
  };
}

/** `"read write"` → `["read", "write"]` for the named claims (dotted names reach nested claims). */
function splitSpaceDelimited(payload: Readonly<Record<string, unknown>>, names: readonly string[]): Record<string, unknown> {
  const claims = structuredClone(payload) as Record<string, unknown>;
  for (const name of names) {
    for (const path of name.includes('.') ? [[name], name.split('.')] : [[name]]) {
      let parent: Record<string, unknown> | undefined = claims;
      for (const key of path.slice(0, -1)) {
        const next: unknown = parent?.[key];
        parent = typeof next === 'object' && next !== null && !Array.isArray(next) ? (next as Record<string, unknown>) : undefined;
      }
      const last = path[path.length - 1] ?? '';
      const value = parent?.[last];
      if (parent && typeof value === 'string') parent[last] = value.split(/\s+/).filter((s) => s !== '');
    }
  }
  return claims;
}

/** A claim for outputClaimToHeaders: strings, numbers and booleans only; `a.b` reaches nested claims. */
function claimText(payload: Readonly<Record<string, unknown>>, claim: string): string | undefined {
  let current: unknown = payload;
  for (const key of Object.hasOwn(payload, claim) ? [claim] : claim.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return typeof current === 'string' || typeof current === 'number' || typeof current === 'boolean' ? String(current) : undefined;
}
