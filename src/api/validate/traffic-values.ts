import type { FieldPath } from '../diagnostics.js';
import { parseDuration } from '../duration.js';
import { isTrellisError } from '../errors.js';
import { hostProblem } from '../hosts.js';
import { isDns1123Label, isHeaderName, isPortNumber } from '../names.js';
import { regexProblem } from '../regex.js';
import type { Destination, HeaderOperations, Headers, StringMatch } from '../schemas/traffic.js';
import type { ResourceChecker } from './checker.js';

/** Value checks shared by the traffic kinds: durations, percentages, hosts, matches, headers. */

export interface DurationRules {
  /** `0` (and `0s`) is allowed and means "disabled" (Istio: tcp idleTimeout, cookie ttl). */
  readonly allowZero?: boolean;
  /** The smallest value (ms) and how to say it; default Istio's 1ms. */
  readonly minMs?: number;
  readonly minText?: string;
  /** Istio's CORS maxAge is whole seconds. */
  readonly wholeSeconds?: boolean;
}

/**
 * Istio's duration rule (`ValidateDuration`): at least 1ms, millisecond precision. Returns the
 * value in milliseconds when it is valid.
 */
export function checkDuration(checker: ResourceChecker, path: FieldPath, text: string | undefined, rules: DurationRules = {}): number | undefined {
  if (text === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    if (!isTrellisError(err)) throw err;
    const why = /^-/.test(text.trim()) ? `durations cannot be negative` : err.message.replace(/^invalid duration "[^"]*": /, '');
    checker.error(path, `invalid duration "${text}": ${why}`);
    return undefined;
  }
  if (ms === 0 && rules.allowZero === true) return 0;
  const minMs = rules.minMs ?? 1;
  if (ms < minMs) {
    checker.error(path, `duration "${text}" is too short: it must be at least ${rules.minText ?? `${minMs}ms`}`);
    return undefined;
  }
  if (Math.abs(ms - Math.round(ms)) > 1e-6) {
    checker.error(path, `duration "${text}": only millisecond precision is supported`);
    return undefined;
  }
  if (rules.wholeSeconds === true && Math.round(ms) % 1000 !== 0) {
    checker.error(path, `duration "${text}": only whole seconds are supported here`);
    return undefined;
  }
  return Math.round(ms);
}

/** Istio's `Percent` (a double): 0, or 0.0001 to 100. */
export function checkPercentage(checker: ResourceChecker, path: FieldPath, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isFinite(value) || value < 0 || value > 100 || (value > 0 && value < 0.0001)) {
    checker.error(path, `percentage ${value} must be 0 or between 0.0001 and 100`);
  }
}

/** An integer percentage (0–100). */
export function checkIntegerPercent(checker: ResourceChecker, path: FieldPath, value: number | undefined): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < 0 || value > 100) checker.error(path, `${value} must be an integer from 0 to 100`);
}

/** A non-negative integer count; 0 means "not set" in Istio (proto3 default), so the default applies. */
export function checkCount(checker: ResourceChecker, path: FieldPath, value: number | undefined, options: { zeroMeansUnset?: boolean } = {}): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < 0 || value > 2_147_483_647) {
    checker.error(path, `${value} must be a non-negative integer`);
  } else if (value === 0 && options.zeroMeansUnset === true) {
    checker.warn(path, '0 means "not set" in Istio, so the default applies (not a limit of 0): remove the field or set a positive value', 'TRELLIS_CONFIG_IGNORED');
  }
}

export function checkPortNumber(checker: ResourceChecker, path: FieldPath, value: number | undefined): void {
  if (value !== undefined && !isPortNumber(value)) checker.error(path, `port ${value} must be an integer from 1 to 65535`);
}

