import type { FieldPath } from '../diagnostics.js';
import { parseIpBlock } from '../ip.js';
import { parsePortText } from '../names.js';
import type { ResourceChecker } from './checker.js';

/**
 * Checks on the string values of policy rules, shared by `from`/`to` fields and `when`
 * conditions. Each check reports every bad item with its own index.
 */

export type ValueCheck = (checker: ResourceChecker, path: FieldPath, value: string) => void;

/** Runs `check` on every item of an optional list and rejects empty strings everywhere. */
export function checkList(checker: ResourceChecker, path: FieldPath, values: readonly string[] | undefined, check?: ValueCheck): void {
  if (values === undefined) return;
  values.forEach((value, index) => {
    const itemPath = [...path, index];
    if (value === '') {
      checker.error(itemPath, 'empty string: every value must be non-empty (use "*" to require any value)');
      return;
    }
    check?.(checker, itemPath, value);
  });
}

/**
 * Istio string patterns: exact, `prefix*`, `*suffix` or `*` (present). Istio reads any other
 * `*` literally, so `ns/*\/sa` would silently never match; Trellis rejects it.
 */
export const checkPattern: ValueCheck = (checker, path, value) => {
  if (value === '*') return;
  const inner = value.slice(1, -1);
  const stars = value.split('*').length - 1;
  if (inner.includes('*') || stars > 1) {
    checker.error(path, `"${value}": "*" is only allowed once, at the start (suffix match) or the end (prefix match), or alone (any value)`);
  }
};

export const checkIpBlock: ValueCheck = (checker, path, value) => {
  const parsed = parseIpBlock(value);
  if (!parsed.ok) checker.error(path, `bad IP address or CIDR range "${value}": ${parsed.reason}`);
};

export const checkPort: ValueCheck = (checker, path, value) => {
  if (parsePortText(value) === undefined) {
    checker.error(path, `bad port "${value}": ports are decimal numbers from 1 to 65535 (no wildcards or ranges)`);
  }
};

/** `serviceAccounts` entries: `name` (the policy's namespace) or `namespace/name`, no wildcards. */
export const checkServiceAccount: ValueCheck = (checker, path, value) => {
  if (value.includes('*')) {
    checker.error(path, `"${value}": wildcards are not allowed in service accounts`);
    return;
  }
  const parts = value.split('/');
  if (parts.length > 2 || parts.some((part) => part === '')) {
    checker.error(path, `"${value}": expected "serviceAccount" or "namespace/serviceAccount"`);
    return;
  }
  if (value.length > 320) checker.error(path, `"${value}": service accounts are at most 320 characters`);
};

/** Trust domains: exact, one leading or trailing `*`, or `*` alone. */
export const checkTrustDomain: ValueCheck = (checker, path, value) => {
  checkPattern(checker, path, value);
  if (value.includes('/')) checker.error(path, `"${value}": a trust domain has no "/" (write "example.org", not a SPIFFE ID)`);
};

/** Principals are written without `spiffe://`; with it they would never match. */
export const checkPrincipal: ValueCheck = (checker, path, value) => {
  checkPattern(checker, path, value);
  if (value.startsWith('spiffe://')) {
    checker.error(path, `"${value}": write principals without "spiffe://", e.g. "cluster.local/ns/default/sa/app"`);
  }
};

export const checkMethod: ValueCheck = (checker, path, value) => {
  checkPattern(checker, path, value);
  if (value !== value.toUpperCase()) {
    checker.error(path, `"${value}": HTTP methods are case-sensitive and requests with lower-case methods are rejected, so write "${value.toUpperCase()}"`);
  }
};

/** Paths: a pattern or a template (`{*}`, `{**}`), always against the normalized path without query. */
export const checkPath: ValueCheck = (checker, path, value) => {
  if (value.includes('{') || value.includes('}')) {
    const problem = pathTemplateProblem(value);
    if (problem) checker.error(path, `invalid path template "${value}": ${problem}`);
    return;
  }
  checkPattern(checker, path, value);
  if (value !== '*' && !value.startsWith('/') && !value.startsWith('*')) {
    checker.error(path, `"${value}": paths start with "/" (a path without it never matches)`);
  }
  if (value.includes('?') || value.includes('#')) {
    checker.error(path, `"${value}": paths are matched without the query string and fragment, so "?" and "#" never match`);
  }
};

const PCHAR_LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

/** Envoy URI templates as Istio allows them: `{*}` one segment, `{**}` the rest (last operator only). */
export function pathTemplateProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return 'a path template starts with "/"';
  const segments = value.slice(1).split('/');
  let sawMatchAny = false;
  for (const [index, segment] of segments.entries()) {
    if (segment === '{*}' || segment === '{**}') {
      if (sawMatchAny) return '"{**}" must be the last operator';
      if (segment === '{**}') sawMatchAny = true;
      continue;
    }
    if (segment.includes('{') || segment.includes('}')) {
      return `segment "${segment}": only "{*}" and "{**}" are supported, each as a whole path segment`;
    }
    if (segment.includes('*')) return `segment "${segment}": "*" is only allowed inside "{*}" or "{**}"`;
    if (segment === '' && index !== segments.length - 1) return 'empty path segment ("//")';
    if (segment !== '' && !PCHAR_LITERAL.test(segment)) return `segment "${segment}" has characters that are not allowed in a path`;
  }
  return undefined;
}
