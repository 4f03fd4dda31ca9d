/**
 * JWT verification for RequestAuthentication, with Istio's semantics and `jose` doing the
 * cryptography. Pure: the only I/O (fetching a `jwksUri`) happens behind `JwksProvider`,
 * which the data plane implements (src/dataplane/jwks.ts); an inline `jwks` needs no provider.
 *
 * Istio's rules followed here:
 * - A rule is active only for tokens found at its locations. Without `fromHeaders`,
 *   `fromParams` and `fromCookies`, the locations are `Authorization: Bearer <token>` and the
 *   `access_token` query parameter.
 * - A token is checked against the rule(s) whose `issuer` equals its `iss`; a token from an
 *   issuer no rule names is invalid.
 * - No token: the request continues without a request principal. Invalid token: reject (401).
 * - `audiences` is any-of; an empty list means no audience check.
 * - Principal `iss/sub`; `request.auth.audiences` from `aud`; `request.auth.presenter` from `azp`.
 * - `scope`, `permission` and the rule's `spaceDelimitedClaims` are split on whitespace into
 *   lists for authorization.
 * - `forwardOriginalToken: false` (the default) removes the token before forwarding.
 *
 * Trellis is stricter in these places (marked STRICTER in the code): only asymmetric algorithms
 * are accepted; more than one distinct token in a request is rejected (Istio: "the output
 * principal is undefined"); a configured header whose value lacks the configured prefix is
 * invalid (as Istio's field documentation says); output headers named by the rules are always
 * removed from the incoming request, so a client cannot forge them.
 */
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';

// ---------------------------------------------------------------------------------------------
// Configuration: Istio's JWTRule, field for field.

export interface JwtHeader {
  readonly name: string;
  /** Stripped from the header value before decoding, e.g. `"Bearer "` (with the space). */
  readonly prefix?: string | undefined;
}

export interface ClaimToHeader {
  readonly header: string;
  /** A claim name; a dotted path (`a.b.c`) reaches nested claims. */
  readonly claim: string;
}

/** Istio's `JWTRule` (security.istio.io v1/v1beta1). */
export interface JwtRule {
  readonly issuer: string;
  readonly audiences?: readonly string[] | undefined;
  readonly jwksUri?: string | undefined;
  /** An inline JSON Web Key Set (a JSON string). Takes precedence over `jwksUri`. */
  readonly jwks?: string | undefined;
  readonly fromHeaders?: readonly JwtHeader[] | undefined;
  readonly fromParams?: readonly string[] | undefined;
  readonly fromCookies?: readonly string[] | undefined;
  readonly outputPayloadToHeader?: string | undefined;
  readonly outputClaimToHeaders?: readonly ClaimToHeader[] | undefined;
  readonly forwardOriginalToken?: boolean | undefined;
  /** JWKS fetch timeout in Istio duration notation (`5s`); used by the JWKS provider. */
  readonly timeout?: string | undefined;
  readonly spaceDelimitedClaims?: readonly string[] | undefined;
}

/** Where the key sets of `jwksUri` rules come from. Implementations do the I/O and caching. */
export interface JwksProvider {
  /**
   * The key set for `rule` (which has a `jwksUri` and no inline `jwks`). `forceRefresh` asks for
   * a fresh copy because a token named a `kid` the cached set lacks; providers may rate-limit it
   * and return their cached set. Must reject (never resolve with an empty set) when no key set
   * is available.
   */
  getKeySet(rule: JwtRule, options: { readonly forceRefresh: boolean }): Promise<JSONWebKeySet>;
}

// ---------------------------------------------------------------------------------------------
// Request view and results.

export interface JwtRequest {
  /** Request headers; names are matched case-insensitively (node's lower-case shape works as is). */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The raw query string (with or without the leading `?`), or parsed parameters. */
  readonly query?: string | URLSearchParams | null | undefined;
  /** Parsed cookies; when absent they are read from the `cookie` header(s). */
  readonly cookies?: Readonly<Record<string, string>> | undefined;
}

