/** Kubernetes and DNS name rules that Istio resources follow. */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A namespace: lower-case alphanumerics and `-`, at most 63 characters. */
export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

/** A resource name: DNS-1123 labels joined by dots, at most 253 characters. */
export function isDns1123Subdomain(value: string): boolean {
  return value.length > 0 && value.length <= 253 && value.split('.').every((label) => DNS1123_LABEL.test(label));
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) {
    return `label key prefix "${prefix}" must be a DNS subdomain (lower case, digits, "-" and ".")`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return 'label key names are 1–63 characters: letters, digits, "-", "_", "." and start and end with a letter or digit';
  }
  return undefined;
}

/** A label value: empty, or at most 63 characters of the label-name alphabet. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !LABEL_NAME.test(value)) {
    return 'label values are at most 63 characters: letters, digits, "-", "_", "." and start and end with a letter or digit';
  }
  return undefined;
}

/** An HTTP header field name (RFC 9110 token). */
export function isHeaderName(value: string): boolean {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value);
}

/** A fully qualified host name, optionally with one leading `*.` wildcard label. */
export function isHostName(value: string, options: { allowWildcard: boolean }): boolean {
  let rest = value;
  if (options.allowWildcard && rest.startsWith('*.')) rest = rest.slice(2);
  if (rest.length === 0 || rest.length > 253) return false;
  return rest
    .replace(/\.$/, '')
    .split('.')
    .every((label) => /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/.test(label) && label.length <= 63);
}

/** A SPIFFE trust domain: lower-case letters, digits, `.`, `-` and `_`. */
export function isTrustDomain(value: string): boolean {
  return value.length > 0 && value.length <= 255 && /^[a-z0-9._-]+$/.test(value);
}

/** Port numbers in Istio resources: an integer from 1 to 65535. */
export function isPortNumber(value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** A port written as text (`"8080"`): decimal digits only, 1 to 65535. */
export function parsePortText(text: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** Edit distance, for "did you mean" hints on unknown field names and `when` keys. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
