/**
 * The outbound HTTP path with traffic management, Istio's order:
 *   resolve the destination (or apply egress policy) → route (first match of the VirtualService,
 *   or the default route) → CORS → fault injection → redirect / direct response → pick the
 *   weighted destination → rewrite and header operations → mirrors (fire and forget) → attempts:
 *   pick an endpoint (load balancer, outlier detection) → circuit breaker → send (per-try
 *   timeout) → retry on the policy's conditions with backoff, all under the route's timeout.
 * The decisions come from src/traffic; this module does the I/O and keeps the time.
 */
import type { Logger } from 'pino';
import type { ClusterSnapshot } from '../mesh/snapshot.js';
import {
  abortResponse,
  applyRequestHeaderOperations,
  applyResponseHeaderOperations,
  attemptTimeoutMs,
  type AttemptOutcome,
  type ClusterRuntime,
  corsDecision,
  decideFault,
  egressDecision,
  headerMap,
  type HttpRouteSelection,
  pickDestination,
  pickMirrors,
  redirectResponse,
  type RequestView,
  RetryState,
  rewriteAuthority,
  selectHttpRoute,
  type SourceView,
  type TrafficState,
} from '../traffic/index.js';
import { PEER_METADATA_HEADER } from '../telemetry/peer-metadata.js';
import { replay, RequestBody } from './body-buffer.js';
import type { ExternalUpstream } from './external-upstream.js';
import { getHeader, type HeaderList } from './headers.js';
import { localReply } from './l7/local-reply.js';
import type { L7Handler, L7Request, L7Response } from './l7/types.js';
import { UpstreamError } from './l7/upstream.js';
import type { MeshUpstream } from './mesh-upstream.js';
import type { ResolvedTarget, ServiceResolver } from './service-resolver.js';
import type { DataPlaneTelemetry } from './telemetry.js';
import { splitAuthority } from './service-resolver.js';

export interface TrafficRouterDeps {
  resolver: () => ServiceResolver;
  traffic: () => TrafficState;
  upstream: MeshUpstream;
  external: ExternalUpstream;
  /** This workload's namespace and labels (VirtualService sourceLabels / sourceNamespace). */
  source: () => SourceView;
  log: Logger;
  random: () => number;
  now: () => number;
  /** Metrics and access log; also the peer metadata header sent to mesh peers. */
  telemetry?: DataPlaneTelemetry;
}

const SHADOW_SUFFIX = '-shadow';

/**
 * The outbound L7 handler. `fixedTarget`: an explicit upstream port leads to one service,
 * whatever the request names.
 */
export function trafficRouter(deps: TrafficRouterDeps, fixedTarget?: () => ResolvedTarget | undefined): L7Handler {
  return async (request) => {
    const resolver = deps.resolver();
    const target = fixedTarget?.() ?? resolver.resolve(request.authority, request.scheme === 'https' ? 443 : 80);
    const traffic = deps.traffic();
    if (!target) {
      const { host, port } = splitAuthority(request.authority, 80);
      const egress = egressDecision(traffic.traffic, { host, registered: false });
      if (!egress.allowed) {
        request.context.responseFlags.push('NR');
        deps.log.info({ event: 'egress.blocked', host, reason: egress.reason }, 'egress blocked');
        return localReply(request, 502, `no route to "${request.authority}": ${egress.reason}`);
      }
      // ALLOW_ANY: to the address the application asked for (Istio's PassthroughCluster).
      request.context.upstreamHost = `${host}:${port}`;
      return sendExternal(deps, request, { host, port, tls: 'DISABLE' });
    }

    if (deps.telemetry) request.context.telemetry = { ...request.context.telemetry, service: { host: target.service.host, namespace: target.service.namespace } };
    const table = traffic.routeTables.get(target.service.host, target.port.number);
    if (!table) {
      request.context.responseFlags.push('NR');
      return localReply(request, 404, `no route table for ${target.service.host}:${target.port.number}`);
    }
    const headers = headerMap(request.headers);
    const view: RequestView = {
      method: request.method,
      path: request.path,
      authority: request.authority,
      scheme: request.scheme,
      headers,
      port: target.port.number,
      source: deps.source(),
    };
    const selection = selectHttpRoute(table, view);
    if (!selection.matched) {
      request.context.responseFlags.push('NR');
      return localReply(request, 404, `route not found: ${selection.explanation}`);
    }
    return routeRequest(deps, traffic, request, view, selection);
  };
}

