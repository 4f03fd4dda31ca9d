import { isHttpOnlyCondition, parseConditionKey } from '../api/condition-keys.js';
import { cidrContains, parseIpBlock, type CidrRange, type IpAddress } from '../api/ip.js';
import { parsePortText } from '../api/names.js';
import type { Condition, Operation, Source } from '../api/schemas/security.js';
import type { EvalContext } from './authz-context.js';
import { compilePathMatcher } from './path-match.js';
import { keyFromPatterns, type IndexKey } from './rule-index.js';
import { compileGlobMatcher, compileStringMatcher, type StringMatcher } from './string-match.js';

/**
 * Compiles the fields of a rule into checks: small closures over precompiled matchers (sets
 * for exact values, prefix/suffix lists, CIDR words). Every check can also say, in words, why
 * it did not match, which is how denials are explained.
 */
export interface Check {
  /** The field as the policy names it: `paths`, `notPrincipals`, `when request.headers[x-user]`. */
  readonly field: string;
  /** Needs an HTTP request (Istio's TCP rules drop or skip these on TCP connections). */
  readonly httpOnly: boolean;
  test(context: EvalContext): boolean;
  /** Why `test` returned false, e.g. `paths: "/admin" ≠ "/api/*"`. */
  explain(context: EvalContext): string;
  /** Why `test` returned true, e.g. `paths: "/admin" = "/admin*"`. */
  describe(context: EvalContext): string;
  /** For positive checks on indexable attributes: the values a match needs (see rule-index). */
  readonly key?: IndexKey;
}

/** A value matcher over one request attribute, which may be absent (or a list, for claims). */
interface Attribute {
  readonly describeAbsent: string;
  /** Never show the value in explanations: it may be a credential (they end up in logs). */
  readonly redact?: boolean;
  read(context: EvalContext): string | readonly string[] | undefined;
  /** Scalar attributes the rule index may file rules under; `templates`: path templates allowed. */
  readonly index?: { readonly name: string; readonly templates?: boolean };
}

interface ValueMatcher {
  test(value: string): boolean;
  which(value: string): string | undefined;
}

