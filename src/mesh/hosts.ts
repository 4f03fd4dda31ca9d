/**
 * Host names as Istio's traffic kinds use them: short names resolve against the namespace of
 * the resource that wrote them, and `*.` wildcards match any longer name with that suffix.
 */

/** The DNS domain of service hosts (Istio's `domainSuffix`); it is not the trust domain. */
export const DNS_DOMAIN = 'cluster.local';

/** `reviews` written in namespace `shop` → `reviews.shop.svc.cluster.local`; names with a dot are kept. */
export function resolveShortName(host: string, namespace: string): string {
  if (host === '*' || host.includes('.')) return host;
  return `${host}.${namespace}.svc.${DNS_DOMAIN}`;
}

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