async function routeRequest(
  deps: TrafficRouterDeps,
  traffic: TrafficState,
  request: L7Request,
  view: RequestView,
  selection: Extract<HttpRouteSelection, { matched: true }>,
): Promise<L7Response> {
  const route = selection.route;
  const extras = traffic.routeExtras(route);

  const cors = corsDecision(extras.cors, view);
  if (cors.kind === 'preflight-response') return { status: cors.status, headers: [...cors.headers, ['content-length', '0']], body: Buffer.alloc(0) };

  const fault = decideFault(route.fault, deps.random);
  request.context.responseFlags.push(...fault.responseFlags);
  if (fault.delayMs !== undefined) await sleep(fault.delayMs, request.signal);
  if (fault.abort) {
    const abort = abortResponse(fault.abort);
    return { status: abort.status, headers: [...abort.headers, ['content-length', String(Buffer.byteLength(abort.body))]], body: Buffer.from(abort.body) };
  }

  if (route.redirect) {
    const redirect = redirectResponse(route.redirect, { scheme: request.scheme, authority: request.authority, path: request.path });
    return { status: redirect.status, headers: [['location', redirect.location], ['content-length', '0']], body: Buffer.alloc(0) };
  }
  if (route.directResponse) {
    const { body: text, bodyBase64 } = route.directResponse;
    const body = bodyBase64 !== undefined ? Buffer.from(bodyBase64, 'base64') : Buffer.from(text ?? '', 'utf8');
    return { status: route.directResponse.status, headers: [['content-type', 'text/plain'], ['content-length', String(body.length)]], body };
  }

  const destination = pickDestination(route.route, deps.random);
  const cluster = destination ? traffic.cluster(destination.cluster) : undefined;
  if (!destination || !cluster) {
    request.context.responseFlags.push('NC');
    return localReply(request, 503, `no healthy upstream: the route's destination ${destination?.cluster ?? '(none)'} has no cluster`);
  }

  // What goes upstream: the rewritten path and authority, the header operations.
  const path = extras.rewrite.path(request.path, selection.match) ?? request.path;
  const authority = rewriteAuthority(route, destination) ?? request.authority;
  // The peer metadata header is the sidecar's to send (see send()); the application's is dropped.
  const headers: HeaderList = request.headers.filter(([name]) => name.toLowerCase() !== PEER_METADATA_HEADER).map(([name, value]) => [name, value]);
  applyRequestHeaderOperations(headers, route, destination);

  const body = new RequestBody(request.body);
  const mirrors = pickMirrors(route, deps.random);
  if (mirrors.length > 0) {
    // Mirrors get a copy once the whole body is in (fire and forget; never for an oversized body).
    void body.settled().then((replayable) => {
      if (!replayable) return;
      for (const mirror of mirrors) {
        const mirrorCluster = traffic.cluster(mirror.cluster);
        if (mirrorCluster) shadow(deps, mirrorCluster, request, { path, authority: shadowAuthority(authority), headers, body: body.recording() });
      }
    });
  }

  const response = await attempts(deps, cluster, request, view, { path, authority, headers, body, timeoutMs: route.timeoutMs, retryPolicy: extras.retryPolicy(cluster) });
  applyResponseHeaderOperations(response.headers, route, destination);
  if (cors.kind === 'forward') response.headers.push(...cors.responseHeaders);
  return response;
}

interface Outgoing {
  path: string;
  authority: string;
  headers: HeaderList;
  body: RequestBody;
  timeoutMs: number | undefined;
  retryPolicy: ReturnType<ReturnType<TrafficState['routeExtras']>['retryPolicy']>;
}

