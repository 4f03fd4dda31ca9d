import { parseDuration } from '../duration.js';
import { isTrellisError } from '../errors.js';
import type { FieldPath } from '../diagnostics.js';
import { isHeaderName, parsePortText } from '../names.js';
import type { JwtRuleInput, PeerAuthenticationSpec, RequestAuthenticationSpec } from '../schemas/security.js';
import type { ResourceChecker } from './checker.js';
import { checkTargetRefs, checkWorkloadSelector } from './common.js';
import { checkList } from './values.js';

/** PeerAuthentication and RequestAuthentication (with its JWT rules). */

export function checkPeerAuthentication(checker: ResourceChecker, spec: PeerAuthenticationSpec): void {
  checkWorkloadSelector(checker, ['spec', 'selector'], spec.selector);
  const hasSelector = Object.keys(spec.selector?.matchLabels ?? {}).length > 0;
  if (spec.portLevelMtls !== undefined) {
    if (!hasSelector) {
      checker.error(['spec', 'portLevelMtls'], 'portLevelMtls needs a selector with labels: ports belong to workloads, not to a namespace or the mesh');
    }
    const ports = Object.keys(spec.portLevelMtls);
    if (ports.length === 0) checker.error(['spec', 'portLevelMtls'], 'portLevelMtls, if set, must list at least one port');
    for (const port of ports) {
      if (parsePortText(port) === undefined) {
        checker.error(['spec', 'portLevelMtls', port], `bad port "${port}": ports are numbers from 1 to 65535`, 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
      }
    }
  }
}

export function checkRequestAuthentication(checker: ResourceChecker, spec: RequestAuthenticationSpec): void {
  checkWorkloadSelector(checker, ['spec', 'selector'], spec.selector);
  checkTargetRefs(checker, spec);
  spec.jwtRules?.forEach((rule, index) => checkJwtRule(checker, ['spec', 'jwtRules', index], rule));
}

/** Istio's JWTRule checks, plus Trellis's: an issuer and an explicit key source are required. */
export function checkJwtRule(checker: ResourceChecker, path: FieldPath, rule: JwtRuleInput): void {
  if (rule.issuer === undefined || rule.issuer === '') {
    checker.error(rule.issuer === undefined ? path : [...path, 'issuer'], 'issuer is required: Trellis accepts a token only from the issuer a rule names', 'TRELLIS_CONFIG_MISSING_FIELD');
  }
  checkList(checker, [...path, 'audiences'], rule.audiences);
  if (rule.jwksUri !== undefined && rule.jwks_uri !== undefined) {
    checker.error([...path, 'jwks_uri'], 'set jwksUri or jwks_uri, not both');
  }
  const jwksUri = rule.jwksUri ?? rule.jwks_uri;
  const uriField = rule.jwksUri !== undefined ? 'jwksUri' : 'jwks_uri';
  if (jwksUri !== undefined && rule.jwks !== undefined) {
    checker.error([...path, 'jwks'], 'set jwksUri or jwks, not both');
  }
  if (jwksUri === undefined && rule.jwks === undefined) {
    checker.error(path, 'set jwksUri or jwks: Trellis does not discover keys through OpenID discovery', 'TRELLIS_CONFIG_MISSING_FIELD');
  }
  if (jwksUri !== undefined) {
    const problem = jwksUriProblem(jwksUri);
    if (problem) checker.error([...path, uriField], problem);
  }
  if (rule.jwks !== undefined) {
    const problem = jwksProblem(rule.jwks);
    if (problem) checker.error([...path, 'jwks'], problem);
  }
  rule.fromHeaders?.forEach((header, i) => {
    const problem = headerNameProblem(header.name);
    if (problem) checker.error([...path, 'fromHeaders', i, 'name'], problem);
  });
  checkList(checker, [...path, 'fromParams'], rule.fromParams);
  checkList(checker, [...path, 'fromCookies'], rule.fromCookies, (c, p, value) => {
    if (!isHeaderName(value)) c.error(p, `"${value}" is not a valid cookie name`);
  });
  if (rule.outputPayloadToHeader !== undefined) {
    const problem = headerNameProblem(rule.outputPayloadToHeader, true);
    if (problem) checker.error([...path, 'outputPayloadToHeader'], problem);
  }
  const seenHeaders = new Map<string, number>();
  rule.outputClaimToHeaders?.forEach((item, i) => {
    const itemPath = [...path, 'outputClaimToHeaders', i];
    if (item.claim === '') checker.error([...itemPath, 'claim'], 'claim must not be empty');
    const problem = headerNameProblem(item.header, true);
    if (problem) checker.error([...itemPath, 'header'], problem);
    const lower = item.header.toLowerCase();
    const previous = seenHeaders.get(lower);
    if (previous !== undefined) checker.error([...itemPath, 'header'], `header "${item.header}" is already set by outputClaimToHeaders[${previous}]`);
    seenHeaders.set(lower, i);
  });
  if (rule.timeout !== undefined) {
    try {
      if (parseDuration(rule.timeout) <= 0) checker.error([...path, 'timeout'], 'timeout must be greater than zero');
    } catch (err) {
      checker.error([...path, 'timeout'], isTrellisError(err) ? err.message : `invalid duration "${rule.timeout}"`);
    }
  }
  checkList(checker, [...path, 'spaceDelimitedClaims'], rule.spaceDelimitedClaims);
}

function headerNameProblem(name: string, strict = false): string | undefined {
  if (name === '') return 'header name must not be empty';
  if (name.startsWith(':')) return `"${name}" is a pseudo-header, not a header a token can be read from or written to`;
  if (strict ? !/^[-_A-Za-z0-9]+$/.test(name) : !isHeaderName(name)) return `"${name}" is not a valid header name`;
  return undefined;
}

/** http(s) URLs with a host, or file:// URLs with an absolute path (Trellis reads keys from disk too). */
export function jwksUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `"${uri}" is not a URL: write it with its scheme, e.g. "https://issuer.example.com/jwks.json"`;
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    return url.hostname === '' ? `"${uri}" has no host` : undefined;
  }
  if (url.protocol === 'file:') {
    return url.host !== '' || !url.pathname.startsWith('/') ? `"${uri}": file URLs are file:///absolute/path` : undefined;
  }
  return `"${uri}": the scheme must be https, http or file`;
}

/** An inline JWKS: JSON with a non-empty `keys` array of public, asymmetric keys. */
export function jwksProblem(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'jwks is not valid JSON';
  }
  const keys = typeof parsed === 'object' && parsed !== null ? (parsed as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys) || keys.length === 0) return 'jwks must be a JSON object with a non-empty "keys" array';
  for (const [index, key] of keys.entries()) {
    const kty = typeof key === 'object' && key !== null ? (key as { kty?: unknown }).kty : undefined;
    if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') {
      return `keys[${index}]: kty must be RSA, EC or OKP (only asymmetric keys verify tokens; found ${JSON.stringify(kty)})`;
    }
    if (typeof key === 'object' && key !== null && 'd' in key) {
      return `keys[${index}] contains a private key ("d"): publish only public keys`;
    }
  }
  return undefined;
}