/** `values` (positive) or `notValues` (negative) over one attribute. */
function valueCheck(field: string, httpOnly: boolean, attribute: Attribute, matcher: ValueMatcher, patterns: readonly string[], negate: boolean): Check {
  const read = attribute.read;
  const test = matcher.test;
  // The hot path: one read, one matcher call; lists (audiences, claims) take the slower branch.
  const matches = (context: EvalContext): boolean => {
    const value = read(context);
    if (value === undefined) return false;
    if (typeof value === 'string') return test(value);
    for (let i = 0; i < value.length; i++) if (test(value[i] as string)) return true;
    return false;
  };
  const inspect = (context: EvalContext): { shown: string; hit: string | undefined } => {
    const value = read(context);
    const shown =
      value === undefined
        ? attribute.describeAbsent
        : attribute.redact === true
          ? '<redacted>'
          : typeof value === 'string'
            ? JSON.stringify(value)
            : `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
    const items = value === undefined ? [] : typeof value === 'string' ? [value] : value;
    return { shown, hit: items.map((v) => matcher.which(v)).find((w) => w !== undefined) };
  };
  const indexed = attribute.index;
  const key =
    negate || indexed === undefined
      ? undefined
      : keyFromPatterns(indexed.name, read as IndexKey['read'], patterns, indexed.templates === true ? { templates: true } : {});
  return {
    field,
    httpOnly,
    ...(key === undefined ? {} : { key }),
    test: negate ? (c) => !matches(c) : matches,
    // For credential headers the policy's own values are secrets too (an API key to compare
    // with): neither side is ever shown.
    explain: (context) => {
      const { shown, hit } = inspect(context);
      const expected = attribute.redact === true ? '<redacted>' : listPatterns(patterns);
      const excluded = attribute.redact === true ? '<redacted>' : JSON.stringify(hit ?? patterns[0] ?? '');
      return negate ? `${field}: ${shown} matches excluded ${excluded}` : `${field}: ${shown} ≠ ${expected}`;
    },
    describe: (context) => {
      const { shown, hit } = inspect(context);
      if (attribute.redact === true) return negate ? `${field}: ${shown} is none of the excluded values` : `${field}: ${shown} matches`;
      if (!negate) return `${field}: ${shown} = ${JSON.stringify(hit ?? '')}`;
      return read(context) === undefined ? `${field}: ${shown}` : `${field}: ${shown} is none of ${listPatterns(patterns)}`;
    },
  };
}

function listPatterns(patterns: readonly string[]): string {
  const shown = patterns.slice(0, 4).map((p) => JSON.stringify(p));
  if (patterns.length > 4) shown.push(`… (${patterns.length} values)`);
  return shown.length === 1 ? (shown[0] ?? '') : `any of ${shown.join(', ')}`;
}

/** Builds the positive and negative checks of one field pair. */
function pair(
  checks: Check[],
  names: readonly [string, string],
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  httpOnly: boolean,
  attribute: Attribute,
  compile: (patterns: readonly string[]) => ValueMatcher,
): void {
  if (values !== undefined && values.length > 0) checks.push(valueCheck(names[0], httpOnly, attribute, compile(values), values, false));
  if (notValues !== undefined && notValues.length > 0) checks.push(valueCheck(names[1], httpOnly, attribute, compile(notValues), notValues, true));
}

// ---- attributes -------------------------------------------------------------------------

const NO_PEER = 'no peer identity (plaintext connection)';
const NO_JWT = 'no verified JWT';

const principalAttr: Attribute = { describeAbsent: NO_PEER, read: (c) => c.principal, index: { name: 'principal' } };
const namespaceAttr: Attribute = { describeAbsent: NO_PEER, read: (c) => (c.principal === undefined ? undefined : c.peer?.namespace), index: { name: 'namespace' } };
const serviceAccountAttr: Attribute = {
  describeAbsent: NO_PEER,
  index: { name: 'serviceAccount' },
  read: (c) => (c.peer?.namespace === undefined || c.peer.serviceAccount === undefined ? undefined : `${c.peer.namespace}/${c.peer.serviceAccount}`),
};
const trustDomainAttr: Attribute = { describeAbsent: NO_PEER, read: (c) => c.peer?.trustDomain };
const audiencesAttr: Attribute = { describeAbsent: NO_JWT, read: (c) => c.jwt?.audiences };
const presenterAttr: Attribute = { describeAbsent: 'no verified JWT with an azp claim', read: (c) => c.jwt?.presenter };
const methodAttr: Attribute = { describeAbsent: 'not an HTTP request', read: (c) => c.http?.method, index: { name: 'method' } };
const pathAttr: Attribute = { describeAbsent: 'not an HTTP request', read: (c) => c.http?.path, index: { name: 'path', templates: true } };
const sniAttr: Attribute = { describeAbsent: 'no SNI', read: (c) => c.request.sni, index: { name: 'sni' } };
const portAttr: Attribute = { describeAbsent: 'no port', read: (c) => c.port, index: { name: 'port' } };

/** Headers whose values are credentials: explanations say they did not match, never what they held. */
const SENSITIVE_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie)$|token|secret|passw|api-?key|session|credential/i;

function headerAttr(name: string): Attribute {
  return {
    describeAbsent: `no ${name} header`,
    read: (c) => c.http?.headers.get(name),
    index: { name: `header:${name}` },
    ...(SENSITIVE_HEADER.test(name) ? { redact: true } : {}),
  };
}

function claimAttr(path: readonly string[]): Attribute {
  return {
    describeAbsent: `no ${path.join('.')} claim`,
    read: (c) => (c.jwt === undefined ? undefined : readClaim(c.jwt.claims, path)),
  };
}

/** A claim as strings: a string, or the string items of a list; other types never match (as in Istio). */
export function readClaim(claims: Readonly<Record<string, unknown>>, path: readonly string[]): readonly string[] | undefined {
  let current: unknown = claims;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  if (typeof current === 'string') return [current];
  if (Array.isArray(current)) return current.filter((v): v is string => typeof v === 'string');
  return undefined;
}

// ---- matchers that are not plain strings ------------------------------------------------------

/** CIDR checks read the parsed address directly rather than through strings. */
function cidrCheck(field: string, patterns: readonly string[], negate: boolean, pick: (c: EvalContext) => IpAddress, show: (c: EvalContext) => string): Check {
  const ranges: { range: CidrRange; text: string }[] = patterns.map((text) => {
    const parsed = parseIpBlock(text);
    if (!parsed.ok) throw new Error(`${field}: ${parsed.reason}`);
    return { range: parsed.value, text };
  });
  // IPv4 ranges as (network, mask) integer pairs: one AND and one compare per range.
  const v4 = ranges.filter((r) => r.range.family === 4).map((r) => ({ network: r.range.words[0] ?? 0, mask: r.range.bits === 0 ? 0 : (0xffffffff << (32 - r.range.bits)) >>> 0 }));
  const v6 = ranges.filter((r) => r.range.family === 6).map((r) => r.range);
  const inRanges = (ip: IpAddress): boolean => {
    if (ip.family === 4) {
      const word = ip.words[0] ?? 0;
      for (let i = 0; i < v4.length; i++) {
        const r = v4[i] as { network: number; mask: number };
        if (((word & r.mask) >>> 0) === r.network) return true;
      }
      return false;
    }
    for (let i = 0; i < v6.length; i++) if (cidrContains(v6[i] as CidrRange, ip)) return true;
    return false;
  };
  const hit = (c: EvalContext): string | undefined => {
    const ip = pick(c);
    return ranges.find((r) => cidrContains(r.range, ip))?.text;
  };
  return {
    field,
    httpOnly: false,
    test: negate ? (c) => !inRanges(pick(c)) : (c) => inRanges(pick(c)),
    explain: (c) => (negate ? `${field}: ${show(c)} is in excluded ${JSON.stringify(hit(c) ?? '')}` : `${field}: ${show(c)} ≠ ${listPatterns(patterns)}`),
    describe: (c) => (negate ? `${field}: ${show(c)} is outside ${listPatterns(patterns)}` : `${field}: ${show(c)} is in ${JSON.stringify(hit(c) ?? '')}`),
  };
}

function cidrPair(checks: Check[], names: readonly [string, string], values: readonly string[] | undefined, notValues: readonly string[] | undefined, pick: (c: EvalContext) => IpAddress, show: (c: EvalContext) => string): void {
  if (values !== undefined && values.length > 0) checks.push(cidrCheck(names[0], values, false, pick, show));
  if (notValues !== undefined && notValues.length > 0) checks.push(cidrCheck(names[1], notValues, true, pick, show));
}

const sourceIpPick = (c: EvalContext): IpAddress => c.sourceIp;
const sourceIpShow = (c: EvalContext): string => JSON.stringify(c.request.sourceIp);
const remoteIpPick = (c: EvalContext): IpAddress => c.remoteIp;
const remoteIpShow = (c: EvalContext): string => JSON.stringify(c.request.remoteIp ?? c.request.sourceIp);
const destIpPick = (c: EvalContext): IpAddress => c.destinationIp;
const destIpShow = (c: EvalContext): string => JSON.stringify(c.request.destinationIp);

const exact = (patterns: readonly string[]): ValueMatcher => {
  const set = new Set(patterns);
  return { test: (v) => set.has(v), which: (v) => (set.has(v) ? v : undefined) };
};

function portMatcher(patterns: readonly string[]): ValueMatcher {
  const ports = new Set(patterns.map((p) => {
    const port = parsePortText(p);
    if (port === undefined) throw new Error(`bad port "${p}"`);
    return String(port);
  }));
  return { test: (v) => ports.has(v), which: (v) => (ports.has(v) ? v : undefined) };
}

/**
 * Hosts compare case-insensitively. A pattern without a port matches the host whatever port
 * the client sent (so `example.com` also covers `example.com:8080`); a pattern with a port
 * (`example.com:8080`, `example.com:*`) is compared with the host and port.
 */
const hostAttr: Attribute = { describeAbsent: 'no host', read: (c) => c.authority };

function hostMatcher(patterns: readonly string[]): ValueMatcher {
  const withPort = patterns.filter((p) => p.includes(':') && !p.endsWith(']'));
  const withoutPort = patterns.filter((p) => !withPort.includes(p)).map((p) => (p.endsWith('.') && p !== '.' ? p.slice(0, -1) : p));
  const portless = compileStringMatcher(withoutPort, { ignoreCase: true });
  const ported = compileStringMatcher(withPort, { ignoreCase: true });
  // The attribute value is the authority; the matcher splits it again (cheap) to try both forms.
  return {
    test: (authority) => {
      const name = hostPart(authority);
      return (withoutPort.length > 0 && portless.test(name)) || (withPort.length > 0 && authority !== name && ported.test(authority));
    },
    which: (authority) => portless.which(hostPart(authority)) ?? (authority !== hostPart(authority) ? ported.which(authority) : undefined),
  };
}

function hostPart(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const colon = authority.lastIndexOf(':');
  return colon === -1 ? authority : authority.slice(0, colon);
}

/**
 * `requestPrincipals` and `request.auth.principal`, matched as Istio does: the pattern is split
 * at its last `/` into issuer and subject, each matched on its own (so `*` needs both present).
 */
function compileRequestPrincipals(patterns: readonly string[]): { pattern: string; iss: (s: string) => boolean; sub: (s: string) => boolean }[] {
  const any = (s: string): boolean => s !== '';
  return patterns.map((pattern) => {
    const slash = pattern.lastIndexOf('/');
    const iss = slash === -1 ? pattern : pattern.slice(0, slash);
    const sub = slash === -1 ? '' : pattern.slice(slash + 1);
    if (pattern === '*') return { pattern, iss: any, sub: any };
    if (pattern.startsWith('*')) {
      if (slash === -1) return { pattern, iss: any, sub: (s: string) => s.endsWith(pattern.slice(1)) };
      const issSuffix = iss.slice(1);
      return { pattern, iss: iss === '*' ? any : (s: string) => s.endsWith(issSuffix), sub: (s: string) => s === sub };
    }
    if (pattern.endsWith('*')) {
      if (slash === -1) return { pattern, iss: (s: string) => s.startsWith(pattern.slice(0, -1)), sub: any };
      const subPrefix = sub.slice(0, -1);
      return { pattern, iss: (s: string) => s === iss, sub: sub === '*' ? any : (s: string) => s.startsWith(subPrefix) };
    }
    return { pattern, iss: (s: string) => s === iss, sub: (s: string) => s === sub };
  });
}

function requestPrincipalCheck(field: string, patterns: readonly string[], negate: boolean): Check {
  const compiled = compileRequestPrincipals(patterns);
  const hit = (c: EvalContext): string | undefined => {
    const jwt = c.jwt;
    if (!jwt) return undefined;
    for (const p of compiled) if (p.iss(jwt.issuer) && p.sub(jwt.subject)) return p.pattern;
    return undefined;
  };
  return {
    field,
    httpOnly: true,
    test: negate ? (c) => hit(c) === undefined : (c) => hit(c) !== undefined,
    explain: (c) => {
      const shown = c.jwt ? JSON.stringify(c.jwt.principal) : NO_JWT;
      return negate ? `${field}: ${shown} matches excluded ${JSON.stringify(hit(c) ?? '')}` : `${field}: ${shown} ≠ ${listPatterns(patterns)}`;
    },
    describe: (c) => {
      const shown = c.jwt ? JSON.stringify(c.jwt.principal) : NO_JWT;
      return negate ? `${field}: ${shown} is none of ${listPatterns(patterns)}` : `${field}: ${shown} = ${JSON.stringify(hit(c) ?? '')}`;
    },
  };
}

function requestPrincipalPair(checks: Check[], names: readonly [string, string], values: readonly string[] | undefined, notValues: readonly string[] | undefined): void {
  if (values !== undefined && values.length > 0) checks.push(requestPrincipalCheck(names[0], values, false));
  if (notValues !== undefined && notValues.length > 0) checks.push(requestPrincipalCheck(names[1], notValues, true));
}

/** Header values: `*` means the header is present (even empty), as Envoy's present match. */
function headerMatcher(patterns: readonly string[]): ValueMatcher {
  const strings = compileStringMatcher(patterns.filter((p) => p !== '*'));
  const present = patterns.includes('*');
  return { test: (v) => present || strings.test(v), which: (v) => (present ? '*' : strings.which(v)) };
}

const strings = (patterns: readonly string[]): StringMatcher => compileStringMatcher(patterns);
const serviceAccounts = exact;

// ---- rule parts -------------------------------------------------------------------------------

export function compileSource(source: Source): Check[] {
  const checks: Check[] = [];
  pair(checks, ['principals', 'notPrincipals'], source.principals, source.notPrincipals, false, principalAttr, strings);
  requestPrincipalPair(checks, ['requestPrincipals', 'notRequestPrincipals'], source.requestPrincipals, source.notRequestPrincipals);
  pair(checks, ['namespaces', 'notNamespaces'], source.namespaces, source.notNamespaces, false, namespaceAttr, compileGlobMatcher);
  pair(checks, ['serviceAccounts', 'notServiceAccounts'], source.serviceAccounts, source.notServiceAccounts, false, serviceAccountAttr, serviceAccounts);
  pair(checks, ['trustDomains', 'notTrustDomains'], source.trustDomains, source.notTrustDomains, false, trustDomainAttr, strings);
  cidrPair(checks, ['ipBlocks', 'notIpBlocks'], source.ipBlocks, source.notIpBlocks, sourceIpPick, sourceIpShow);
  cidrPair(checks, ['remoteIpBlocks', 'notRemoteIpBlocks'], source.remoteIpBlocks, source.notRemoteIpBlocks, remoteIpPick, remoteIpShow);
  return checks;
}

export function compileOperation(operation: Operation): Check[] {
  const checks: Check[] = [];
  pair(checks, ['hosts', 'notHosts'], operation.hosts, operation.notHosts, true, hostAttr, hostMatcher);
  pair(checks, ['ports', 'notPorts'], operation.ports, operation.notPorts, false, portAttr, portMatcher);
  pair(checks, ['methods', 'notMethods'], operation.methods, operation.notMethods, true, methodAttr, strings);
  pair(checks, ['paths', 'notPaths'], operation.paths, operation.notPaths, true, pathAttr, compilePathMatcher);
  return checks;
}

export function compileCondition(condition: Condition): Check[] {
  const parsed = parseConditionKey(condition.key);
  if (!parsed.ok) throw new Error(parsed.message);
  const key = parsed.key;
  const names = [`when ${condition.key}`, `when ${condition.key} (notValues)`] as const;
  const checks: Check[] = [];
  const httpOnly = isHttpOnlyCondition(key);
  const add = (attribute: Attribute, compile: (p: readonly string[]) => ValueMatcher): void =>
    pair(checks, names, condition.values, condition.notValues, httpOnly, attribute, compile);
  switch (key.attribute) {
    case 'request.headers':
      add(headerAttr(key.header), headerMatcher);
      break;
    case 'request.auth.claims':
      add(claimAttr(key.claim), strings);
      break;
    case 'source.ip':
      cidrPair(checks, names, condition.values, condition.notValues, sourceIpPick, sourceIpShow);
      break;
    case 'remote.ip':
      cidrPair(checks, names, condition.values, condition.notValues, remoteIpPick, remoteIpShow);
      break;
    case 'destination.ip':
      cidrPair(checks, names, condition.values, condition.notValues, destIpPick, destIpShow);
      break;
    case 'source.namespace':
      add(namespaceAttr, compileGlobMatcher);
      break;
    case 'source.principal':
      add(principalAttr, strings);
      break;
    case 'source.serviceAccount':
      add(serviceAccountAttr, serviceAccounts);
      break;
    case 'source.trustDomain':
      add(trustDomainAttr, strings);
      break;
    case 'request.auth.principal':
      requestPrincipalPair(checks, names, condition.values, condition.notValues);
      break;
    case 'request.auth.audiences':
      add(audiencesAttr, strings);
      break;
    case 'request.auth.presenter':
      add(presenterAttr, strings);
      break;
    case 'destination.port':
      add(portAttr, portMatcher);
      break;
    case 'connection.sni':
      add(sniAttr, strings);
      break;
  }
  return checks;
}
