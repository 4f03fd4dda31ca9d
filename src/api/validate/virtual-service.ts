import type { FieldPath } from '../diagnostics.js';
import { GRPC_STATUS_CODES } from '../grpc-status.js';
import { hostCovers } from '../hosts.js';
import { parseIp, parseIpBlock } from '../ip.js';
import { isDns1123Label, isHeaderName } from '../names.js';
import type { ResourceMeta } from '../resources.js';
import { GRPC_CONDITIONS, HTTP_CONDITIONS, isRetryStatusCode } from '../retry-conditions.js';
import type {
  CorsPolicy,
  HttpDirectResponse,
  HttpFaultInjection,
  HttpMatchRequest,
  HttpRedirect,
  HttpRetry,
  HttpRewrite,
  HttpRoute,
  L4Match,
  RouteDestination,
  TcpRoute,
  TlsMatch,
  TlsRoute,
  VirtualServiceSpec,
} from '../schemas/traffic.js';
import type { ResourceChecker } from './checker.js';
import { checkLabelMap } from './common.js';
import {
  checkDestination,
  checkDuration,
  checkExportTo,
  checkHeaders,
  checkHost,
  checkMatchHeaderName,
  checkPercentage,
  checkPortNumber,
  checkRegex,
  checkStringMatch,
} from './traffic-values.js';

/**
 * VirtualService validation: Istio's validator's rules (pkg/config/validation), plus Trellis's
 * stricter ones where Istio would accept a rule that silently does nothing or something else
 * than it says: weights must add up to 100, redirect codes Envoy cannot send, settings Trellis
 * cannot honor (gateways, delegation, HTTP/2 aborts, header formatters).
 */

export const MESH_GATEWAY = 'mesh';

/** The redirect codes Envoy can send (Istio drops the route for any other 3xx). */
export const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;

const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*'];

/** Istio rejects direct response bodies of 1 MiB and more. */
const MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024;

/** Whether the VirtualService applies to sidecars (no gateways, or `mesh` among them). */
export function appliesToMesh(spec: VirtualServiceSpec): boolean {
  return spec.gateways === undefined || spec.gateways.length === 0 || spec.gateways.includes(MESH_GATEWAY);
}

export function checkVirtualService(checker: ResourceChecker, meta: ResourceMeta, spec: VirtualServiceSpec): void {
  const mesh = appliesToMesh(spec);
  checkHosts(checker, spec, mesh);
  checkGateways(checker, spec, mesh);
  checkExportTo(checker, ['spec', 'exportTo'], meta.namespace ?? 'default', spec.exportTo);

  const http = spec.http ?? [];
  const tcp = spec.tcp ?? [];
  const tls = spec.tls ?? [];
  if (http.length + tcp.length + tls.length === 0) {
    checker.error(['spec'], 'a VirtualService needs http, tcp or tls routes', 'TRELLIS_CONFIG_MISSING_FIELD');
  }
  http.forEach((route, i) => checkHttpRoute(checker, ['spec', 'http', i], route));
  checkUnreachable(checker, ['spec', 'http'], http.map((r) => r.match));
  tcp.forEach((route, i) => checkTcpRoute(checker, ['spec', 'tcp', i], route));
  checkUnreachable(checker, ['spec', 'tcp'], tcp.map((r) => r.match));
  tls.forEach((route, i) => checkTlsRoute(checker, ['spec', 'tls', i], route, spec.hosts ?? []));
}

