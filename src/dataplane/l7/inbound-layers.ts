/**
 * The inbound L7 layers, in order: sanitize (identity headers) → normalize (path) →
 * authenticate (JWT) → authorize. Each request uses one policy version from start to end.
 */
import { randomUUID } from 'node:crypto';
import { getHeader, type HeaderList, removeHeader, setHeader } from '../headers.js';
import type { InboundPolicy, JwtOutcome } from '../inbound-policy.js';
import { localReply } from './local-reply.js';
import type { L7Layer, L7Request } from './types.js';

export interface InboundLayerDeps {
  /** The policy engine of the current config version. */
  policy: () => InboundPolicy;
  /** This workload's SPIFFE ID, for XFCC `By=`. */
  ownIdentity: () => string;
  onDecision?: (request: L7Request, allowed: boolean, reason: string) => void;
}

const XFCC = 'x-forwarded-client-cert';
const DENIED_BODY = 'RBAC: access denied';

/** Per-request state shared by the layers below. */
const policyOf = new WeakMap<L7Request, InboundPolicy>();
const jwtOf = new WeakMap<L7Request, JwtOutcome>();

export function inboundLayers(deps: InboundLayerDeps): L7Layer[] {
  return [sanitize(deps), normalize(deps), authenticate(), authorize(deps)];
}

/**
 * Identity headers are the proxy's to set: whatever XFCC a caller sent is dropped, and a mesh
 * peer's verified identity is put in its place (Envoy's SANITIZE_SET with By, Hash and URI).
 */
function sanitize(deps: InboundLayerDeps): L7Layer {
  return (next) => (request) => {
    policyOf.set(request, deps.policy());
    let headers = removeHeader(request.headers, XFCC);
    const peer = request.connection.peer;
    if (peer) headers.push([XFCC, `By=${deps.ownIdentity()};Hash=${peer.certSha256};URI=${peer.identity.toString()}`]);
    headers = setHeader(headers, 'x-forwarded-proto', request.scheme);
    if (getHeader(headers, 'x-request-id') === undefined) headers.push(['x-request-id', randomUUID()]);
    request.headers = headers;
    return next(request);
  };
}

/** The path is normalized once; authorization and the application both see the result. */
function normalize(deps: InboundLayerDeps): L7Layer {
  return (next) => (request) => {
    const policy = policyOf.get(request) ?? deps.policy();
    const result = policy.normalizePath(request.path);
    if (!result.ok) {
      request.context.responseFlags.push('NP');
      return Promise.resolve(localReply(request, 400, `Bad Request: ${result.reason}`));
    }
    request.path = result.path;
    return next(request);
  };
}

function authenticate(): L7Layer {
  return (next) => async (request) => {
    const policy = policyOf.get(request) as InboundPolicy;
    let jwt: JwtOutcome;
    try {
      jwt = await policy.authenticate({ headers: request.headers, path: request.path });
    } catch (err) {
      // A check that errors denies.
      jwt = { status: 'invalid', reason: `JWT verification error: ${(err as Error).message}` };
    }
    if (jwt.status === 'invalid') {
      request.context.responseFlags.push('UAEX');
      return localReply(request, 401, 'Jwt verification fails', [['www-authenticate', 'Bearer error="invalid_token"']]);
    }
    if (jwt.status === 'valid') {
      request.context.requestPrincipal = jwt.principal;
      let headers: HeaderList = request.headers;
      for (const name of jwt.removeHeaders) headers = removeHeader(headers, name);
      for (const [name, value] of jwt.setHeaders) headers = setHeader(headers, name, value);
      request.headers = headers;
    }
    jwtOf.set(request, jwt);
    return next(request);
  };
}

function authorize(deps: InboundLayerDeps): L7Layer {
  return (next) => (request) => {
    const policy = policyOf.get(request) as InboundPolicy;
    const queryStart = request.path.indexOf('?');
    let decision;
    try {
      decision = policy.authorizeHttp({
        connection: request.connection,
        method: request.method,
        path: queryStart === -1 ? request.path : request.path.slice(0, queryStart),
        host: request.authority,
        headers: request.headers,
        jwt: jwtOf.get(request) ?? { status: 'none' },
      });
    } catch (err) {
      decision = { allow: false, policy: null, reason: `authorization error: ${(err as Error).message}` };
    }
    request.context.authz = { decision: decision.allow ? 'ALLOW' : 'DENY', policy: decision.policy, reason: decision.reason };
    deps.onDecision?.(request, decision.allow, decision.reason);
    if (decision.allow) return next(request);
    request.context.responseFlags.push('RBAC');
    // Details go only to authenticated mesh peers; anyone else gets the plain status.
    const details: HeaderList = request.connection.peer
      ? [['x-trellis-denied', headerSafe(`${decision.policy ?? 'default'}: ${decision.reason}`)]]
      : [];
    return Promise.resolve(localReply(request, 403, DENIED_BODY, details));
  };
}

function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 512);
}
