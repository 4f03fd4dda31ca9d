/**
 * The `Location` of a redirect route (VirtualService `redirect`), as Envoy builds it from
 * Istio's translation:
 *
 * - scheme: `redirect.scheme`, else the request's.
 * - host: `redirect.authority` as given, else the request's authority — without its port when
 *   the redirect sets a port, or when the scheme changes and the port was the old scheme's
 *   default (`http://a:80` → `https://a`).
 * - port: `redirect.port`, except 80 for http and 443 for https, which Istio drops from the
 *   redirect altogether — so the request's own port, if it had one, stays (Istio's behaviour,
 *   kept). `derivePort: FROM_REQUEST_PORT` is that default (the request's port stays);
 *   `FROM_PROTOCOL_DEFAULT` (`protocolDefaultPort`) drops the port: the scheme's default applies.
 * - path: `redirect.uri` replaces the whole path whatever the match was; the request's query
 *   is kept unless `uri` carries its own. Without `uri`, the request's path and query.
 * - status: `redirectCode` (Istio: 301 by default).
 */
import type { HttpRouteSnapshot } from '../mesh/snapshot.js';

export type RedirectSnapshot = NonNullable<HttpRouteSnapshot['redirect']>;

export interface RedirectResponse {
  readonly status: number;
  readonly location: string;
}

export function redirectResponse(redirect: RedirectSnapshot, request: { scheme: string; authority: string; path: string }): RedirectResponse {
  const scheme = redirect.scheme !== undefined && redirect.scheme !== '' ? redirect.scheme : request.scheme;
  let port = redirect.port !== undefined && redirect.port > 0 ? `:${redirect.port}` : '';
  if ((port === ':80' && scheme.toLowerCase() === 'http') || (port === ':443' && scheme.toLowerCase() === 'https')) port = '';
  const host = redirect.authority !== undefined && redirect.authority !== '' ? redirect.authority : requestHost(request.authority, request.scheme, scheme, port !== '' || redirect.protocolDefaultPort === true);
  let path: string;
  if (redirect.uri !== undefined && redirect.uri !== '') {
    const q = request.path.indexOf('?');
    path = redirect.uri.includes('?') || q === -1 ? redirect.uri : redirect.uri + request.path.slice(q);
  } else {
    path = request.path;
  }
  if (!path.startsWith('/')) path = `/${path}`;
  return { status: redirect.redirectCode > 0 ? redirect.redirectCode : 301, location: `${scheme}://${host}${port}${path}` };
}

/** The request's authority with its port removed where Envoy removes it. */
function requestHost(authority: string, requestScheme: string, newScheme: string, newPort: boolean): string {
  let portStart: number;
  if (authority.startsWith('[')) {
    const end = authority.lastIndexOf(']:');
    portStart = end === -1 ? -1 : end + 1;
  } else {
    portStart = authority.lastIndexOf(':');
  }
  if (portStart === -1) return authority;
  const port = authority.slice(portStart);
  let remove = newPort;
  if (newScheme.toLowerCase() !== requestScheme.toLowerCase()) {
    const old = requestScheme.toLowerCase();
    if ((old === 'https' && port === ':443') || (old === 'http' && port === ':80')) remove = true;
  }
  return remove ? authority.slice(0, portStart) : authority;
}