export type TokenLocation =
  | { readonly kind: 'header'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

export const JWT_INVALID_REASONS = [
  'malformed',
  'alg_not_allowed',
  'bad_issuer',
  'bad_audience',
  'bad_signature',
  'unknown_kid',
  'expired',
  'not_yet_valid',
  'jwks_unavailable',
  'multiple_tokens',
] as const;
export type JwtInvalidReason = (typeof JWT_INVALID_REASONS)[number];

export interface JwtNone {
  readonly status: 'none';
  /** Output headers of the rules: remove them from the request so a client cannot forge them. */
  readonly removeHeaders: readonly string[];
}

export interface JwtValid {
  readonly status: 'valid';
  /** Index into the `rules` array of the rule that verified the token. */
  readonly ruleIndex: number;
  readonly issuer: string;
  /** The `sub` claim; empty when the token has none. */
  readonly subject: string;
  /** Istio's request principal: `iss/sub`. */
  readonly principal: string;
  /** The `aud` claim as a list (empty when absent). */
  readonly audiences: readonly string[];
  /** The `azp` claim, when present. */
  readonly presenter?: string;
  /** The payload for authorization: space-delimited claims already split into lists. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** The verified payload exactly as signed. */
  readonly payload: Readonly<JWTPayload>;
  /** Where the token was found (several places when the same token appears more than once). */
  readonly locations: readonly TokenLocation[];
  /** Headers to remove from the request before forwarding (forged output headers). */
  readonly removeHeaders: readonly string[];
  /** Headers to set on the forwarded request (outputPayloadToHeader, outputClaimToHeaders); they replace existing values. */
  readonly setHeaders: readonly { readonly name: string; readonly value: string }[];
  /** Token locations to strip before forwarding (empty when `forwardOriginalToken` is true). */
  readonly strip: readonly TokenLocation[];
}

export interface JwtInvalid {
  readonly status: 'invalid';
  readonly reason: JwtInvalidReason;
  /** For logs and authenticated mesh peers; never for anonymous clients. */
  readonly message: string;
  /** The rule the token was checked against, when one was selected. */
  readonly ruleIndex?: number;
}

export type JwtResult = JwtNone | JwtValid | JwtInvalid;

export interface JwtVerifyOptions {
  /** Needed when a rule has a `jwksUri` and no inline `jwks`. */
  readonly provider?: JwksProvider | undefined;
  /** Tolerance for `exp` and `nbf`, in seconds. Default 60 (Envoy's jwt_authn default). */
  readonly clockSkewSeconds?: number | undefined;
  /** The clock; default the system clock. */
  readonly now?: (() => Date) | undefined;
  /** Tokens longer than this are malformed. Default 16 KiB. */
  readonly maxTokenLength?: number | undefined;
}

// ---------------------------------------------------------------------------------------------

/**
 * Asymmetric JWS algorithms only. STRICTER: HS* would let anyone who knows the public key forge
 * tokens when a key is misused as an HMAC secret; `none` is never accepted.
 */
export const ALLOWED_JWT_ALGORITHMS: readonly string[] = [
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA', 'Ed25519',
];

const DEFAULT_SPACE_DELIMITED_CLAIMS = ['scope', 'permission'];
const DEFAULT_CLOCK_SKEW_SECONDS = 60;
const DEFAULT_MAX_TOKEN_LENGTH = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const DEFAULT_LOCATIONS: readonly TokenLocation[] = [
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
];

/** The locations a rule reads tokens from. */
export function ruleTokenLocations(rule: JwtRule): readonly TokenLocation[] {
  const headers = rule.fromHeaders ?? [];
  const params = rule.fromParams ?? [];
  const cookies = rule.fromCookies ?? [];
  if (headers.length === 0 && params.length === 0 && cookies.length === 0) return DEFAULT_LOCATIONS;
  return [
    ...headers.map((h): TokenLocation => ({ kind: 'header', name: h.name.toLowerCase(), prefix: h.prefix ?? '' })),
    ...params.map((name): TokenLocation => ({ kind: 'param', name })),
    ...cookies.map((name): TokenLocation => ({ kind: 'cookie', name })),
  ];
}

/** Every output header the rules may set, lower case, without duplicates. */
export function jwtOutputHeaders(rules: readonly JwtRule[]): string[] {
  const names = new Set<string>();
  for (const rule of rules) {
    if (rule.outputPayloadToHeader) names.add(rule.outputPayloadToHeader.toLowerCase());
    for (const item of rule.outputClaimToHeaders ?? []) names.add(item.header.toLowerCase());
  }
  return [...names];
}

function sameLocation(a: TokenLocation, b: TokenLocation): boolean {
  return a.kind === b.kind && a.name === b.name && (a.kind !== 'header' || b.kind !== 'header' || a.prefix === b.prefix);
}

function locationText(location: TokenLocation): string {
  switch (location.kind) {
    case 'header':
      return location.prefix ? `header ${location.name} (prefix "${location.prefix}")` : `header ${location.name}`;
    case 'param':
      return `query parameter ${location.name}`;
    case 'cookie':
      return `cookie ${location.name}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Token extraction.

interface Candidate {
  readonly token: string;
  readonly locations: TokenLocation[];
  /** Rules whose locations include where this token was found. */
  readonly ruleIndexes: Set<number>;
}

type Extracted = { readonly ok: true; readonly candidates: Candidate[] } | JwtInvalid;

function headerValues(headers: JwtRequest['headers'], lowerName: string): string[] {
  const direct = headers[lowerName];
  const values: string[] = [];
  const add = (value: string | readonly string[] | undefined): void => {
    if (value === undefined) return;
    if (typeof value === 'string') values.push(value);
    else values.push(...value);
  };
  if (direct !== undefined) {
    add(direct);
    return values;
  }
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === lowerName) add(value);
  }
  return values;
}

function parseCookies(headers: JwtRequest['headers']): Map<string, string[]> {
  const cookies = new Map<string, string[]>();
  for (const header of headerValues(headers, 'cookie')) {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq <= 0) continue;
      const name = part.slice(0, eq).trim();
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      const list = cookies.get(name) ?? [];
      list.push(value);
      cookies.set(name, list);
    }
  }
  return cookies;
}

function queryParams(query: JwtRequest['query']): URLSearchParams {
  if (query === undefined || query === null) return new URLSearchParams();
  if (typeof query !== 'string') return query;
  return new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
}

interface Found {
  /** Tokens, each with the raw header value it came from (for headers). */
  readonly tokens: { readonly token: string; readonly raw?: string }[];
  /** Raw values of a configured header that lack the configured prefix. */
  readonly mismatched: string[];
}

/** Values found at one location. */
function valuesAt(
  location: TokenLocation,
  request: JwtRequest,
  params: () => URLSearchParams,
  cookies: () => Map<string, string[]>,
): Found {
  const found: Found = { tokens: [], mismatched: [] };
  if (location.kind === 'param') {
    for (const token of params().getAll(location.name)) found.tokens.push({ token });
    return found;
  }
  if (location.kind === 'cookie') {
    const values = request.cookies ? [request.cookies[location.name]] : (cookies().get(location.name) ?? []);
    for (const token of values) if (token !== undefined) found.tokens.push({ token });
    return found;
  }
  const isDefault = location === DEFAULT_LOCATIONS[0];
  for (const raw of headerValues(request.headers, location.name)) {
    const value = raw.trim();
    if (location.prefix === '') {
      found.tokens.push({ token: value, raw });
    } else if (isDefault) {
      // The default location is RFC 6750's Bearer scheme (scheme names are case-insensitive);
      // any other scheme (Basic, Negotiate…) is not a JWT and is left alone.
      if (/^bearer(?:\s|$)/i.test(value)) found.tokens.push({ token: value.slice(6).trim(), raw });
    } else if (raw.startsWith(location.prefix)) {
      found.tokens.push({ token: raw.slice(location.prefix.length).trim(), raw });
    } else {
      found.mismatched.push(raw);
    }
  }
  return found;
}

function extractTokens(rules: readonly JwtRule[], request: JwtRequest): Extracted {
  let params: URLSearchParams | undefined;
  let cookies: Map<string, string[]> | undefined;
  const getParams = (): URLSearchParams => (params ??= queryParams(request.query));
  const getCookies = (): Map<string, string[]> => (cookies ??= parseCookies(request.headers));

  const byToken = new Map<string, Candidate>();
  // Header values some location took a token from, and values a configured prefix did not fit.
  const claimed = new Set<string>();
  const mismatches: { key: string; location: TokenLocation; ruleIndex: number }[] = [];
  for (const [ruleIndex, rule] of rules.entries()) {
    for (const location of ruleTokenLocations(rule)) {
      const found = valuesAt(location, request, getParams, getCookies);
      for (const raw of found.mismatched) mismatches.push({ key: `${location.name}\n${raw}`, location, ruleIndex });
      for (const { token, raw } of found.tokens) {
        if (token === '') {
          return { status: 'invalid', reason: 'malformed', message: `${locationText(location)} is present but empty`, ruleIndex };
        }
        if (raw !== undefined) claimed.add(`${location.name}\n${raw}`);
        let candidate = byToken.get(token);
        if (!candidate) {
          candidate = { token, locations: [], ruleIndexes: new Set() };
          byToken.set(token, candidate);
        }
        if (!candidate.locations.some((l) => sameLocation(l, location))) candidate.locations.push(location);
        candidate.ruleIndexes.add(ruleIndex);
      }
    }
  }
  // STRICTER (and what Istio's JWTHeader documentation says): a configured header without the
  // configured prefix is invalid, not ignored, unless another rule's location for the same
  // header took a token from that value.
  const unclaimed = mismatches.find((m) => !claimed.has(m.key));
  if (unclaimed) {
    return { status: 'invalid', reason: 'malformed', message: `${locationText(unclaimed.location)} does not start with the configured prefix`, ruleIndex: unclaimed.ruleIndex };
  }
  return { ok: true, candidates: [...byToken.values()] };
}

// ---------------------------------------------------------------------------------------------
// Verification.

function invalid(reason: JwtInvalidReason, message: string, ruleIndex?: number): JwtInvalid {
  return ruleIndex === undefined ? { status: 'invalid', reason, message } : { status: 'invalid', reason, message, ruleIndex };
}

/**
 * Verifies the JWT(s) a request carries against the RequestAuthentication rules that apply to
 * the workload (all matching policies' `jwtRules`, concatenated). Never throws.
 */
export async function verifyRequestJwt(
  rules: readonly JwtRule[],
  request: JwtRequest,
  options: JwtVerifyOptions = {},
): Promise<JwtResult> {
  const removeHeaders = jwtOutputHeaders(rules);
  const extracted = extractTokens(rules, request);
  if ('status' in extracted) return extracted;
  const { candidates } = extracted;
  const first = candidates[0];
  if (first === undefined) return { status: 'none', removeHeaders };
  if (candidates.length > 1) {
    // STRICTER: Istio documents the principal of a multi-token request as undefined.
    return invalid('multiple_tokens', `the request carries ${candidates.length} different tokens (${candidates.map((c) => c.locations.map(locationText).join(', ')).join('; ')}); send exactly one`);
  }
  return verifyCandidate(rules, first, removeHeaders, options);
}

/**
 * Verifies one bare token against the rules, as if it had been found at every rule's location
 * (for `trellis authz check --jwt`). Never throws.
 */
export async function verifyJwtToken(
  rules: readonly JwtRule[],
  token: string,
  options: JwtVerifyOptions = {},
): Promise<JwtNone | JwtValid | JwtInvalid> {
  const candidate: Candidate = { token: token.trim(), locations: [], ruleIndexes: new Set(rules.keys()) };
  if (candidate.token === '') return { status: 'none', removeHeaders: jwtOutputHeaders(rules) };
  return verifyCandidate(rules, candidate, jwtOutputHeaders(rules), options);
}

async function verifyCandidate(
  rules: readonly JwtRule[],
  candidate: Candidate,
  removeHeaders: string[],
  options: JwtVerifyOptions,
): Promise<JwtResult> {
  const { token } = candidate;
  const maxLength = options.maxTokenLength ?? DEFAULT_MAX_TOKEN_LENGTH;
  if (token.length > maxLength) return invalid('malformed', `the token is longer than ${maxLength} characters`);
  if (!COMPACT_JWS.test(token)) return invalid('malformed', 'the token is not a compact JWS (three base64url parts separated by dots)');

  let alg: unknown;
  let unverified: JWTPayload;
  try {
    alg = decodeProtectedHeader(token).alg;
    unverified = decodeJwt(token);
  } catch (err) {
    return invalid('malformed', `the token cannot be decoded: ${joseMessage(err)}`);
  }
  if (typeof alg !== 'string' || !ALLOWED_JWT_ALGORITHMS.includes(alg)) {
    return invalid('alg_not_allowed', `algorithm ${JSON.stringify(alg ?? null)} is not allowed; accepted: ${ALLOWED_JWT_ALGORITHMS.join(', ')}`);
  }
  const iss = unverified.iss;
  if (typeof iss !== 'string' || iss === '') return invalid('bad_issuer', 'the token has no "iss" claim');

  const sameIssuer = [...rules.keys()].filter((i) => rules[i]?.issuer === iss);
  if (sameIssuer.length === 0) return invalid('bad_issuer', `no rule accepts tokens from issuer "${iss}"`);
  const selected = sameIssuer.filter((i) => candidate.ruleIndexes.has(i));
  if (selected.length === 0) {
    return invalid('bad_issuer', `a token from issuer "${iss}" was found at ${candidate.locations.map(locationText).join(', ')}, where no rule for that issuer looks`);
  }

  // Several rules may name the same issuer (several policies apply); the token is valid if any
  // of them accepts it. The first rule's failure is reported otherwise.
  let firstFailure: JwtInvalid | undefined;
  for (const ruleIndex of selected) {
    const rule = rules[ruleIndex];
    if (!rule) continue;
    const outcome = await verifyWithRule(rule, ruleIndex, token, options);
    if ('status' in outcome) {
      firstFailure ??= outcome;
      continue;
    }
    return success(rule, ruleIndex, token, outcome.payload, candidate.locations, removeHeaders);
  }
  return firstFailure ?? invalid('bad_issuer', `no rule accepts tokens from issuer "${iss}"`);
}

type KeyResolution = { readonly keys: JWTVerifyGetKey } | JwtInvalid;

async function keysFor(rule: JwtRule, ruleIndex: number, options: JwtVerifyOptions, forceRefresh: boolean): Promise<KeyResolution> {
  if (rule.jwks !== undefined && rule.jwks !== '') {
    const keys = inlineKeySet(rule.jwks);
    return keys ? { keys } : invalid('jwks_unavailable', 'the rule\'s inline jwks is not a valid JSON Web Key Set', ruleIndex);
  }
  if (!options.provider) {
    return invalid('jwks_unavailable', `the rule for issuer "${rule.issuer}" has no inline jwks and no JWKS provider is configured`, ruleIndex);
  }
  try {
    const set = await options.provider.getKeySet(rule, { forceRefresh });
    return { keys: localKeySet(set) };
  } catch (err) {
    return invalid('jwks_unavailable', `the key set for issuer "${rule.issuer}" is unavailable: ${joseMessage(err)}`, ruleIndex);
  }
}

async function verifyWithRule(
  rule: JwtRule,
  ruleIndex: number,
  token: string,
  options: JwtVerifyOptions,
): Promise<{ readonly payload: JWTPayload } | JwtInvalid> {
  const verifyOptions: JWTVerifyOptions = {
    algorithms: [...ALLOWED_JWT_ALGORITHMS],
    issuer: rule.issuer,
    clockTolerance: options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS,
  };
  if (rule.audiences && rule.audiences.length > 0) verifyOptions.audience = [...rule.audiences];
  if (options.now) verifyOptions.currentDate = options.now();

  let refreshed = false;
  for (;;) {
    const resolved = await keysFor(rule, ruleIndex, options, refreshed);
    if ('status' in resolved) return resolved;
    try {
      return { payload: await verifyWithKeySet(token, resolved.keys, verifyOptions) };
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey) {
        // An unknown kid may mean the issuer rotated keys: ask the provider once for a fresh set.
        if (!refreshed && rule.jwks === undefined && options.provider) {
          refreshed = true;
          continue;
        }
        const kid = safeKid(token);
        return invalid('unknown_kid', kid === undefined ? 'no key in the key set matches the token\'s algorithm' : `no key in the key set has kid "${kid}" for the token's algorithm`, ruleIndex);
      }
      return mapVerifyError(err, ruleIndex);
    }
  }
}

