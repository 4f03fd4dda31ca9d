/**
 * VirtualService routes → their snapshot form: durations to milliseconds, Istio's defaults made
 * explicit, destinations turned into clusters by the caller's `destination` function. Pure.
 */
import { parseDuration } from '../api/duration.js';
import { GRPC_STATUS_CODES } from '../api/grpc-status.js';
import type {
  CorsPolicy,
  Destination,
  HeaderOperations,
  Headers,
  HttpFaultInjection,
  HttpMatchRequest,
  HttpRetry,
  HttpRoute,
  L4Match,
  StringMatch,
  TcpRoute,
  TlsMatch,
  TlsRoute,
} from '../api/schemas/traffic.js';
import { DEFAULT_BACKOFF_BASE_MS, ISTIO_DEFAULT_RETRY } from '../traffic/retry.js';
import type {
  CorsPolicySnapshot,
  HeaderOperationsSnapshot,
  HeadersSnapshot,
  HttpFaultSnapshot,
  HttpMatchSnapshot,
  HttpRetrySnapshot,
  HttpRouteSnapshot,
  L4MatchSnapshot,
  RouteDestinationSnapshot,
  StringMatchSnapshot,
  TcpRouteSnapshot,
} from './snapshot.js';

/** Resolves a route destination (host as written, relative to the VirtualService) to a cluster. */
export type DestinationResolver = (destination: Destination) => Omit<RouteDestinationSnapshot, 'weight' | 'headers'>;

export function httpRouteSnapshot(route: HttpRoute, index: number, resolve: DestinationResolver): HttpRouteSnapshot {
  const destinations = route.route ?? [];
  const weightOf = (weight: number | undefined): number => weight ?? (destinations.length === 1 ? 100 : 0);
  const mirrors = [
    ...(route.mirror ? [{ destination: route.mirror, percentage: route.mirrorPercentage?.value ?? route.mirrorPercent ?? 100 }] : []),
    ...(route.mirrors ?? []).map((m) => ({ destination: m.destination, percentage: m.percentage?.value ?? 100 })),
  ];
  return {
    ...(route.name === undefined || route.name === '' ? {} : { name: route.name }),
    index,
    match: (route.match ?? []).map(httpMatchSnapshot),
    route: destinations.map((d) => ({ ...resolve(d.destination), weight: weightOf(d.weight), ...optionalHeaders(d.headers) })),
    ...(route.redirect
      ? {
          redirect: {
            ...definedOnly({ uri: route.redirect.uri, authority: route.redirect.authority, port: route.redirect.port, scheme: route.redirect.scheme }),
            redirectCode: route.redirect.redirectCode ?? 301,
            ...(route.redirect.derivePort === 'FROM_PROTOCOL_DEFAULT' ? { protocolDefaultPort: true } : {}),
          },
        }
      : {}),
    ...(route.directResponse ? { directResponse: { status: route.directResponse.status, ...directBody(route.directResponse.body) } } : {}),
    ...(route.rewrite ? { rewrite: definedOnly({ uri: route.rewrite.uri, authority: route.rewrite.authority, uriRegexRewrite: route.rewrite.uriRegexRewrite }) } : {}),
    ...(route.timeout === undefined ? {} : { timeoutMs: parseDuration(route.timeout) }),
    ...(route.retries === undefined ? {} : { retries: retrySnapshot(route.retries) }),
    ...(route.fault === undefined ? {} : { fault: faultSnapshot(route.fault) }),
    mirrors: mirrors.map((m) => ({ ...resolve(m.destination), percentage: m.percentage })),
    ...(route.corsPolicy === undefined ? {} : { corsPolicy: corsSnapshot(route.corsPolicy) }),
    ...optionalHeaders(route.headers),
  };
}

export function tcpRouteSnapshot(route: TcpRoute | TlsRoute, index: number, resolve: DestinationResolver): TcpRouteSnapshot {
  const destinations = route.route ?? [];
  return {
    index,
    match: (route.match ?? []).map(l4MatchSnapshot),
    route: destinations.map((d) => ({ ...resolve(d.destination), weight: d.weight ?? (destinations.length === 1 ? 100 : 0) })),
  };
}

function l4MatchSnapshot(match: L4Match | TlsMatch): L4MatchSnapshot {
  return definedOnly({
    port: match.port,
    destinationSubnets: match.destinationSubnets,
    sourceLabels: match.sourceLabels,
    sourceNamespace: match.sourceNamespace,
    sniHosts: 'sniHosts' in match ? match.sniHosts : undefined,
  });
}

function httpMatchSnapshot(match: HttpMatchRequest): HttpMatchSnapshot {
  return definedOnly({
    name: match.name,
    uri: stringMatch(match.uri),
    scheme: stringMatch(match.scheme),
    method: stringMatch(match.method),
    authority: stringMatch(match.authority),
    headers: stringMatchMap(match.headers),
    withoutHeaders: stringMatchMap(match.withoutHeaders),
    queryParams: match.queryParams === undefined ? undefined : Object.fromEntries(Object.entries(match.queryParams).map(([k, v]) => [k, stringMatch(v) ?? {}])),
    port: match.port,
    sourceLabels: match.sourceLabels,
    sourceNamespace: match.sourceNamespace,
    ignoreUriCase: match.ignoreUriCase,
  });
}