/** A host in a traffic rule: a full or short name, or a `*.` wildcard. */
export function checkHost(checker: ResourceChecker, path: FieldPath, host: string, what: string): boolean {
  const problem = hostProblem(host);
  if (problem) {
    const withPort = /:[0-9]+$/.test(host) ? ' (a host has no port: use the port fields)' : '';
    checker.error(path, `${what} "${host}" is not a valid host name: ${problem}${withPort}`);
    return false;
  }
  return true;
}

/** A route, mirror or egress-proxy destination (Istio's `validateDestination`). */
export function checkDestination(checker: ResourceChecker, path: FieldPath, destination: Destination): void {
  if (destination.host === '*') {
    checker.error([...path, 'host'], 'destination host cannot be "*": name one service');
  } else {
    checkHost(checker, [...path, 'host'], destination.host, 'destination host');
  }
  if (destination.subset !== undefined) checkSubsetName(checker, [...path, 'subset'], destination.subset);
  if (destination.port !== undefined) checkPortNumber(checker, [...path, 'port', 'number'], destination.port.number);
}

export function checkSubsetName(checker: ResourceChecker, path: FieldPath, name: string): void {
  if (name === '') checker.error(path, 'subset name cannot be empty');
  else if (!isDns1123Label(name)) checker.error(path, `subset name "${name}" is not a DNS label: lower-case letters, digits and "-", at most 63 characters`);
}

export interface StringMatchRules {
  /** What an empty match means here: presence (headers, query parameters) or a mistake. */
  readonly empty: 'presence' | 'error';
  /** `prefix: ""` — Envoy allows it for the path only. */
  readonly emptyPrefix: boolean;
  /** `regex: "*"` is presence (Istio: withoutHeaders only; it is not an RE2 expression). */
  readonly starRegex: boolean;
}

/** Istio's StringMatch: one of exact, prefix, regex (RE2, whole value). */
export function checkStringMatch(checker: ResourceChecker, path: FieldPath, match: StringMatch, rules: StringMatchRules): void {
  const set = (['exact', 'prefix', 'regex'] as const).filter((k) => match[k] !== undefined);
  if (set.length > 1) {
    checker.error(path, `set exactly one of exact, prefix and regex, not ${set.join(' and ')}`);
    return;
  }
  if (set.length === 0) {
    if (rules.empty === 'error') checker.error(path, 'empty match: set exact, prefix or regex, or remove it', 'TRELLIS_CONFIG_MISSING_FIELD');
    return;
  }
  if (match.prefix === '' && !rules.emptyPrefix) checker.error([...path, 'prefix'], 'prefix must not be empty here (an empty match checks presence: use {})');
  if (match.regex !== undefined) {
    if (match.regex === '*' && rules.starRegex) return;
    checkRegex(checker, [...path, 'regex'], match.regex);
  }
}

export function checkRegex(checker: ResourceChecker, path: FieldPath, regex: string): void {
  const problem = regexProblem(regex);
  if (problem) checker.error(path, `invalid regular expression ${JSON.stringify(regex)}: ${problem} (Istio uses RE2 syntax, matched against the whole value)`);
}

/** Request or response header names in a match (`ValidateHTTPHeaderNameOrJwtClaimRoute`). */
const PSEUDO_HEADERS = [':method', ':scheme', ':authority', ':path', ':status'];