/**
 * jose's local key set throws JWKSMultipleMatchingKeys when several keys fit (no kid, or a
 * shared kid); each candidate is then tried in turn, as jose's documentation recommends.
 */
async function verifyWithKeySet(token: string, keys: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, keys, options)).payload;
  } catch (err) {
    if (!(err instanceof joseErrors.JWKSMultipleMatchingKeys)) throw err;
    let lastError: unknown = err;
    for await (const key of err) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        lastError = inner;
        if (!(inner instanceof joseErrors.JWSSignatureVerificationFailed)) break;
      }
    }
    throw lastError instanceof joseErrors.JWKSMultipleMatchingKeys ? new joseErrors.JWSSignatureVerificationFailed() : lastError;
  }
}

function mapVerifyError(err: unknown, ruleIndex: number): JwtInvalid {
  const message = joseMessage(err);
  if (err instanceof joseErrors.JWTExpired) return invalid('expired', 'the token has expired', ruleIndex);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
        return invalid(err.reason === 'check_failed' ? 'not_yet_valid' : 'malformed', err.reason === 'check_failed' ? 'the token is not valid yet (nbf)' : message, ruleIndex);
      case 'aud':
        return invalid('bad_audience', 'the token\'s audience is not one the rule accepts', ruleIndex);
      case 'iss':
        return invalid('bad_issuer', 'the token\'s issuer does not match the rule', ruleIndex);
      default:
        return invalid('malformed', message, ruleIndex);
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return invalid('alg_not_allowed', message, ruleIndex);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return invalid('bad_signature', 'the token\'s signature does not verify', ruleIndex);
  if (err instanceof joseErrors.JWKSInvalid || err instanceof joseErrors.JWKInvalid) {
    return invalid('jwks_unavailable', `the key set is not usable: ${message}`, ruleIndex);
  }
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JOSENotSupported) {
    return invalid('malformed', message, ruleIndex);
  }
  // Anything else (for example an RSA key shorter than 2048 bits) fails closed.
  return invalid('bad_signature', `the token could not be verified: ${message}`, ruleIndex);
}

function joseMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function safeKid(token: string): string | undefined {
  try {
    const { kid } = decodeProtectedHeader(token);
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Key-set caches: importing keys costs more than verifying, so a key set is turned into a
// jose local key set once (per provider result object, or per inline JWKS string).

const localSets = new WeakMap<JSONWebKeySet, JWTVerifyGetKey>();

function localKeySet(set: JSONWebKeySet): JWTVerifyGetKey {
  let keys = localSets.get(set);
  if (!keys) {
    keys = createLocalJWKSet(set);
    localSets.set(set, keys);
  }
  return keys;
}

const INLINE_CACHE_LIMIT = 256;
const inlineSets = new Map<string, JWTVerifyGetKey | null>();

function inlineKeySet(jwks: string): JWTVerifyGetKey | null {
  if (inlineSets.has(jwks)) return inlineSets.get(jwks) ?? null;
  let keys: JWTVerifyGetKey | null = null;
  try {
    const parsed: unknown = JSON.parse(jwks);
    keys = createLocalJWKSet(parsed as JSONWebKeySet);
  } catch {
    keys = null;
  }
  if (inlineSets.size >= INLINE_CACHE_LIMIT) inlineSets.clear();
  inlineSets.set(jwks, keys);
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Success: identity, claims for authorization, header mutations.

function success(
  rule: JwtRule,
  ruleIndex: number,
  token: string,
  payload: JWTPayload,
  locations: TokenLocation[],
  removeHeaders: string[],
): JwtValid {
  const issuer = payload.iss ?? rule.issuer;
  const subject = typeof payload.sub === 'string' ? payload.sub : '';
  const aud = payload.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
  const azp = payload['azp'];

  const setHeaders: { name: string; value: string }[] = [];
  if (rule.outputPayloadToHeader) {
    // The payload segment as signed: base64url of the payload JSON, as Envoy forwards it.
    setHeaders.push({ name: rule.outputPayloadToHeader.toLowerCase(), value: token.split('.')[1] ?? '' });
  }
  for (const item of rule.outputClaimToHeaders ?? []) {
    const value = claimHeaderValue(claimAt(payload, item.claim));
    if (value !== undefined) setHeaders.push({ name: item.header.toLowerCase(), value });
  }

  const result: JwtValid = {
    status: 'valid',
    ruleIndex,
    issuer,
    subject,
    principal: `${issuer}/${subject}`,
    audiences,
    claims: splitSpaceDelimited(payload, [...DEFAULT_SPACE_DELIMITED_CLAIMS, ...(rule.spaceDelimitedClaims ?? [])]),
    payload,
    locations,
    removeHeaders,
    setHeaders,
    strip: rule.forwardOriginalToken === true ? [] : locations,
  };
  return typeof azp === 'string' ? { ...result, presenter: azp } : result;
}

/** A claim by exact name, else by dotted path into nested objects. */
function claimAt(payload: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let current: unknown = payload;
  for (const part of name.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/**
 * Istio copies only string, integer and boolean claims to headers. A string that could not be
 * sent as a header value (CR, LF, other control characters) is skipped rather than sanitized.
 */
function claimHeaderValue(value: unknown): string | undefined {
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
  if (typeof value === 'string') {
    // Header values are visible ASCII, space and tab; anything else is not copied.
    return /^[\t\x20-\x7e]*$/.test(value) ? value : undefined;
  }
  return undefined;
}

function splitSpaceDelimited(payload: JWTPayload, names: readonly string[]): Record<string, unknown> {
  const claims = structuredClone(payload) as Record<string, unknown>;
  for (const name of new Set(names)) {
    if (Object.hasOwn(claims, name)) {
      const value = claims[name];
      if (typeof value === 'string') claims[name] = splitWords(value);
      continue;
    }
    const parts = name.split('.');
    const leaf = parts.pop();
    if (leaf === undefined || parts.length === 0) continue;
    let parent: unknown = claims;
    for (const part of parts) {
      if (typeof parent !== 'object' || parent === null || Array.isArray(parent) || !Object.hasOwn(parent, part)) {
        parent = undefined;
        break;
      }
      parent = (parent as Record<string, unknown>)[part];
    }
    if (typeof parent === 'object' && parent !== null && !Array.isArray(parent) && Object.hasOwn(parent, leaf)) {
      const record = parent as Record<string, unknown>;
      const value = record[leaf];
      if (typeof value === 'string') record[leaf] = splitWords(value);
    }
  }
  return claims;
}

function splitWords(value: string): string[] {
  return value.split(/\s+/).filter((word) => word !== '');
}

// ---------------------------------------------------------------------------------------------
// Applying a result to the request that is forwarded.

export type HeaderPairs = readonly (readonly [name: string, value: string])[];

/** What RequestAuthentication changes in a forwarded request (checkInbound's `forward`). */
export interface JwtForwardChanges {
  readonly removeHeaders: readonly string[];
  readonly setHeaders: readonly { readonly name: string; readonly value: string }[];
  readonly strip: readonly TokenLocation[];
}

/**
 * The forwarded request after RequestAuthentication: forged output headers removed, the token
 * stripped from where it was found (unless `forwardOriginalToken`), output headers set. Header
 * names keep their received case; lookups are case-insensitive. Pure.
 */
export function applyJwtResult(
  request: { readonly headers: HeaderPairs; readonly query: string | null },
  result: JwtNone | JwtValid,
): { headers: [string, string][]; query: string | null } {
  return applyForwardChanges(request, result.status === 'valid' ? result : { removeHeaders: result.removeHeaders, setHeaders: [], strip: [] });
}

export function applyForwardChanges(
  request: { readonly headers: HeaderPairs; readonly query: string | null },
  changes: JwtForwardChanges,
): { headers: [string, string][]; query: string | null } {
  const drop = new Set(changes.removeHeaders.map((name) => name.toLowerCase()));
  let query = request.query;
  const cookiesToStrip: string[] = [];
  for (const location of changes.strip) {
    if (location.kind === 'header') drop.add(location.name.toLowerCase());
    else if (location.kind === 'param') query = query === null ? null : removeQueryParam(query, location.name);
    else cookiesToStrip.push(location.name);
  }
  for (const { name } of changes.setHeaders) drop.add(name.toLowerCase());
  const headers: [string, string][] = [];
  for (const [name, value] of request.headers) {
    const lower = name.toLowerCase();
    if (drop.has(lower)) continue;
    if (lower === 'cookie' && cookiesToStrip.length > 0) {
      let remaining: string | null = value;
      for (const cookie of cookiesToStrip) remaining = remaining === null ? null : removeCookie(remaining, cookie);
      if (remaining !== null) headers.push([name, remaining]);
      continue;
    }
    headers.push([name, value]);
  }
  for (const { name, value } of changes.setHeaders) headers.push([name, value]);
  return { headers, query };
}

/** Removes every `name=` parameter from a raw query string (without `?`), keeping the rest byte for byte. */
function removeQueryParam(query: string, name: string): string {
  return query
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq === -1 ? pair : pair.slice(0, eq);
      let decoded: string;
      try {
        decoded = decodeURIComponent(rawName.replaceAll('+', ' '));
      } catch {
        decoded = rawName;
      }
      return decoded !== name;
    })
    .join('&');
}

/** Removes a cookie from a Cookie header value; null when no cookie is left. */
function removeCookie(cookieHeader: string, name: string): string | null {
  const kept = cookieHeader
    .split(';')
    .map((part) => part.trim())
    .filter((part) => {
      if (part === '') return false;
      const eq = part.indexOf('=');
      return (eq === -1 ? part : part.slice(0, eq)).trim() !== name;
    });
  return kept.length === 0 ? null : kept.join('; ');
}
