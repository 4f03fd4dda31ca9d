/**
 * The inbound L7 layers, in order: sanitize (identity headers) → enforce (mTLS mode, path
 * normalization, JWT, authorization — one `checkInbound` call) → the application. Each request
 * uses one policy version from start to end.
 */
import { randomUUID } from 'node:crypto';
import type { InboundDecision } from '../../policy/inbound.js';
import { applyForwardChanges } from '../../policy/jwt.js';
import type { ConnectionInfo } from '../connection.js';
import { getHeader, type HeaderList, removeHeader, setHeader } from '../headers.js';
import type { InboundPolicy } from '../inbound-policy.js';
import type { LocalRateLimiter } from '../../traffic/index.js';
import { decodePeerMetadata, PEER_METADATA_HEADER } from '../../telemetry/peer-metadata.js';
import { localReply } from './local-reply.js';
import type { L7Layer, L7Request } from './types.js';

export interface InboundLayerDeps {
  /** The policy of the current config version. */
  policy: () => InboundPolicy;
  rateLimiter?: LocalRateLimiter;
  /** This workload's SPIFFE ID, for XFCC `By=`. */
  ownIdentity: () => string;
  onDecision?: (request: L7Request, decision: InboundDecision) => void;
}

const XFCC = 'x-forwarded-client-cert';

/** The bodies Envoy sends for the same refusals, so clients and dashboards see familiar text. */
const REFUSAL_BODY: Record<400 | 401 | 403, string> = {
  400: 'Bad Request',
  401: 'Jwt verification fails',
  403: 'RBAC: access denied',
};

export function inboundLayers(deps: InboundLayerDeps): L7Layer[] {
  return [sanitize(deps), enforce(deps), rateLimit(deps)];
}

/**
 * Local rate limiting (trellis.dev RateLimit), after authorization so that denied requests do
 * not use up tokens: 429 with `retry-after` when a bucket is empty.
 */
function rateLimit(deps: InboundLayerDeps): L7Layer {
  return (next) => (request) => {
    const limiter = deps.rateLimiter;
    if (!limiter?.enabled) return next(request);
    const decision = limiter.check({
      path: request.path,
      method: request.method,
      port: request.connection.destPort,
      ...(request.connection.peer ? { caller: request.connection.peer.identity.toString() } : {}),
    });
    if (decision.allowed) return next(request);
    request.context.responseFlags.push('RL');
    request.context.telemetry = { ...request.context.telemetry, rateLimited: { source: decision.source, per: decision.per } };
    return Promise.resolve(
      localReply(request, 429, 'local_rate_limited', [
        ['retry-after', String(decision.retryAfterSeconds)],
        ['x-envoy-ratelimited', 'true'],
        ...(request.connection.peer ? ([['x-trellis-rate-limited', headerSafe(`${decision.source} rule ${decision.rule} (per ${decision.per})`)]] as HeaderList) : []),
      ]),
    );
  };
}

/**
 * Identity headers are the proxy's to set: whatever XFCC a caller sent is dropped, and a mesh
 * peer's verified identity is put in its place (Envoy's SANITIZE_SET with By, Hash and URI).
 */
function sanitize(deps: InboundLayerDeps): L7Layer {
  return (next) => (request) => {
    let headers = removeHeader(request.headers, XFCC);
    const peer = request.connection.peer;
    // The caller sidecar's workload metadata: for telemetry only, believed only from a verified
    // peer in the namespace it claims, and never passed to the application.
    const peerMetadata = getHeader(headers, PEER_METADATA_HEADER);
    if (peerMetadata !== undefined) {
      headers = removeHeader(headers, PEER_METADATA_HEADER);
      const decoded = peer ? decodePeerMetadata(peerMetadata, peer.identity.serviceAccount?.namespace) : undefined;
      if (decoded) request.context.telemetry = { ...request.context.telemetry, peerMetadata: decoded };
    }
    if (peer) headers.push([XFCC, `By=${deps.ownIdentity()};Hash=${peer.certSha256};URI=${peer.identity.toString()}`]);
    headers = setHeader(headers, 'x-forwarded-proto', request.scheme);
    if (getHeader(headers, 'x-request-id') === undefined) headers.push(['x-request-id', randomUUID()]);
    request.headers = headers;
    return next(request);
  };
}

function enforce(deps: InboundLayerDeps): L7Layer {
  return (next) => async (request) => {
    const decision = await deps.policy().check({
      ...connectionAttributes(request.connection),
      http: { method: request.method, target: request.path, host: request.authority, headers: policyHeaders(request.headers) },
    });
    request.context.authz = { decision: decision.decision, policy: decision.policy, reason: decision.reason };
    deps.onDecision?.(request, decision);
    if (decision.decision === 'DENY') {
      const status = decision.httpStatus ?? 403;
      request.context.responseFlags.push(status === 401 ? 'UAEX' : status === 400 ? 'NP' : 'RBAC');
      // Details go only to authenticated mesh peers; anyone else gets the plain status.
      const details: HeaderList = request.connection.peer ? [['x-trellis-denied', headerSafe(decision.reason)]] : [];
      if (status === 401) details.push(['www-authenticate', 'Bearer error="invalid_token"']);
      return localReply(request, status, REFUSAL_BODY[status], details);
    }
    if (decision.requestPrincipal !== undefined) request.context.requestPrincipal = decision.requestPrincipal;
    // Forward exactly the path that was authorized, with the query as received (minus a stripped token).
    const queryAt = request.path.indexOf('?');
    const forwarded = applyForwardChanges(
      { headers: request.headers, query: queryAt === -1 ? null : request.path.slice(queryAt + 1) },
      decision.forward ?? { removeHeaders: [], setHeaders: [], strip: [] },
    );
    request.path = `${decision.path ?? request.path}${forwarded.query === null ? '' : `?${forwarded.query}`}`;
    request.headers = forwarded.headers;
    return next(request);
  };
}

/** The attributes of the connection a request or TCP stream arrived on. */
export function connectionAttributes(connection: ConnectionInfo): {
  sourcePrincipal?: string;
  sourceIp: string;
  destinationIp: string;
  destinationPort: number;
  sni?: string;
} {
  return {
    ...(connection.peer ? { sourcePrincipal: connection.peer.identity.toIstioPrincipal() } : {}),
    sourceIp: connection.sourceIp,
    destinationIp: connection.destIp,
    destinationPort: connection.destPort,
    ...(connection.sni === undefined ? {} : { sni: connection.sni }),
  };
}

/** Lower-case names, repeated headers joined with "," — how Envoy presents headers to RBAC. */
function policyHeaders(headers: HeaderList): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    const existing = map.get(lower);
    map.set(lower, existing === undefined ? value : `${existing},${value}`);
  }
  return map;
}

function headerSafe(text: string): string {
  return text.replace(/≠/g, '!=').replace(/[^\x20-\x7e]/g, '?').slice(0, 512);
}