export function checkMatchHeaderName(checker: ResourceChecker, path: FieldPath, name: string): void {
  if (name === '') {
    checker.error(path, 'header name cannot be empty', 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
  } else if (name.startsWith('@request.auth.claims')) {
    checker.error(path, `"${name}": routing on JWT claims is only supported on gateways, which Trellis does not run`, 'TRELLIS_CONFIG_UNSUPPORTED', { atKey: true });
  } else if (!PSEUDO_HEADERS.includes(name) && !isHeaderName(name)) {
    checker.error(path, `"${name}" is not a valid header name`, 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
  }
}

// eslint-disable-next-line no-control-regex -- header values must not carry control characters
const HEADER_VALUE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;

/**
 * Header operations (Istio: `ValidateHTTPHeaderWithAuthorityOperationName` for request set/add,
 * `ValidateHTTPHeaderOperationName` otherwise): no pseudo-headers; `host`/`:authority` only in
 * request set/add (an authority rewrite). Values are literal in Trellis, so Envoy's `%…%`
 * formatters (and `%%`) are refused rather than sent as written.
 */
export function checkHeaders(checker: ResourceChecker, path: FieldPath, headers: Headers | undefined): void {
  if (headers === undefined) return;
  checkHeaderOperations(checker, [...path, 'request'], headers.request, true);
  checkHeaderOperations(checker, [...path, 'response'], headers.response, false);
}

function checkHeaderOperations(checker: ResourceChecker, path: FieldPath, ops: HeaderOperations | undefined, request: boolean): void {
  if (ops === undefined) return;
  for (const op of ['set', 'add'] as const) {
    for (const [name, value] of Object.entries(ops[op] ?? {})) {
      const at = [...path, op, name];
      checkOperationName(checker, at, name, request);
      if (!HEADER_VALUE.test(value)) checker.error(at, `header value for "${name}" has control characters`);
      else if (value.includes('%')) {
        checker.error(
          at,
          `header value "${value}": "%" is not supported — Istio (Envoy) reads "%%" as "%" and "%NAME%" as a variable, Trellis sends values literally`,
          'TRELLIS_CONFIG_UNSUPPORTED',
        );
      }
    }
  }
  (ops.remove ?? []).forEach((name, i) => checkOperationName(checker, [...path, 'remove', i], name, false, false));
}

function checkOperationName(checker: ResourceChecker, path: FieldPath, name: string, allowAuthority: boolean, atKey = true): void {
  const options = { atKey };
  if (name === '') {
    checker.error(path, 'header name cannot be empty', 'TRELLIS_CONFIG_INVALID_VALUE', options);
    return;
  }
  const lower = name.toLowerCase();
  const authority = lower === 'host' || lower === ':authority';
  if (authority && allowAuthority) return;
  if (lower === 'host') checker.error(path, `"${name}": the Host header cannot be changed here (use rewrite.authority, or set it on the request)`, 'TRELLIS_CONFIG_INVALID_VALUE', options);
  else if (name.startsWith(':')) checker.error(path, `"${name}": pseudo-headers (":…") cannot be changed`, 'TRELLIS_CONFIG_INVALID_VALUE', options);
  else if (!isHeaderName(name)) checker.error(path, `"${name}" is not a valid header name`, 'TRELLIS_CONFIG_INVALID_VALUE', options);
}

/**
 * `exportTo` of VirtualService and DestinationRule (Istio's `validateExportTo`): `.`, `*` or
 * namespace names, no duplicates, `*` alone.
 */
export function checkExportTo(checker: ResourceChecker, path: FieldPath, namespace: string, exportTo: readonly string[] | undefined): void {
  if (exportTo === undefined) return;
  const seen = new Set<string>();
  exportTo.forEach((value, i) => {
    const at = [...path, i];
    if (value !== '.' && value !== '*' && !isDns1123Label(value)) {
      checker.error(at, `exportTo "${value}": use ".", "*" or a namespace name`);
      return;
    }
    const key = value === '.' ? namespace : value;
    if (seen.has(key)) checker.error(at, key === value ? `"${value}" is listed twice` : `"." and "${namespace}" both mean this namespace`);
    seen.add(key);
  });
  if (exportTo.includes('*') && exportTo.length > 1) checker.error(path, '"*" exports to every namespace: list it alone');
}

/** The namespaces a resource is visible in: `'*'` for all. */
export function exportedTo(namespace: string, exportTo: readonly string[] | undefined): ReadonlySet<string> | '*' {
  if (exportTo === undefined || exportTo.length === 0 || exportTo.includes('*')) return '*';
  return new Set(exportTo.map((v) => (v === '.' ? namespace : v)));
}