function checkHosts(checker: ResourceChecker, spec: VirtualServiceSpec, mesh: boolean): void {
  const hosts = spec.hosts ?? [];
  if (hosts.length === 0) {
    checker.error(
      spec.hosts === undefined ? ['spec'] : ['spec', 'hosts'],
      'a VirtualService needs hosts: the services whose traffic it routes (without hosts Istio reads it as a delegate, which Trellis does not support)',
      'TRELLIS_CONFIG_MISSING_FIELD',
    );
    return;
  }
  let allValid = true;
  hosts.forEach((host, i) => {
    const path = ['spec', 'hosts', i];
    if (host === '*') {
      if (mesh) {
        checker.error(path, 'the host "*" is not allowed for VirtualServices that apply to sidecars (the mesh gateway): name the services');
        allValid = false;
      }
      return;
    }
    if (parseIp(host) !== undefined) return; // Istio allows IP addresses
    if (!checkHost(checker, path, host, 'host')) allValid = false;
  });
  if (!allValid) return;
  for (let i = 0; i < hosts.length; i++) {
    for (let j = i + 1; j < hosts.length; j++) {
      const a = hosts[i] as string;
      const b = hosts[j] as string;
      if (hostCovers(a, b) || hostCovers(b, a)) {
        checker.error(['spec', 'hosts', j], a === b ? `host "${b}" is listed twice` : `hosts "${a}" and "${b}" overlap: list each host once`);
      }
    }
  }
}

function checkGateways(checker: ResourceChecker, spec: VirtualServiceSpec, mesh: boolean): void {
  const gateways = spec.gateways ?? [];
  gateways.forEach((gateway, i) => checkGatewayName(checker, ['spec', 'gateways', i], gateway));
  const others = gateways.filter((g) => g !== MESH_GATEWAY);
  if (others.length === 0) return;
  const list = others.map((g) => `"${g}"`).join(', ');
  if (mesh) {
    checker.warn(['spec', 'gateways'], `Trellis runs no gateways: the binding to ${list} is ignored; the routes apply to sidecars because "mesh" is listed`, 'TRELLIS_CONFIG_IGNORED');
  } else {
    checker.warn(
      ['spec', 'gateways'],
      `this VirtualService is bound only to ${list}, and Trellis runs no gateways: it has no effect for sidecars (add "mesh" to gateways, or remove gateways, to route sidecar traffic)`,
      'TRELLIS_CONFIG_IGNORED',
    );
  }
}

function checkGatewayName(checker: ResourceChecker, path: FieldPath, name: string): void {
  if (name === MESH_GATEWAY) return;
  const parts = name.split('/');
  if (parts.length > 2 || parts.some((p) => !isDns1123Label(p))) {
    checker.error(path, `gateway "${name}": use "mesh", "<namespace>/<name>" or "<name>" (DNS labels)`);
  }
}

// ---- HTTP routes

function checkHttpRoute(checker: ResourceChecker, path: FieldPath, route: HttpRoute): void {
  if (route.delegate !== undefined) {
    // An error, not a warning: the route would still match requests and have nowhere to send them.
    checker.error(
      [...path, 'delegate'],
      'delegation to another VirtualService is not supported: move the delegate\'s routes into this VirtualService',
      'TRELLIS_CONFIG_UNSUPPORTED',
      { atKey: true },
    );
  } else {
    checkRouteAction(checker, path, route);
  }
  route.match?.forEach((match, i) => checkHttpMatch(checker, [...path, 'match', i], match));
  checkHeaders(checker, [...path, 'headers'], route.headers);
  checkAuthorityRewrite(checker, path, route);
  if (route.corsPolicy !== undefined) checkCors(checker, [...path, 'corsPolicy'], route.corsPolicy);
  if (route.fault !== undefined) checkFault(checker, [...path, 'fault'], route.fault);
  checkMirrors(checker, path, route);
  if (route.redirect !== undefined) checkRedirect(checker, [...path, 'redirect'], route.redirect);
  if (route.directResponse !== undefined) checkDirectResponse(checker, [...path, 'directResponse'], route.directResponse);
  if (route.retries !== undefined) checkRetries(checker, [...path, 'retries'], route.retries);
  if (route.rewrite !== undefined) checkRewrite(checker, [...path, 'rewrite'], route.rewrite);
  checkDuration(checker, [...path, 'timeout'], route.timeout);
  route.route?.forEach((destination, i) => {
    checkDestination(checker, [...path, 'route', i, 'destination'], destination.destination);
    checkHeaders(checker, [...path, 'route', i, 'headers'], destination.headers);
  });
  checkWeights(checker, [...path, 'route'], route.route ?? []);
}

