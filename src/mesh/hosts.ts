/**
 * Host matching for the compile: which resource names a service most specifically. Short-name
 * resolution and host syntax live in src/api/hosts.ts, shared with validation.
 */
export { resolveHost as resolveShortName } from '../api/hosts.js';

/**
 * How specifically `pattern` names `host`: undefined when it does not match, else a number that
 * is larger for closer matches (an exact name beats every wildcard, a longer wildcard a shorter).
 */
export function hostMatchScore(pattern: string, host: string): number | undefined {
  if (pattern === host) return Number.MAX_SAFE_INTEGER;
  if (pattern === '*') return 0;
  if (pattern.startsWith('*.') && host.endsWith(pattern.slice(1))) return pattern.length;
  return undefined;
}

export function hostMatches(pattern: string, host: string): boolean {
  return hostMatchScore(pattern, host) !== undefined;
}

/** Whether a resource exported with `exportTo` (absent: everyone) from `owner` is visible in `namespace`. */
export function exportedTo(exportTo: readonly string[] | undefined, owner: string, namespace: string): boolean {
  if (exportTo === undefined || exportTo.length === 0) return true;
  return exportTo.some((target) => target === '*' || target === namespace || (target === '.' && owner === namespace));
}

/** Older first; a resource without a timestamp counts as oldest (the file store stamps every resource). */
export function compareCreation(a: string | undefined, b: string | undefined): number {
  const ta = a === undefined ? -Infinity : Date.parse(a);
  const tb = b === undefined ? -Infinity : Date.parse(b);
  return ta === tb ? 0 : ta < tb ? -1 : 1;
}
