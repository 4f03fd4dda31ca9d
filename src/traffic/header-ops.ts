/**
 * Header manipulation (VirtualService `headers` on a route and on a destination) on a
 * case-preserving header list, with the order Envoy gives Istio's translation:
 *
 * - One set of operations runs as Envoy's header parser does: every `remove` first, then every
 *   `set` (replace all values of the name), then every `add` (append one more value). A `set`
 *   or `add` with an empty value does nothing (Istio does not ask Envoy to keep empty values).
 * - A route with one destination: Istio merges route and destination operations into one set,
 *   route's first, so for the same header the destination's `set` wins.
 * - A route with several (weighted) destinations: the chosen destination's operations run
 *   first, then the route's (Envoy's default, most specific level first, later levels
 *   overwrite), so the route's `set` wins.
 * - Pseudo-headers (`:…`) and `host` are never touched here: Istio turns a `host` /
 *   `:authority` header operation into an authority rewrite (see rewrite.ts).
 * Values are literal: Envoy's `%…%` header formatters are not supported.
 */
import type { HeaderOperationsSnapshot, HeadersSnapshot, HttpRouteSnapshot, RouteDestinationSnapshot } from '../mesh/snapshot.js';

/** `[name, value]` pairs in wire order, names as received (same shape as the data plane's HeaderList). */
export type HeaderPairs = Array<[name: string, value: string]>;

function internal(name: string): boolean {
  return name.startsWith(':') || name.toLowerCase() === 'host';
}

/** Removes every value of `name` (any case). */
export function removeHeader(headers: HeaderPairs, name: string): void {
  const lower = name.toLowerCase();
  let write = 0;
  for (let read = 0; read < headers.length; read++) {
    const pair = headers[read] as [string, string];
    if (pair[0].toLowerCase() !== lower) headers[write++] = pair;
  }
  headers.length = write;
}

/** Replaces every value of `name` with one `value`, at the position of the first one (or at the end). */
export function setHeader(headers: HeaderPairs, name: string, value: string): void {
  const lower = name.toLowerCase();
  const first = headers.findIndex(([n]) => n.toLowerCase() === lower);
  if (first === -1) {
    headers.push([name, value]);
    return;
  }
  headers[first] = [name, value];
  let write = first + 1;
  for (let read = first + 1; read < headers.length; read++) {
    const pair = headers[read] as [string, string];
    if (pair[0].toLowerCase() !== lower) headers[write++] = pair;
  }
  headers.length = write;
}

export function addHeader(headers: HeaderPairs, name: string, value: string): void {
  headers.push([name, value]);
}

/** A flattened operation list: what one Envoy header parser holds. */
interface Operations {
  remove: string[];
  set: Array<[string, string]>;
  add: Array<[string, string]>;
}

function flatten(...sources: Array<HeaderOperationsSnapshot | undefined>): Operations {
  const ops: Operations = { remove: [], set: [], add: [] };
  for (const source of sources) {
    if (source === undefined) continue;
    for (const name of source.remove ?? []) if (!internal(name)) ops.remove.push(name);
    // Istio sorts each map by name, which fixes the order of appended values.
    for (const name of Object.keys(source.set ?? {}).sort()) if (!internal(name)) ops.set.push([name, (source.set ?? {})[name] as string]);
    for (const name of Object.keys(source.add ?? {}).sort()) if (!internal(name)) ops.add.push([name, (source.add ?? {})[name] as string]);
  }
  return ops;
}

function run(headers: HeaderPairs, ops: Operations): void {
  for (const name of ops.remove) removeHeader(headers, name);
  for (const [name, value] of ops.set) if (value !== '') setHeader(headers, name, value);
  for (const [name, value] of ops.add) if (value !== '') addHeader(headers, name, value);
}

/** Applies one set of operations in place (remove, then set, then add). */
export function applyHeaderOperations(headers: HeaderPairs, operations: HeaderOperationsSnapshot | undefined): void {
  run(headers, flatten(operations));
}

type Side = keyof HeadersSnapshot;

function applyLevels(side: Side, headers: HeaderPairs, route: Pick<HttpRouteSnapshot, 'headers' | 'route'>, destination: Pick<RouteDestinationSnapshot, 'headers'> | undefined): void {
  const routeOps = route.headers?.[side];
  const destinationOps = destination?.headers?.[side];
  if (route.route.length <= 1) {
    run(headers, flatten(routeOps, destinationOps));
  } else {
    run(headers, flatten(destinationOps));
    run(headers, flatten(routeOps));
  }
}

/** Route- and destination-level request header operations, in Envoy's order, in place. */
export function applyRequestHeaderOperations(headers: HeaderPairs, route: Pick<HttpRouteSnapshot, 'headers' | 'route'>, destination?: Pick<RouteDestinationSnapshot, 'headers'>): void {
  applyLevels('request', headers, route, destination);
}

/** Route- and destination-level response header operations, in Envoy's order, in place. */
export function applyResponseHeaderOperations(headers: HeaderPairs, route: Pick<HttpRouteSnapshot, 'headers' | 'route'>, destination?: Pick<RouteDestinationSnapshot, 'headers'>): void {
  applyLevels('response', headers, route, destination);
}
