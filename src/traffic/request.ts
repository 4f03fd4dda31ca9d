/**
 * The request as route selection, hashing and CORS see it: plain values, header names in lower
 * case. Built once per request by the data plane (or by `trellis route check` from flags).
 */

export interface SourceView {
  /** The calling workload's namespace (the proxy's own, on the outbound side). */
  namespace: string;
  labels: Readonly<Record<string, string>>;
}

export interface RequestView {
  method: string;
  /** Origin-form path with the query, as received (`/reviews/1?x=y`). */
  path: string;
  /** `:authority` / Host, as received (may carry a port). */
  authority: string;
  scheme: string;
  /**
   * Lower-case header name → value. Repeated headers are joined with `,` (Envoy matches the
   * joined value); `headerMap` builds this from a header list.
   */
  headers: ReadonlyMap<string, string>;
  /** The destination (service) port the request was sent to. */
  port: number;
  source: SourceView;
}

/** A case-preserving header list → the lower-case map RequestView wants (duplicates joined with `,`). */
export function headerMap(list: Iterable<readonly [string, string]>): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of list) {
    const key = name.toLowerCase();
    const existing = map.get(key);
    map.set(key, existing === undefined ? value : `${existing},${value}`);
  }
  return map;
}

/** The path without query or fragment. */
export function pathOnly(path: string): string {
  let end = path.length;
  const q = path.indexOf('?');
  if (q !== -1) end = q;
  const f = path.indexOf('#');
  if (f !== -1 && f < end) end = f;
  return end === path.length ? path : path.slice(0, end);
}

/** The query string without `?` (and without a fragment), or '' when there is none. */
export function queryOf(path: string): string {
  const q = path.indexOf('?');
  if (q === -1) return '';
  const f = path.indexOf('#', q);
  return f === -1 ? path.slice(q + 1) : path.slice(q + 1, f);
}

/**
 * Query parameters as Envoy's route matcher and hash policy see them (its `parseQueryString`):
 * `name=value` pairs split on `&`, the first occurrence of a name wins, a name without `=` has
 * the value '', and nothing is percent-decoded (`?q=a%20b` has the value `a%20b`).
 */
export function parseQuery(query: string): Map<string, string> {
  const params = new Map<string, string>();
  if (query === '') return params;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (params.has(name)) continue;
    params.set(name, eq === -1 ? '' : part.slice(eq + 1));
  }
  return params;
}

/** `Cookie` header → the value of one cookie (Envoy's parsing: `;`-separated, quotes stripped). */
export function cookieValue(cookieHeader: string | undefined, name: string): string | undefined {
  if (cookieHeader === undefined) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1);
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value;
  }
  return undefined;
}

/** Headers whose values are credentials: explanations say they did not match, never what they held. */
const SENSITIVE = /^(authorization|proxy-authorization|cookie|set-cookie)$|token|secret|passw|api-?key|session|credential/i;

export function isSensitiveName(name: string): boolean {
  return SENSITIVE.test(name);
}