/** Sends the request, retrying per policy, under the route's overall timeout. */
async function attempts(deps: TrafficRouterDeps, cluster: ClusterRuntime, request: L7Request, view: RequestView, out: Outgoing): Promise<L7Response> {
  const started = deps.now();
  const retry = new RetryState(out.retryPolicy, { random: deps.random, budget: cluster.breaker });
  const overall = out.timeoutMs !== undefined && out.timeoutMs > 0 ? out.timeoutMs : undefined;
  try {
    for (;;) {
      const elapsed = deps.now() - started;
      if (overall !== undefined && elapsed >= overall) return timedOut(request);
      const pick = cluster.pick({ request: view, sourceIp: request.connection.sourceIp, connectionId: String(request.connection.id), exclude: retry.exclude });
      if (pick.kind !== 'endpoint') {
        request.context.responseFlags.push('UH');
        return localReply(request, 503, `no healthy upstream for ${cluster.cluster.host}:${cluster.cluster.port}${cluster.cluster.subset ? ` subset ${cluster.cluster.subset}` : ''}`);
      }
      const endpoint = pick.target;
      if (request.context.trace) Object.assign(request.context.trace, { upstreamCluster: cluster.cluster.name, upstreamIdentity: endpoint.endpoint.identity });
      retry.triedEndpoint(endpoint.key);
      request.context.upstreamHost = endpoint.key;
      if (deps.telemetry) {
        const { workload, labels, identity } = endpoint.endpoint;
        request.context.telemetry = { ...request.context.telemetry, upstreamCluster: cluster.cluster.name, ...(cluster.cluster.tls.mode === 'ISTIO_MUTUAL' && cluster.cluster.location === 'MESH_INTERNAL' ? { upstreamWorkload: { workload, labels, identity } } : {}) };
      }

      const admission = await admit(cluster, request.signal, overall === undefined ? undefined : overall - (deps.now() - started));
      if (admission === 'timeout') return timedOut(request);
      if (admission === 'cancelled') return localReply(request, 499, 'client closed the request');
      if ('refused' in admission) {
        request.context.responseFlags.push('UO');
        if (deps.telemetry) request.context.telemetry = { ...request.context.telemetry, overflow: { cluster: cluster.cluster.name, reason: admission.refused } };
        return localReply(request, 503, `upstream overflow: the circuit breaker of ${cluster.cluster.name} is open`);
      }
      const body = out.body.forAttempt();
      if (!body) {
        admission.release();
        return localReply(request, 503, 'upstream reset: the request body cannot be sent again');
      }

      const perTry = attemptTimeoutMs(retry.policy, overall, deps.now() - started);
      const attempt = new AbortController();
      const onDownstreamAbort = (): void => attempt.abort();
      request.signal.addEventListener('abort', onDownstreamAbort, { once: true });
      let timedOutAttempt = false;
      const timer = perTry !== undefined ? setTimeout(() => ((timedOutAttempt = true), attempt.abort()), perTry) : undefined;
      cluster.balancer.requestStarted(endpoint.key);
      let outcome: AttemptOutcome;
      let response: L7Response | undefined;
      const finish = (): void => {
        cluster.balancer.requestFinished(endpoint.key);
        admission.release();
      };
      try {
        response = await send(deps, cluster.cluster, endpoint.endpoint, endpoint.port, { ...request, path: out.path, authority: out.authority, headers: out.headers, body, signal: attempt.signal });
        outcome = { kind: 'response', status: response.status, ...grpcStatusOf(response.headers) };
      } catch (err) {
        const error = err instanceof UpstreamError ? err : new UpstreamError('UF', String(err));
        outcome = timedOutAttempt ? { kind: 'per-try-timeout' } : error.flag === 'UF' ? { kind: 'connect-failure' } : { kind: 'reset' };
        if (!timedOutAttempt) request.context.responseFlags.push(error.flag);
        else request.context.responseFlags.push('UT');
      } finally {
        if (timer) clearTimeout(timer);
        request.signal.removeEventListener('abort', onDownstreamAbort);
      }
      const event = cluster.report(endpoint.key, outcome.kind === 'response' ? { kind: 'response', status: outcome.status } : outcome.kind === 'per-try-timeout' ? { kind: 'timeout' } : outcome.kind === 'connect-failure' ? { kind: 'connect-failure' } : { kind: 'reset' });
      if (event?.kind === 'ejected') deps.log.info({ event: 'outlier.ejected', cluster: cluster.cluster.name, endpoint: event.endpoint, reason: event.reason, untilMs: event.untilMs }, 'endpoint ejected');
      if (request.signal.aborted) {
        finish();
        if (response && !Buffer.isBuffer(response.body)) response.body.destroy();
        return localReply(request, 499, 'client closed the request');
      }

      const decision = retry.decide(outcome, { bodyBuffered: out.body.replayable });
      if (decision.retry && (overall === undefined || deps.now() - started + decision.backoffMs < overall)) {
        if (response && !Buffer.isBuffer(response.body)) response.body.resume();
        finish();
        request.context.responseFlags.push('URX');
        await sleep(decision.backoffMs, request.signal);
        continue;
      }
      if (!response) {
        finish();
        if (outcome.kind === 'per-try-timeout') return timedOut(request);
        return localReply(request, 503, `upstream connect error or disconnect/reset before headers: ${outcome.kind}`);
      }
      // The slot and the load balancer's count last until the response body is done.
      releaseWhenDone(response, finish);
      if (pick.setCookie) response.headers.push(['set-cookie', pick.setCookie]);
      return response;
    }
  } finally {
    retry.finish();
  }
}

function timedOut(request: L7Request): L7Response {
  request.context.responseFlags.push('UT');
  return localReply(request, 504, 'upstream request timeout');
}

/** Waits for the cluster's circuit breaker; the overflow reason when it refuses. */
/**
 * Waits for the cluster's circuit breaker: a slot, the overflow reason when it refuses, or
 * 'timeout' when the route's time runs out (or 'cancelled' when the caller goes away) while the
 * request waits for a connection.
 */
