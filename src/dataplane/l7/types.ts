/**
 * The L7 pipeline's request and response: protocol-neutral, so an HTTP/1.1 or HTTP/2 request
 * passes the same layers and can be forwarded over either protocol.
 */
import type { Readable } from 'node:stream';
import type { ConnectionInfo } from '../connection.js';
import type { WorkloadMetadata } from '../../telemetry/istio-labels.js';
import type { HeaderList } from '../headers.js';

export type HttpProtocol = 'HTTP/1.1' | 'HTTP/2';

export interface L7Request {
  method: string;
  /** host[:port] from :authority or Host. */
  authority: string;
  /** Origin-form path with query, as it will be forwarded. */
  path: string;
  scheme: 'http' | 'https';
  /** End-to-end headers only: hop-by-hop and pseudo-headers removed. */
  headers: HeaderList;
  body: Readable;
  protocol: HttpProtocol;
  connection: ConnectionInfo;
  /** Aborted when the downstream goes away: upstream work stops too. */
  signal: AbortSignal;
  /** Filled by the layers as the request passes them, for logs and later layers. */
  context: RequestContext;
}

export interface RequestContext {
  /** Envoy-style response flags, e.g. UF (upstream failure), URX, NR (no route). */
  responseFlags: string[];
  /** This proxy's span for the request, when tracing is on (see l7/tracing.ts). */
  trace?: RequestTrace;
  /** The authorization decision's summary, when one was made. */
  authz?: { decision: 'ALLOW' | 'DENY'; policy: string | null; reason: string };
  /** `iss/sub` of a verified JWT. */
  requestPrincipal?: string;
  upstreamHost?: string;
  /** For telemetry (metrics, access log); set where the facts become known. */
  telemetry?: RequestTelemetryContext;
}

/** What metrics and the access log need beyond the request itself. */
export interface RequestTelemetryContext {
  /** Outbound: the service the route resolved. */
  service?: { host: string; namespace?: string };
  /** Outbound: the mesh endpoint the (last) attempt went to. */
  upstreamWorkload?: { workload: string; labels: Readonly<Record<string, string>>; identity: string };
  upstreamCluster?: string;
  /** Inbound: the caller's workload, from a verified mesh peer's metadata header. */
  peerMetadata?: WorkloadMetadata;
  /** Inbound: the RateLimit bucket that refused the request. */
  rateLimited?: { source: string; per: 'workload' | 'caller' };
  /** Outbound: the circuit breaker that refused the request. */
  overflow?: { cluster: string; reason: string };
}

export interface L7Response {
  status: number;
  headers: HeaderList;
  body: Readable | Buffer;
  /** Trailers, available once the body has ended (HTTP/2, gRPC). */
  trailers?: () => HeaderList | undefined;
}

/** The uniform interface of every L7 layer: a handler, or a function wrapping the next one. */
export type L7Handler = (request: L7Request) => Promise<L7Response>;
export type L7Layer = (next: L7Handler) => L7Handler;

export function composeLayers(layers: readonly L7Layer[], last: L7Handler): L7Handler {
  return layers.reduceRight<L7Handler>((next, layer) => layer(next), last);
}

export function isGrpc(request: Pick<L7Request, 'headers'>): boolean {
  for (const [name, value] of request.headers) {
    if (name.toLowerCase() === 'content-type') return value.toLowerCase().startsWith('application/grpc');
  }
  return false;
}

/** The request's span as later layers see it; the traffic router records the upstream it picked. */
export interface RequestTrace {
  traceId: string;
  spanId: string;
  sampled: boolean;
  /** Outbound: the cluster (`outbound|port|subset|host`) and SPIFFE ID of the last attempt's endpoint. */
  upstreamCluster?: string;
  upstreamIdentity?: string;
}
