import { isDns1123Label } from './names.js';

/**
 * Service host names as Istio's networking kinds write them: fully qualified names, short names
 * (`reviews`, resolved against the resource's namespace), and one leading `*` label.
 */

/**
 * Istio's DNS domain suffix (`cluster.local`): short names resolve to
 * `<name>.<namespace>.svc.cluster.local`. This is the DNS domain, not the SPIFFE trust domain,
 * even though both default to `cluster.local`.
 */
export const DNS_DOMAIN_SUFFIX = 'cluster.local';

/**
 * Istio's short-name rule: a host without a dot is `<host>.<namespace>.svc.cluster.local`,
 * resolved against the namespace of the resource that names it; anything else is unchanged.
 */
export function resolveHost(host: string, namespace: string): string {
  if (host === '*' || host.includes('.')) return host;
  return `${host}.${namespace}.svc.${DNS_DOMAIN_SUFFIX}`;
}

/**
 * Why `host` is not a valid (optionally wildcard) domain, or undefined. Istio's rule: at most 255
 * characters, DNS-1123 labels (lower case), a top-level label that is not all digits, a trailing
 * dot allowed; the first label may be `*`. Istio also accepts partial wildcards (`*foo.com`),
 * whose matching surprises; Trellis rejects them.
 */
export function hostProblem(host: string): string | undefined {
  if (host === '') return 'empty host name';
  if (host.length > 255) return 'a host name has at most 255 characters';
  const labels = host.split('.');
  const [first, ...rest] = labels;
  if (first === '*') {
    // wildcard: the rest must be a domain
  } else if (first?.includes('*')) {
    return `partial wildcard "${first}": "*" must be a whole label at the start ("*.example.com")`;
  } else if (first === undefined || !isDns1123Label(first)) {
    return `label "${first ?? ''}" is not a DNS label (lower-case letters, digits and "-", at most 63 characters)`;
  }
  for (const [index, label] of rest.entries()) {
    if (label === '' && index === rest.length - 1) break; // `istio.io.`
    if (label.includes('*')) return '"*" is only allowed as the first label';
    if (!isDns1123Label(label)) return `label "${label}" is not a DNS label (lower-case letters, digits and "-", at most 63 characters)`;
  }
  const last = rest.filter((l) => l !== '').at(-1);
  if (last !== undefined && /^[0-9]+$/.test(last)) return `the top-level label "${last}" cannot be all digits`;
  return undefined;
}

/** Whether `pattern` (a host, `*` or `*.suffix`) covers `host` (which may itself be a wildcard). */
export function hostCovers(pattern: string, host: string): boolean {
  if (pattern === host || pattern === '*') return true;
  if (!pattern.startsWith('*.')) return false;
  const suffix = pattern.slice(1); // `.example.com`
  if (host.startsWith('*.')) return host.slice(1).endsWith(suffix) && host.slice(1) !== suffix;
  return host.endsWith(suffix) && host.length > suffix.length;
}
