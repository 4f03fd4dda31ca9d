/**
 * CORS for a route (VirtualService `corsPolicy`), as Envoy's CORS filter applies Istio's
 * translation:
 *
 * - Only requests with a non-empty `Origin` are CORS requests. The origin is allowed when one
 *   of `allowOrigins` matches it — or matches the literal `*` (so `exact: "*"` or
 *   `regex: ".*"` allow every origin). The allowed origin is echoed, never `*`.
 * - A preflight is `OPTIONS` with `Origin` and a non-empty `Access-Control-Request-Method`.
 *   From an allowed origin it is answered here: 200 with `access-control-allow-origin`,
 *   `-allow-credentials: true` (if set), `-allow-methods` and `-allow-headers` (the lists
 *   joined with `,`; `*` echoes what the request asked for), `-max-age`. From another origin
 *   it goes upstream untouched (`unmatchedPreflights: FORWARD`, the default) or is answered
 *   200 without CORS headers (`IGNORE`).
 * - Any other request goes upstream; if its origin is allowed the response gets
 *   `access-control-allow-origin`, `-allow-credentials` and `-expose-headers` (set, replacing
 *   what the upstream sent).
 */
import type { CorsPolicySnapshot } from '../mesh/snapshot.js';
import { compileStringMatch, type CompiledStringMatch } from './matchers.js';

export interface CompiledCors {
  readonly policy: CorsPolicySnapshot;
  originAllowed(origin: string): boolean;
}

export function compileCors(policy: CorsPolicySnapshot): CompiledCors {
  const matchers: CompiledStringMatch[] = policy.allowOrigins.map((m) => compileStringMatch(m));
  return {
    policy,
    originAllowed: (origin) => matchers.some((m) => !m.presence && (m.test('*') || m.test(origin))),
  };
}

export type CorsDecision =
  /** Not a CORS request (no Origin) or no policy: nothing to do. */
  | { readonly kind: 'none' }
  /** Answer the preflight here with this status and these headers; do not forward. */
  | { readonly kind: 'preflight-response'; readonly status: 200; readonly headers: ReadonlyArray<[string, string]>; readonly originAllowed: boolean }
  /** Forward; set these headers on the response (empty when the origin is not allowed). */
  | { readonly kind: 'forward'; readonly originAllowed: boolean; readonly responseHeaders: ReadonlyArray<[string, string]> };

const NONE: CorsDecision = { kind: 'none' };

/** `headers`: lower-case names. */
export function corsDecision(cors: CompiledCors | undefined, request: { method: string; headers: ReadonlyMap<string, string> }): CorsDecision {
  if (cors === undefined) return NONE;
  const origin = request.headers.get('origin');
  if (origin === undefined || origin === '') return NONE;
  const policy = cors.policy;
  const allowed = cors.originAllowed(origin);
  const requestMethod = request.headers.get('access-control-request-method');
  if (request.method === 'OPTIONS' && requestMethod !== undefined && requestMethod !== '') {
    if (!allowed && policy.unmatchedPreflights !== 'IGNORE') return { kind: 'forward', originAllowed: false, responseHeaders: [] };
    const headers: Array<[string, string]> = [];
    if (allowed) headers.push(['access-control-allow-origin', origin]);
    if (policy.allowCredentials === true) headers.push(['access-control-allow-credentials', 'true']);
    const methods = policy.allowMethods.join(',');
    if (methods !== '') headers.push(['access-control-allow-methods', methods === '*' ? requestMethod : methods]);
    const allowHeaders = policy.allowHeaders.join(',');
    if (allowHeaders !== '') {
      const asked = request.headers.get('access-control-request-headers') ?? '';
      if (allowHeaders !== '*') headers.push(['access-control-allow-headers', allowHeaders]);
      else if (asked !== '') headers.push(['access-control-allow-headers', asked]);
    }
    if (policy.maxAgeSeconds !== undefined) headers.push(['access-control-max-age', String(policy.maxAgeSeconds)]);
    return { kind: 'preflight-response', status: 200, headers, originAllowed: allowed };
  }
  if (!allowed) return { kind: 'forward', originAllowed: false, responseHeaders: [] };
  const responseHeaders: Array<[string, string]> = [['access-control-allow-origin', origin]];
  if (policy.allowCredentials === true) responseHeaders.push(['access-control-allow-credentials', 'true']);
  const expose = policy.exposeHeaders.join(',');
  if (expose !== '') responseHeaders.push(['access-control-expose-headers', expose]);
  return { kind: 'forward', originAllowed: true, responseHeaders };
}