function stringMatch(match: StringMatch | undefined): StringMatchSnapshot | undefined {
  return match === undefined ? undefined : definedOnly({ exact: match.exact, prefix: match.prefix, regex: match.regex });
}

/** Header names are case-insensitive: the snapshot holds them lower-case. */
function stringMatchMap(map: Record<string, StringMatch> | undefined): Record<string, StringMatchSnapshot> | undefined {
  if (map === undefined) return undefined;
  return Object.fromEntries(Object.entries(map).map(([name, match]) => [name.toLowerCase(), stringMatch(match) ?? {}]));
}

/** Istio: `attempts` unset or 0 disables retries; `retryOn` unset keeps the default conditions. */
function retrySnapshot(retry: HttpRetry): HttpRetrySnapshot {
  const conditions = retry.retryOn === undefined ? [...ISTIO_DEFAULT_RETRY.retryOn] : retry.retryOn.split(',').map((c) => c.trim()).filter((c) => c !== '');
  const codes = conditions.filter((c) => /^\d{3}$/.test(c)).map(Number);
  const retryOn = conditions.filter((c) => !/^\d{3}$/.test(c));
  if (codes.length > 0 && !retryOn.includes('retriable-status-codes')) retryOn.push('retriable-status-codes');
  return {
    attempts: retry.attempts ?? 0,
    ...(retry.perTryTimeout === undefined ? {} : { perTryTimeoutMs: parseDuration(retry.perTryTimeout) }),
    retryOn,
    retriableStatusCodes: codes,
    backoffBaseMs: retry.backoff === undefined ? DEFAULT_BACKOFF_BASE_MS : parseDuration(retry.backoff),
    ...(retry.retryIgnorePreviousHosts === undefined ? {} : { retryIgnorePreviousHosts: retry.retryIgnorePreviousHosts }),
  };
}

/** Istio: a fault without a percentage applies to no request (the deprecated integer `percent` counts). */
function faultSnapshot(fault: HttpFaultInjection): HttpFaultSnapshot {
  const out: HttpFaultSnapshot = {};
  if (fault.delay?.fixedDelay !== undefined) {
    out.delay = { fixedDelayMs: parseDuration(fault.delay.fixedDelay), percentage: fault.delay.percentage?.value ?? fault.delay.percent ?? 0 };
  }
  if (fault.abort !== undefined) {
    const percentage = fault.abort.percentage?.value ?? 0;
    if (fault.abort.httpStatus !== undefined) out.abort = { httpStatus: fault.abort.httpStatus, percentage };
    else if (fault.abort.grpcStatus !== undefined) out.abort = { grpcStatus: grpcCode(fault.abort.grpcStatus), percentage };
  }
  return out;
}

function grpcCode(status: string): number {
  return GRPC_STATUS_CODES[status.toUpperCase()] ?? Number(status);
}

function corsSnapshot(cors: CorsPolicy): CorsPolicySnapshot {
  return {
    allowOrigins: [...(cors.allowOrigins ?? []).map((m) => stringMatch(m) ?? {}), ...(cors.allowOrigin ?? []).map((exact) => ({ exact }))],
    allowMethods: cors.allowMethods ?? [],
    allowHeaders: cors.allowHeaders ?? [],
    exposeHeaders: cors.exposeHeaders ?? [],
    ...(cors.maxAge === undefined ? {} : { maxAgeSeconds: Math.floor(parseDuration(cors.maxAge) / 1000) }),
    ...(cors.allowCredentials === undefined ? {} : { allowCredentials: cors.allowCredentials }),
    ...(cors.unmatchedPreflights === undefined || cors.unmatchedPreflights === 'UNSPECIFIED' ? {} : { unmatchedPreflights: cors.unmatchedPreflights }),
  };
}

function optionalHeaders(headers: Headers | undefined): { headers?: HeadersSnapshot } {
  if (headers === undefined) return {};
  return { headers: definedOnly({ request: headerOps(headers.request), response: headerOps(headers.response) }) };
}

function headerOps(ops: HeaderOperations | undefined): HeaderOperationsSnapshot | undefined {
  return ops === undefined ? undefined : definedOnly({ set: ops.set, add: ops.add, remove: ops.remove });
}

/** Bytes stay base64 so binary bodies survive the JSON snapshot. */
function directBody(body: { string?: string | undefined; bytes?: string | undefined } | undefined): { body?: string; bodyBase64?: string } {
  if (body?.string !== undefined) return { body: body.string };
  if (body?.bytes !== undefined) return { bodyBase64: body.bytes };
  return {};
}

/** Drops undefined fields (exactOptionalPropertyTypes, and snapshots hash by content). */
function definedOnly<T extends Record<string, unknown>>(object: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