function admit(cluster: ClusterRuntime, signal: AbortSignal, waitMs: number | undefined): Promise<{ release(): void } | { refused: string } | 'timeout' | 'cancelled'> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const admission = cluster.breaker.admit((slot) => {
      if (timer) clearTimeout(timer);
      resolve(slot);
    });
    if (admission.kind === 'started') return resolve(admission.slot);
    if (admission.kind === 'overflow') return resolve({ refused: admission.reason });
    const stop = (outcome: 'timeout' | 'cancelled'): void => {
      if (timer) clearTimeout(timer);
      admission.cancel();
      resolve(outcome);
    };
    signal.addEventListener('abort', () => stop('cancelled'), { once: true });
    if (waitMs !== undefined) timer = setTimeout(() => stop('timeout'), Math.max(0, waitMs));
  });
}

/** One attempt to one endpoint: mesh mTLS inside the mesh, the external upstream outside. */
function send(deps: TrafficRouterDeps, cluster: ClusterSnapshot, endpoint: ClusterSnapshot['endpoints'][number], port: number, request: L7Request): Promise<L7Response> {
  if (cluster.location === 'MESH_EXTERNAL' || cluster.tls.mode !== 'ISTIO_MUTUAL') {
    return deps.external.sendHttp(request, {
      host: cluster.resolution === 'DNS' || cluster.resolution === 'DNS_ROUND_ROBIN' ? endpoint.address || cluster.host : endpoint.address,
      port,
      tls: cluster.tls.mode === 'SIMPLE' ? 'SIMPLE' : 'DISABLE',
      ...(cluster.tls.sni ? { sni: cluster.tls.sni } : {}),
      ...(cluster.connectionPool.connectTimeoutMs ? { connectTimeoutMs: cluster.connectionPool.connectTimeoutMs } : {}),
      limits: cluster.connectionPool,
    });
  }
  const metadata = deps.telemetry?.peerMetadataHeader();
  if (metadata !== undefined) request = { ...request, headers: [...request.headers, [PEER_METADATA_HEADER, metadata]] };
  const http2Upstream = cluster.protocol === 'GRPC' || cluster.protocol === 'HTTP2' || (cluster.protocol === 'UNKNOWN' && request.protocol === 'HTTP/2');
  return deps.upstream.sendHttp(
    request,
    { endpoint, port, serverName: `outbound_.${cluster.port}_.${cluster.subset ?? ''}_.${cluster.host}`, serviceIdentities: identitiesOf(deps, cluster), limits: cluster.connectionPool },
    http2Upstream,
  );
}

function identitiesOf(deps: TrafficRouterDeps, cluster: ClusterSnapshot): string[] {
  return deps.resolver().resolve(`${cluster.host}:${cluster.port}`, cluster.port)?.service.identities ?? cluster.endpoints.map((endpoint) => endpoint.identity);
}

function sendExternal(deps: TrafficRouterDeps, request: L7Request, destination: { host: string; port: number; tls: 'DISABLE' }): Promise<L7Response> {
  return deps.external.sendHttp(request, destination).catch((err: unknown) => {
    const error = err instanceof UpstreamError ? err : new UpstreamError('UF', String(err));
    request.context.responseFlags.push(error.flag);
    return localReply(request, 503, `upstream connect error or disconnect/reset before headers: ${error.message}`);
  });
}

/** A copy of the request to a mirror cluster; its response is read and dropped. */
function shadow(deps: TrafficRouterDeps, cluster: ClusterRuntime, request: L7Request, copy: { path: string; authority: string; headers: HeaderList; body: Buffer }): void {
  const pick = cluster.pick({});
  if (pick.kind !== 'endpoint') return;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 30_000);
  timer.unref();
  send(deps, cluster.cluster, pick.target.endpoint, pick.target.port, {
    ...request,
    path: copy.path,
    authority: copy.authority,
    headers: copy.headers.map(([name, value]) => [name, value]),
    body: replay(copy.body),
    signal: controller.signal,
    context: { responseFlags: [] },
  })
    .then((response) => {
      if (!Buffer.isBuffer(response.body)) response.body.resume();
    })
    .catch((err: unknown) => deps.log.debug({ event: 'mirror.failed', cluster: cluster.cluster.name, err: String(err) }, 'mirror request failed'))
    .finally(() => clearTimeout(timer));
}

function shadowAuthority(authority: string): string {
  const { host, port } = splitAuthority(authority, 0);
  return port ? `${host}${SHADOW_SUFFIX}:${port}` : `${host}${SHADOW_SUFFIX}`;
}

function releaseWhenDone(response: L7Response, release: () => void): void {
  if (Buffer.isBuffer(response.body)) {
    release();
    return;
  }
  let done = false;
  const once = (): void => {
    if (done) return;
    done = true;
    release();
  };
  response.body.once('end', once);
  response.body.once('close', once);
  response.body.once('error', once);
}

function grpcStatusOf(headers: HeaderList): { grpcStatus?: number } {
  const value = getHeader(headers, 'grpc-status');
  return value === undefined || !/^\d+$/.test(value) ? {} : { grpcStatus: Number(value) };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
