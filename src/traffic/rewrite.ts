/**
 * Request rewrites of a route (VirtualService `rewrite`), with Istio's translation to Envoy:
 *
 * - `rewrite.uri` is Envoy's `prefix_rewrite`: it replaces the part of the path the route's
 *   match consumed — the matched prefix for a `prefix` match, the whole path for `exact` and
 *   `regex` matches, and just the leading `/` when the match has no `uri` (Istio matches
 *   prefix `/` then: rewriting `/v2` turns `/foo` into `/v2foo`). The query is kept.
 * - `rewrite.uriRegexRewrite` replaces every match of its RE2 expression in the path (not the
 *   query), with `\1`-style references to groups.
 * - `rewrite.authority` sets `:authority`/Host. A `host` (or `:authority`) in the route's
 *   header operations does the same when `rewrite.authority` is absent, and one in the
 *   destination's header operations when neither route-level setting is present.
 */
import type { HeadersSnapshot, HttpMatchSnapshot, HttpRouteSnapshot, RouteDestinationSnapshot } from '../mesh/snapshot.js';
import { compileIstioRegexGlobal } from './matchers.js';
import { pathOnly } from './request.js';

export interface CompiledRewrite {
  /** The new origin-form path (with the query), or undefined when the route rewrites no path. */
  path(requestPath: string, match: HttpMatchSnapshot | undefined): string | undefined;
}

const NO_REWRITE: CompiledRewrite = { path: () => undefined };

/** Compiles a route's path rewrite once (the regex of `uriRegexRewrite`). */
export function compileRewrite(route: Pick<HttpRouteSnapshot, 'rewrite'>): CompiledRewrite {
  const rewrite = route.rewrite;
  if (rewrite === undefined) return NO_REWRITE;
  if (rewrite.uriRegexRewrite !== undefined) {
    const regex = compileIstioRegexGlobal(rewrite.uriRegexRewrite.match);
    const substitution = re2Substitution(rewrite.uriRegexRewrite.rewrite);
    return {
      path: (requestPath) => {
        const path = pathOnly(requestPath);
        return path.replace(regex, substitution) + requestPath.slice(path.length);
      },
    };
  }
  const uri = rewrite.uri;
  if (uri === undefined || uri === '') return NO_REWRITE;
  return { path: (requestPath, match) => uri + requestPath.slice(matchedLength(requestPath, match)) };
}

/** One-off form of `compileRewrite(route).path(...)`. */
export function rewritePath(route: Pick<HttpRouteSnapshot, 'rewrite'>, match: HttpMatchSnapshot | undefined, requestPath: string): string | undefined {
  return compileRewrite(route).path(requestPath, match);
}

/** How many leading characters of the path Envoy's prefix_rewrite replaces. */
function matchedLength(requestPath: string, match: HttpMatchSnapshot | undefined): number {
  const uri = match?.uri;
  if (uri?.prefix !== undefined) return Math.min(uri.prefix.length, pathOnly(requestPath).length);
  if (uri?.exact !== undefined || uri?.regex !== undefined) return pathOnly(requestPath).length;
  return requestPath.startsWith('/') ? 1 : 0;
}

/** RE2 rewrite syntax (`\1`, `\0`, `\\`) → a JavaScript replacement string (`$1`, `$&`, `\`). */
export function re2Substitution(rewrite: string): string {
  let out = '';
  for (let i = 0; i < rewrite.length; i++) {
    const c = rewrite[i] as string;
    if (c === '$') {
      out += '$$';
    } else if (c === '\\' && i + 1 < rewrite.length) {
      const next = rewrite[i + 1] as string;
      if (next >= '0' && next <= '9') out += next === '0' ? '$&' : `$${next}`;
      else out += next;
      i++;
    } else {
      out += c;
    }
  }
  return out;
}

/** The `:authority` to send upstream, or undefined to keep the request's. */
export function rewriteAuthority(route: Pick<HttpRouteSnapshot, 'rewrite' | 'headers'>, destination: Pick<RouteDestinationSnapshot, 'headers'> | undefined): string | undefined {
  const explicit = route.rewrite?.authority;
  if (explicit !== undefined && explicit !== '') return explicit;
  return authorityFromHeaders(route.headers) ?? authorityFromHeaders(destination?.headers);
}

function authorityFromHeaders(headers: HeadersSnapshot | undefined): string | undefined {
  const request = headers?.request;
  if (request === undefined) return undefined;
  return authorityIn(request.set) ?? authorityIn(request.add);
}

function authorityIn(ops: Readonly<Record<string, string>> | undefined): string | undefined {
  if (ops === undefined) return undefined;
  let found: string | undefined;
  for (const [name, value] of Object.entries(ops)) {
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === ':authority') found = value;
  }
  return found;
}
