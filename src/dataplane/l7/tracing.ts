/**
 * Tracing in the L7 pipeline, as Envoy does it in Istio's sidecars:
 *   - inbound (outermost layer): joins the caller's `traceparent` or starts a trace, records a
 *     SERVER span around everything the sidecar does with the request (denials included) and
 *     forwards the span's own context to the application;
 *   - outbound (before the traffic router): records a CLIENT span for each request the
 *     application makes (its parent is the `traceparent` the application forwarded) and sends
 *     that span's context upstream. It also gives the request an `x-request-id` when the
 *     application did not (Envoy's generate_request_id), tracing on or off.
 * The spans end when the response body has been passed on. The tracer lives in
 * src/telemetry/tracing.ts; without one (no --tracing-endpoint) trace headers pass unchanged.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Attributes } from '@opentelemetry/api';
// Types only from tracing.ts: the OpenTelemetry SDK is loaded by proxy.ts when tracing is on.
import type { ProxyTracer, RequestSpan } from '../../telemetry/tracing.js';
import { responseAttributes } from '../../telemetry/tracing-tags.js';
import { TRACEPARENT, TRACESTATE } from '../../telemetry/trace-context.js';
import { getHeader, type HeaderList, removeHeader } from '../headers.js';
import { splitAuthority } from '../service-resolver.js';
import type { L7Handler, L7Layer, L7Request, L7Response } from './types.js';

const REQUEST_ID = 'x-request-id';

export interface InboundTracingDeps {
  tracer: ProxyTracer;
  /** The workload port this listener serves (Istio's `inbound|<port>||` cluster). */
  port: number;
}

/** The SERVER span of an inbound request (reporter: destination). */
export function inboundTracing(deps: InboundTracingDeps): L7Layer {
  const cluster = `inbound|${deps.port}||`;
  return (next) => (request) => {
    const span = deps.tracer.startSpan('server', request, spanName(request.authority, deps.port));
    propagate(request, span);
    return traced(next, request, span, () => ({
      ...requestAttributes(request),
      'peer.address': request.connection.sourceIp,
      upstream_cluster: cluster,
      'upstream_cluster.name': cluster,
      ...(request.connection.peer ? { 'source.principal': request.connection.peer.identity.toString() } : {}),
    }));
  };
}

/**
 * The CLIENT span of an outbound request (reporter: source), and its `x-request-id`. Without a
 * tracer only the request id is added.
 */
export function outboundTracing(tracer: ProxyTracer | undefined): L7Layer {
  return (next) => (request) => {
    if (getHeader(request.headers, REQUEST_ID) === undefined) request.headers = [...request.headers, [REQUEST_ID, randomUUID()]];
    if (!tracer) return next(request);
    const span = tracer.startSpan('client', request, spanName(request.authority, request.scheme === 'https' ? 443 : 80));
    propagate(request, span);
    return traced(next, request, span, () => {
      const trace = request.context.trace;
      return {
        ...requestAttributes(request),
        ...(request.context.upstreamHost ? { 'peer.address': request.context.upstreamHost } : {}),
        ...(trace?.upstreamCluster ? { upstream_cluster: trace.upstreamCluster, 'upstream_cluster.name': trace.upstreamCluster } : {}),
        ...(trace?.upstreamIdentity ? { 'destination.principal': trace.upstreamIdentity } : {}),
      };
    });
  };
}

/** The span's context replaces the caller's on the way on; the request's context records it. */
function propagate(request: L7Request, span: RequestSpan): void {
  const headers: HeaderList = removeHeader(removeHeader(request.headers, TRACEPARENT), TRACESTATE);
  headers.push([TRACEPARENT, span.traceparent]);
  if (span.tracestate !== undefined) headers.push([TRACESTATE, span.tracestate]);
  request.headers = headers;
  request.context.trace = { traceId: span.traceId, spanId: span.spanId, sampled: span.sampled };
}

/** Runs the rest of the pipeline and ends the span when the response is through (or failed). */
async function traced(next: L7Handler, request: L7Request, span: RequestSpan, attributes: () => Attributes): Promise<L7Response> {
  const end = (status: number): void => {
    if (!span.recording) return span.end(status);
    span.end(status, { ...attributes(), ...responseAttributes(status, request.context.responseFlags), ...requestIdAttribute(request) });
  };
  let response: L7Response;
  try {
    response = await next(request);
  } catch (err) {
    end(0);
    throw err;
  }
  if (Buffer.isBuffer(response.body)) end(response.status);
  else whenDone(response.body, request.signal, () => end(response.status));
  return response;
}

/** When the body has been read, failed, or the downstream went away (its body may never be read then). */
function whenDone(body: Readable, signal: AbortSignal, done: () => void): void {
  let called = false;
  const once = (): void => {
    if (called) return;
    called = true;
    signal.removeEventListener('abort', once);
    done();
  };
  body.once('end', once);
  body.once('close', once);
  body.once('error', once);
  if (signal.aborted) once();
  else signal.addEventListener('abort', once, { once: true });
}

/** Envoy's request tags. The query is left out: it may carry a token. */
function requestAttributes(request: L7Request): Attributes {
  const queryAt = request.path.indexOf('?');
  const userAgent = getHeader(request.headers, 'user-agent');
  return {
    'http.method': request.method,
    'http.url': `${request.scheme}://${request.authority}${queryAt === -1 ? request.path : request.path.slice(0, queryAt)}`,
    'http.protocol': request.protocol,
    downstream_cluster: '-',
    ...(userAgent === undefined ? {} : { user_agent: userAgent }),
  };
}

function requestIdAttribute(request: L7Request): Attributes {
  const id = getHeader(request.headers, REQUEST_ID);
  return id === undefined ? {} : { 'guid:x-request-id': id };
}

/** Istio's default operation name: `<host>:<port>/*`. */
function spanName(authority: string, defaultPort: number): string {
  if (authority === '') return 'unknown/*';
  const { host, port } = splitAuthority(authority, defaultPort);
  return `${host}:${port}/*`;
}