/** Exactly one of route, redirect and directResponse; fault and rewrite only with route. */
function checkRouteAction(checker: ResourceChecker, path: FieldPath, route: HttpRoute): void {
  const actions = [
    route.route !== undefined && route.route.length > 0 ? 'route' : undefined,
    route.redirect !== undefined ? 'redirect' : undefined,
    route.directResponse !== undefined ? 'directResponse' : undefined,
  ].filter((a): a is string => a !== undefined);
  if (actions.length === 0) {
    checker.error(route.route !== undefined ? [...path, 'route'] : path, 'each http route needs one of route (destinations), redirect or directResponse', 'TRELLIS_CONFIG_MISSING_FIELD');
    return;
  }
  if (actions.length > 1) {
    checker.error(path, `an http route has exactly one of route, redirect and directResponse, not ${actions.join(' and ')}`);
    return;
  }
  const action = actions[0];
  if (action !== 'route') {
    if (route.fault !== undefined) checker.error([...path, 'fault'], `fault injection needs route destinations: it cannot be combined with ${action}`);
    if (route.rewrite !== undefined) checker.error([...path, 'rewrite'], `rewrite needs route destinations: it cannot be combined with ${action}`);
  }
}

function checkHttpMatch(checker: ResourceChecker, path: FieldPath, match: HttpMatchRequest): void {
  if (match.uri !== undefined) checkStringMatch(checker, [...path, 'uri'], match.uri, { empty: 'error', emptyPrefix: true, starRegex: false });
  for (const field of ['scheme', 'method', 'authority'] as const) {
    const value = match[field];
    if (value !== undefined) checkStringMatch(checker, [...path, field], value, { empty: 'error', emptyPrefix: false, starRegex: false });
  }
  for (const field of ['headers', 'withoutHeaders'] as const) {
    for (const [name, value] of Object.entries(match[field] ?? {})) {
      checkMatchHeaderName(checker, [...path, field, name], name);
      checkStringMatch(checker, [...path, field, name], value, { empty: 'presence', emptyPrefix: false, starRegex: field === 'withoutHeaders' });
    }
  }
  for (const [name, value] of Object.entries(match.queryParams ?? {})) {
    if (name === '') checker.error([...path, 'queryParams', name], 'query parameter name cannot be empty', 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
    checkStringMatch(checker, [...path, 'queryParams', name], value, { empty: 'presence', emptyPrefix: false, starRegex: false });
  }
  checkPortNumber(checker, [...path, 'port'], match.port);
  checkLabelMap(checker, [...path, 'sourceLabels'], match.sourceLabels);
  checkSourceNamespace(checker, [...path, 'sourceNamespace'], match.sourceNamespace);
  checkMatchGateways(checker, path, match.gateways);
  if (match.statPrefix !== undefined) checker.warn([...path, 'statPrefix'], 'statPrefix is an Envoy statistics setting: Trellis ignores it', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
}

function checkSourceNamespace(checker: ResourceChecker, path: FieldPath, namespace: string | undefined): void {
  if (namespace !== undefined && !isDns1123Label(namespace)) checker.error(path, `sourceNamespace "${namespace}" is not a valid namespace name`);
}

function checkMatchGateways(checker: ResourceChecker, path: FieldPath, gateways: readonly string[] | undefined): void {
  if (gateways === undefined) return;
  gateways.forEach((g, i) => checkGatewayName(checker, [...path, 'gateways', i], g));
  if (!gateways.includes(MESH_GATEWAY)) {
    checker.warn([...path, 'gateways'], 'this match applies only to gateways, which Trellis does not run: it never matches sidecar traffic (add "mesh" to match it)', 'TRELLIS_CONFIG_IGNORED');
  }
}

/** Istio: the authority may be rewritten in one place only (rewrite.authority or a host header). */
function checkAuthorityRewrite(checker: ResourceChecker, path: FieldPath, route: HttpRoute): void {
  const places: FieldPath[] = [];
  if (route.rewrite?.authority !== undefined && route.rewrite.authority !== '') places.push([...path, 'rewrite', 'authority']);
  for (const op of ['set', 'add'] as const) {
    for (const name of Object.keys(route.headers?.request?.[op] ?? {})) {
      const lower = name.toLowerCase();
      if (lower === 'host' || lower === ':authority') places.push([...path, 'headers', 'request', op, name]);
    }
  }
  if (places.length > 1) {
    checker.error(places[1] ?? path, 'the authority is rewritten more than once (rewrite.authority and a host/:authority header): keep one');
  }
}

/**
 * Weights: non-negative integers. One destination gets all traffic (its weight may be absent or
 * 100); several must add up to 100 — Istio normalizes other sums, which hides mistakes.
 */
function checkWeights(checker: ResourceChecker, path: FieldPath, destinations: readonly { weight?: number | undefined }[]): void {
  let valid = true;
  destinations.forEach((d, i) => {
    if (d.weight !== undefined && (!Number.isInteger(d.weight) || d.weight < 0)) {
      checker.error([...path, i, 'weight'], `weight ${d.weight} must be a non-negative integer`);
      valid = false;
    }
  });
  if (!valid || destinations.length === 0) return;
  if (destinations.length === 1) {
    const weight = destinations[0]?.weight;
    if (weight !== undefined && weight !== 100) {
      checker.error([...path, 0, 'weight'], `a single destination receives all traffic: remove weight ${weight} or set it to 100`);
    }
    return;
  }
  const total = destinations.reduce((sum, d) => sum + (d.weight ?? 0), 0);
  if (total !== 100) {
    const weights = destinations.map((d) => (d.weight === undefined ? 'no weight' : String(d.weight))).join(' + ');
    checker.error(path, `destination weights add up to ${total} (${weights}), they must add up to 100 (a destination without weight counts as 0)`);
  }
}

function checkCors(checker: ResourceChecker, path: FieldPath, cors: CorsPolicy): void {
  if (cors.allowOrigin !== undefined) {
    if (cors.allowOrigins !== undefined) checker.error([...path, 'allowOrigin'], 'set allowOrigins only: allowOrigin is its deprecated form', 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
    else checker.warn([...path, 'allowOrigin'], 'allowOrigin is deprecated: use allowOrigins with exact matches', 'TRELLIS_CONFIG_DEPRECATED', { atKey: true });
    cors.allowOrigin.forEach((origin, i) => {
      if (origin === '') checker.error([...path, 'allowOrigin', i], 'empty origin');
    });
  }
  cors.allowOrigins?.forEach((origin, i) => {
    const at = [...path, 'allowOrigins', i];
    const value = origin.exact ?? origin.prefix ?? origin.regex;
    if (value === '' || (origin.exact === undefined && origin.prefix === undefined && origin.regex === undefined)) {
      checker.error(at, 'an allowed origin needs a non-empty exact, prefix or regex');
      return;
    }
    checkStringMatch(checker, at, origin, { empty: 'error', emptyPrefix: false, starRegex: false });
  });
  cors.allowMethods?.forEach((method, i) => {
    if (!CORS_METHODS.includes(method)) checker.error([...path, 'allowMethods', i], `"${method}" is not a supported HTTP method (${CORS_METHODS.join(', ')}; upper case)`);
  });
  for (const field of ['allowHeaders', 'exposeHeaders'] as const) {
    cors[field]?.forEach((name, i) => {
      if (name !== '*' && !isHeaderName(name)) checker.error([...path, field, i], name === '' ? 'header name cannot be empty' : `"${name}" is not a valid header name`);
    });
  }
  checkDuration(checker, [...path, 'maxAge'], cors.maxAge, { wholeSeconds: true });
}

function checkFault(checker: ResourceChecker, path: FieldPath, fault: HttpFaultInjection): void {
  if (fault.delay === undefined && fault.abort === undefined) {
    checker.error(path, 'fault injection needs a delay, an abort or both', 'TRELLIS_CONFIG_MISSING_FIELD');
  }
  const delay = fault.delay;
  if (delay !== undefined) {
    const delayPath = [...path, 'delay'];
    checkPercentage(checker, [...delayPath, 'percentage', 'value'], delay.percentage?.value);
    if (delay.percent !== undefined) {
      if (delay.percentage !== undefined) checker.error([...delayPath, 'percent'], 'set percentage only: percent is its deprecated integer form', 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
      else checker.warn([...delayPath, 'percent'], 'percent is deprecated: use percentage.value', 'TRELLIS_CONFIG_DEPRECATED', { atKey: true });
      if (!Number.isInteger(delay.percent) || delay.percent < 0 || delay.percent > 100) checker.error([...delayPath, 'percent'], `percent ${delay.percent} must be an integer from 0 to 100`);
    }
    if (delay.exponentialDelay !== undefined) {
      checker.error([...delayPath, 'exponentialDelay'], 'exponentialDelay is not supported (Istio rejects it too): use fixedDelay', 'TRELLIS_CONFIG_UNSUPPORTED', { atKey: true });
    } else if (delay.fixedDelay === undefined) {
      checker.error(delayPath, 'a delay needs fixedDelay', 'TRELLIS_CONFIG_MISSING_FIELD');
    }
    checkDuration(checker, [...delayPath, 'fixedDelay'], delay.fixedDelay);
    if (delay.percentage === undefined && delay.percent === undefined) {
      checker.warn(delayPath, 'a delay without percentage delays no request (Istio): set percentage.value (100 for every request)', 'TRELLIS_CONFIG_IGNORED');
    }
  }
  const abort = fault.abort;
  if (abort !== undefined) {
    const abortPath = [...path, 'abort'];
    checkPercentage(checker, [...abortPath, 'percentage', 'value'], abort.percentage?.value);
    if (abort.percentage === undefined) {
      checker.warn(abortPath, 'an abort without percentage aborts no request (Istio): set percentage.value (100 for every request)', 'TRELLIS_CONFIG_IGNORED');
    }
    const kinds = (['httpStatus', 'grpcStatus', 'http2Error'] as const).filter((k) => abort[k] !== undefined);
    if (kinds.length === 0) checker.error(abortPath, 'an abort needs httpStatus or grpcStatus', 'TRELLIS_CONFIG_MISSING_FIELD');
    else if (kinds.length > 1) checker.error(abortPath, `set one of httpStatus, grpcStatus and http2Error, not ${kinds.join(' and ')}`);
    if (abort.httpStatus !== undefined) checkHttpStatus(checker, [...abortPath, 'httpStatus'], abort.httpStatus);
    if (abort.grpcStatus !== undefined && !Object.hasOwn(GRPC_STATUS_CODES, abort.grpcStatus)) {
      checker.error([...abortPath, 'grpcStatus'], `unknown gRPC status "${abort.grpcStatus}": use a code name such as UNAVAILABLE or NOT_FOUND (${Object.keys(GRPC_STATUS_CODES).join(', ')})`);
    }
    if (abort.http2Error !== undefined) {
      checker.error([...abortPath, 'http2Error'], 'HTTP/2 error aborts are not supported (Istio rejects them too): use httpStatus or grpcStatus', 'TRELLIS_CONFIG_UNSUPPORTED', { atKey: true });
    }
  }
}

/** Istio's range for aborts and direct responses. */
function checkHttpStatus(checker: ResourceChecker, path: FieldPath, status: number): void {
  if (!Number.isInteger(status) || status < 200 || status > 599) checker.error(path, `HTTP status ${status} must be an integer from 200 to 599`);
}

function checkMirrors(checker: ResourceChecker, path: FieldPath, route: HttpRoute): void {
  if (route.mirror !== undefined && route.mirrors !== undefined) {
    checker.error([...path, 'mirrors'], 'set mirror or mirrors, not both', 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
  }
  if (route.mirror !== undefined) checkDestination(checker, [...path, 'mirror'], route.mirror);
  checkPercentage(checker, [...path, 'mirrorPercentage', 'value'], route.mirrorPercentage?.value);
  if (route.mirrorPercent !== undefined) {
    checker.warn([...path, 'mirrorPercent'], 'mirrorPercent is deprecated: use mirrorPercentage', 'TRELLIS_CONFIG_DEPRECATED', { atKey: true });
    if (!Number.isInteger(route.mirrorPercent) || route.mirrorPercent < 0 || route.mirrorPercent > 100) {
      checker.error([...path, 'mirrorPercent'], `mirrorPercent ${route.mirrorPercent} must be an integer from 0 to 100`);
    }
  }
  if (route.mirror === undefined) {
    for (const field of ['mirrorPercentage', 'mirrorPercent'] as const) {
      if (route[field] !== undefined) {
        checker.warn([...path, field], `${field} applies to mirror only${route.mirrors !== undefined ? ' (each entry of mirrors has its own percentage)' : ''}: it is ignored here`, 'TRELLIS_CONFIG_IGNORED', { atKey: true });
      }
    }
  }
  route.mirrors?.forEach((mirror, i) => {
    checkDestination(checker, [...path, 'mirrors', i, 'destination'], mirror.destination);
    checkPercentage(checker, [...path, 'mirrors', i, 'percentage', 'value'], mirror.percentage?.value);
  });
}

function checkRedirect(checker: ResourceChecker, path: FieldPath, redirect: HttpRedirect): void {
  if (redirect.uri === undefined && redirect.authority === undefined && redirect.port === undefined && redirect.derivePort === undefined && redirect.scheme === undefined) {
    checker.error(path, 'a redirect needs uri, authority, scheme, port or derivePort', 'TRELLIS_CONFIG_MISSING_FIELD');
  }
  if (redirect.port !== undefined && redirect.derivePort !== undefined) checker.error(path, 'set port or derivePort, not both');
  checkPortNumber(checker, [...path, 'port'], redirect.port);
  if (redirect.scheme !== undefined && redirect.scheme !== 'http' && redirect.scheme !== 'https') {
    checker.error([...path, 'scheme'], `redirect scheme "${redirect.scheme}" must be "http" or "https"`);
  }
  if (redirect.redirectCode !== undefined && !(REDIRECT_CODES as readonly number[]).includes(redirect.redirectCode)) {
    checker.error([...path, 'redirectCode'], `redirect code ${redirect.redirectCode} is not supported: use ${REDIRECT_CODES.join(', ')} (default 301)`);
  }
  if (redirect.uri === '') checker.error([...path, 'uri'], 'redirect uri cannot be empty');
  if (redirect.authority === '') checker.error([...path, 'authority'], 'redirect authority cannot be empty');
}

function checkDirectResponse(checker: ResourceChecker, path: FieldPath, response: HttpDirectResponse): void {
  checkHttpStatus(checker, [...path, 'status'], response.status);
  const body = response.body;
  if (body === undefined) return;
  if (body.string !== undefined && body.bytes !== undefined) {
    checker.error([...path, 'body'], 'set body.string or body.bytes, not both');
    return;
  }
  if (body.string === undefined && body.bytes === undefined) {
    checker.error([...path, 'body'], 'an empty body: set string or bytes, or remove body', 'TRELLIS_CONFIG_MISSING_FIELD');
    return;
  }
  let size = 0;
  if (body.bytes !== undefined) {
    const text = body.bytes.replace(/\s+/g, '');
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
      checker.error([...path, 'body', 'bytes'], 'body.bytes must be standard base64 (A–Z, a–z, 0–9, "+", "/", "=" padding)');
      return;
    }
    size = Buffer.from(text, 'base64').length;
  } else {
    size = Buffer.byteLength(body.string ?? '', 'utf8');
  }
  if (size > MAX_DIRECT_RESPONSE_BYTES) checker.error([...path, 'body'], `the body is ${size} bytes: direct responses must be smaller than 1 MiB`);
}

function checkRetries(checker: ResourceChecker, path: FieldPath, retries: HttpRetry): void {
  const attempts = retries.attempts ?? 0;
  if (!Number.isInteger(attempts) || attempts < 0) {
    checker.error([...path, 'attempts'], `attempts ${attempts} must be a non-negative integer (the number of retries after the first try)`);
  } else if (attempts === 0) {
    const configured = (['perTryTimeout', 'retryOn', 'retryRemoteLocalities'] as const).filter((f) => retries[f] !== undefined);
    if (configured.length > 0) {
      checker.error(
        retries.attempts === undefined ? path : [...path, 'attempts'],
        `${configured.join(', ')} set while attempts is ${retries.attempts === undefined ? 'unset (0)' : '0'}, which disables retries: set attempts`,
      );
    }
  }
  checkDuration(checker, [...path, 'perTryTimeout'], retries.perTryTimeout);
  checkDuration(checker, [...path, 'backoff'], retries.backoff);
  if (retries.retryOn !== undefined) {
    const known: readonly string[] = [...HTTP_CONDITIONS, ...Object.keys(GRPC_CONDITIONS)];
    for (const item of retries.retryOn.split(',')) {
      if (known.includes(item) || isRetryStatusCode(item)) continue;
      const hint = item.trim() !== item ? ' (no spaces around ",")' : item === '' ? ' (empty item: check the commas)' : '';
      checker.error([...path, 'retryOn'], `"${item}" is not a retry condition${hint}: use ${known.join(', ')} or an HTTP status code such as 503`);
    }
  }
  if (retries.retryRemoteLocalities !== undefined) {
    checker.warn([...path, 'retryRemoteLocalities'], 'Trellis has no localities: retryRemoteLocalities is ignored', 'TRELLIS_CONFIG_IGNORED', { atKey: true });
  }
}

function checkRewrite(checker: ResourceChecker, path: FieldPath, rewrite: HttpRewrite): void {
  if (rewrite.uri !== undefined && rewrite.uriRegexRewrite !== undefined) {
    checker.error(path, 'set rewrite.uri or rewrite.uriRegexRewrite, not both');
  }
  if (rewrite.uri === undefined && rewrite.uriRegexRewrite === undefined && rewrite.authority === undefined) {
    checker.error(path, 'a rewrite needs uri, uriRegexRewrite or authority', 'TRELLIS_CONFIG_MISSING_FIELD');
  }
  if (rewrite.authority === '') checker.error([...path, 'authority'], 'rewrite authority cannot be empty');
  const regex = rewrite.uriRegexRewrite;
  if (regex !== undefined) {
    if (regex.match === '') checker.error([...path, 'uriRegexRewrite', 'match'], 'uriRegexRewrite needs a match expression', 'TRELLIS_CONFIG_MISSING_FIELD');
    else checkRegex(checker, [...path, 'uriRegexRewrite', 'match'], regex.match);
    if (regex.rewrite === '') checker.error([...path, 'uriRegexRewrite', 'rewrite'], 'uriRegexRewrite needs a rewrite value', 'TRELLIS_CONFIG_MISSING_FIELD');
  }
}

/** Istio's unreachable-rule warning: a route that matches everything hides the routes after it. */
function checkUnreachable(checker: ResourceChecker, path: FieldPath, matches: readonly (readonly unknown[] | undefined)[]): void {
  const catchAll = matches.findIndex((m) => m === undefined || m.length === 0);
  if (catchAll === -1 || catchAll === matches.length - 1) return;
  checker.warn(
    [...path, catchAll + 1],
    `route ${catchAll} matches every request, so this route and the ones after it are never used: move the catch-all route last`,
    'TRELLIS_CONFIG_IGNORED',
  );
}

// ---- TCP and TLS routes

function checkL4Match(checker: ResourceChecker, path: FieldPath, match: L4Match | TlsMatch): void {
  match.destinationSubnets?.forEach((subnet, i) => {
    const parsed = parseIpBlock(subnet);
    if (!parsed.ok) checker.error([...path, 'destinationSubnets', i], `bad subnet "${subnet}": ${parsed.reason}`);
  });
  checkPortNumber(checker, [...path, 'port'], match.port);
  checkLabelMap(checker, [...path, 'sourceLabels'], match.sourceLabels);
  checkSourceNamespace(checker, [...path, 'sourceNamespace'], match.sourceNamespace);
  checkMatchGateways(checker, path, match.gateways);
  if ('sourceSubnet' in match && match.sourceSubnet !== undefined) {
    checker.error([...path, 'sourceSubnet'], 'sourceSubnet is not supported: a route that ignored it would match every source', 'TRELLIS_CONFIG_UNSUPPORTED', { atKey: true });
  }
}

function checkL4Destinations(checker: ResourceChecker, path: FieldPath, route: readonly RouteDestination[] | undefined, kind: string): void {
  if (route === undefined || route.length === 0) {
    checker.error(route === undefined ? path : [...path, 'route'], `each ${kind} route needs route destinations`, 'TRELLIS_CONFIG_MISSING_FIELD');
    return;
  }
  route.forEach((d, i) => checkDestination(checker, [...path, 'route', i, 'destination'], d.destination));
  checkWeights(checker, [...path, 'route'], route);
}

function checkTcpRoute(checker: ResourceChecker, path: FieldPath, route: TcpRoute): void {
  route.match?.forEach((match, i) => checkL4Match(checker, [...path, 'match', i], match));
  checkL4Destinations(checker, path, route.route, 'tcp');
}

function checkTlsRoute(checker: ResourceChecker, path: FieldPath, route: TlsRoute, hosts: readonly string[]): void {
  if (route.match.length === 0) checker.error([...path, 'match'], 'a tls route needs at least one match with sniHosts', 'TRELLIS_CONFIG_MISSING_FIELD');
  route.match.forEach((match, i) => {
    const matchPath = [...path, 'match', i];
    checkL4Match(checker, matchPath, match);
    if (match.sniHosts.length === 0) checker.error([...matchPath, 'sniHosts'], 'a tls match needs at least one SNI host', 'TRELLIS_CONFIG_MISSING_FIELD');
    match.sniHosts.forEach((sni, j) => {
      const sniPath = [...matchPath, 'sniHosts', j];
      if (parseIp(sni) !== undefined) {
        checker.warn(sniPath, `SNI "${sni}" is an IP address: clients do not send IP addresses as SNI, so it never matches`, 'TRELLIS_CONFIG_IGNORED');
        return;
      }
      if (sni !== '*' && !checkHost(checker, sniPath, sni, 'SNI host')) return;
      if (!hosts.some((host) => hostCovers(host, sni))) {
        checker.error(sniPath, `SNI host "${sni}" is not one of the VirtualService's hosts (or covered by a wildcard among them): ${hosts.join(', ')}`);
      }
    });
  });
  checkL4Destinations(checker, path, route.route, 'tls');
}
