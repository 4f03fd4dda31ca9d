/**
 * Header lists as the proxy carries them: ordered [name, value] pairs with the name's case as
 * received, because some HTTP/1.1 applications depend on it. Lookups are case-insensitive.
 */

export type HeaderList = Array<[name: string, value: string]>;

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) apply to one connection only and are never forwarded,
 * nor are the headers a Connection header names. `te: trailers` is the one exception: gRPC
 * needs it end to end.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Builds a list from Node's rawHeaders (alternating names and values). */
export function fromRawHeaders(raw: readonly string[]): HeaderList {
  const list: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) list.push([raw[i] as string, raw[i + 1] as string]);
  return list;
}

/** Flattens to Node's raw form, which http.request and writeHead accept and which keeps case. */
export function toRawHeaders(list: HeaderList): string[] {
  const raw: string[] = [];
  for (const [name, value] of list) raw.push(name, value);
  return raw;
}

export function getHeader(list: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of list) if (key.toLowerCase() === lower) return value;
  return undefined;
}

/** All values of a header, in order (for headers that may repeat). */
export function getHeaderValues(list: HeaderList, name: string): string[] {
  const lower = name.toLowerCase();
  return list.filter(([key]) => key.toLowerCase() === lower).map(([, value]) => value);
}

export function removeHeader(list: HeaderList, name: string): HeaderList {
  const lower = name.toLowerCase();
  return list.filter(([key]) => key.toLowerCase() !== lower);
}

export function setHeader(list: HeaderList, name: string, value: string): HeaderList {
  return [...removeHeader(list, name), [name, value]];
}

/** Removes hop-by-hop headers, the ones named by Connection, and HTTP/2 pseudo-headers. */
export function stripHopByHop(list: HeaderList): HeaderList {
  const named = new Set<string>();
  for (const value of getHeaderValues(list, 'connection')) {
    for (const token of value.split(',')) named.add(token.trim().toLowerCase());
  }
  return list.filter(([name, value]) => {
    const lower = name.toLowerCase();
    if (lower.startsWith(':')) return false;
    if (lower === 'te') return value.trim().toLowerCase() === 'trailers';
    return !HOP_BY_HOP.has(lower) && !named.has(lower);
  });
}

/** Lowercased name → values map, the view policy evaluation works on. */
export function headerMap(list: HeaderList): Record<string, string[]> {
  const map: Record<string, string[]> = {};
  for (const [name, value] of list) (map[name.toLowerCase()] ??= []).push(value);
  return map;
}
