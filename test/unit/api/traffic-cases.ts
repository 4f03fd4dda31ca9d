/**
 * The traffic validation tables (used by traffic-validation.test.ts): each case is a resource with
 * one mistake and the exact diagnostics it must produce — `line:column path code` — plus a phrase
 * the first message must contain. Line 5 is the first spec line of every template.
 */

export interface Case {
  readonly name: string;
  readonly yaml: string;
  /** `line:column path code` of every diagnostic of `severity`. */
  readonly expect: readonly string[];
  readonly says: string;
  readonly severity?: 'error' | 'warning';
}

const doc = (apiVersion: string, kind: string) => (spec: string, metadata = 'metadata: {name: r, namespace: shop}'): string =>
  `apiVersion: ${apiVersion}\nkind: ${kind}\n${metadata}\nspec:\n${spec}\n`;

export const VS = doc('networking.istio.io/v1', 'VirtualService');
export const DR = doc('networking.istio.io/v1', 'DestinationRule');
export const SC = doc('networking.istio.io/v1', 'Sidecar');
export const RL = doc('trellis.dev/v1alpha1', 'RateLimit');

/** A VirtualService for `reviews` whose first http route gets `route` (indented under `  - `). */
const HTTP = (route: string): string => VS(`  hosts: [reviews]\n  http:\n  - ${route}`);
/** The same, with a destination already in place; `extra` adds fields to the route (lines 9+). */
const ROUTED = (extra: string): string => HTTP(`route:\n    - destination: {host: reviews}\n${extra}`);

export const VIRTUAL_SERVICE_CASES: readonly Case[] = [
  { name: 'no hosts', yaml: VS('  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['4:1 spec TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs hosts' },
  { name: 'empty hosts', yaml: VS('  hosts: []\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['5:10 spec.hosts TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs hosts' },
  { name: 'host "*" for the mesh', yaml: VS('  hosts: ["*"]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['5:11 spec.hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'not allowed for VirtualServices that apply to sidecars' },
  { name: 'host with a port', yaml: VS('  hosts: ["reviews.shop.svc.cluster.local:9080"]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['5:11 spec.hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'a host has no port' },
  { name: 'IP address with a port', yaml: VS('  hosts: ["10.0.0.1:80"]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['5:11 spec.hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'not a valid host name' },
  { name: 'partial wildcard host', yaml: VS('  hosts: ["*reviews.example.com"]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['5:11 spec.hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'partial wildcard' },
  { name: 'wildcard in the middle', yaml: VS('  hosts: ["a.*.example.com"]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['5:11 spec.hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'only allowed as the first label' },
  { name: 'upper-case host', yaml: VS('  hosts: [Reviews]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['5:11 spec.hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'not a DNS label' },
  { name: 'overlapping hosts', yaml: VS('  hosts: ["*.example.com", "a.example.com"]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['5:28 spec.hosts[1] TRELLIS_CONFIG_INVALID_VALUE'], says: 'overlap' },
  { name: 'no routes at all', yaml: VS('  hosts: [reviews]'), expect: ['4:1 spec TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs http, tcp or tls' },
  { name: 'http route without action', yaml: HTTP('match:\n    - uri: {prefix: /a}'), expect: ['7:5 spec.http[0] TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs one of route' },
  { name: 'route and redirect', yaml: ROUTED('    redirect: {uri: /b}'), expect: ['7:5 spec.http[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'exactly one of route, redirect and directResponse' },
  { name: 'fault with redirect', yaml: HTTP('redirect: {uri: /b}\n    fault: {abort: {httpStatus: 500}}'), expect: ['8:12 spec.http[0].fault TRELLIS_CONFIG_INVALID_VALUE'], says: 'cannot be combined with redirect' },
  { name: 'rewrite with directResponse', yaml: HTTP('directResponse: {status: 200}\n    rewrite: {uri: /b}'), expect: ['8:14 spec.http[0].rewrite TRELLIS_CONFIG_INVALID_VALUE'], says: 'cannot be combined with directResponse' },
  { name: 'weights add up to 90', yaml: HTTP('route:\n    - destination: {host: reviews}\n      weight: 80\n    - destination: {host: ratings}\n      weight: 10'), expect: ['7:5 spec.http[0].route TRELLIS_CONFIG_INVALID_VALUE'], says: 'add up to 90 (80 + 10)' },
  { name: 'weights with one missing', yaml: HTTP('route:\n    - destination: {host: reviews}\n      weight: 80\n    - destination: {host: ratings}'), expect: ['7:5 spec.http[0].route TRELLIS_CONFIG_INVALID_VALUE'], says: 'add up to 80 (80 + no weight)' },
  { name: 'negative weight', yaml: HTTP('route:\n    - destination: {host: reviews}\n      weight: 110\n    - destination: {host: ratings}\n      weight: -10'), expect: ['11:15 spec.http[0].route[1].weight TRELLIS_CONFIG_INVALID_VALUE'], says: 'non-negative integer' },
  { name: 'fractional weight', yaml: HTTP('route:\n    - destination: {host: reviews}\n      weight: 50.5\n    - destination: {host: ratings}\n      weight: 49.5'), expect: ['9:15 spec.http[0].route[0].weight TRELLIS_CONFIG_INVALID_VALUE', '11:15 spec.http[0].route[1].weight TRELLIS_CONFIG_INVALID_VALUE'], says: 'non-negative integer' },
  { name: 'single destination with weight 50', yaml: HTTP('route:\n    - destination: {host: reviews}\n      weight: 50'), expect: ['9:15 spec.http[0].route[0].weight TRELLIS_CONFIG_INVALID_VALUE'], says: 'single destination receives all traffic' },
  { name: 'destination host "*"', yaml: HTTP('route:\n    - destination: {host: "*"}'), expect: ['8:27 spec.http[0].route[0].destination.host TRELLIS_CONFIG_INVALID_VALUE'], says: 'cannot be "*"' },
  { name: 'destination host invalid', yaml: HTTP('route:\n    - destination: {host: "reviews_v1"}'), expect: ['8:27 spec.http[0].route[0].destination.host TRELLIS_CONFIG_INVALID_VALUE'], says: 'not a valid host name' },
  { name: 'destination port 0', yaml: HTTP('route:\n    - destination: {host: reviews, port: {number: 0}}'), expect: ['8:51 spec.http[0].route[0].destination.port.number TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 1 to 65535' },
  { name: 'destination port 70000', yaml: HTTP('route:\n    - destination: {host: reviews, port: {number: 70000}}'), expect: ['8:51 spec.http[0].route[0].destination.port.number TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 1 to 65535' },
  { name: 'bad subset name', yaml: HTTP('route:\n    - destination: {host: reviews, subset: V1}'), expect: ['8:44 spec.http[0].route[0].destination.subset TRELLIS_CONFIG_INVALID_VALUE'], says: 'not a DNS label' },
  { name: 'string match with two kinds', yaml: ROUTED('    match:\n    - uri: {exact: /a, prefix: /b}'), expect: ['10:12 spec.http[0].match[0].uri TRELLIS_CONFIG_INVALID_VALUE'], says: 'exactly one of exact, prefix and regex' },
  { name: 'empty uri match', yaml: ROUTED('    match:\n    - uri: {}'), expect: ['10:12 spec.http[0].match[0].uri TRELLIS_CONFIG_MISSING_FIELD'], says: 'empty match' },
  { name: 'empty header prefix', yaml: ROUTED('    match:\n    - headers:\n        end-user: {prefix: ""}'), expect: ['11:28 spec.http[0].match[0].headers["end-user"].prefix TRELLIS_CONFIG_INVALID_VALUE'], says: 'prefix must not be empty' },
  { name: 'regex that does not compile', yaml: ROUTED('    match:\n    - uri: {regex: "/a(b"}'), expect: ['10:20 spec.http[0].match[0].uri.regex TRELLIS_CONFIG_INVALID_VALUE'], says: 'Istio uses RE2 syntax' },
  { name: 'regex with lookbehind (not RE2)', yaml: ROUTED('    match:\n    - headers:\n        x-user: {regex: "(?<=a)b"}'), expect: ['11:25 spec.http[0].match[0].headers["x-user"].regex TRELLIS_CONFIG_INVALID_VALUE'], says: 'lookbehind' },
  { name: 'regex with lookahead (not RE2)', yaml: ROUTED('    match:\n    - uri: {regex: "/a(?!b).*"}'), expect: ['10:20 spec.http[0].match[0].uri.regex TRELLIS_CONFIG_INVALID_VALUE'], says: 'lookahead' },
  { name: 'regex with a backreference (not RE2)', yaml: ROUTED('    match:\n    - authority: {regex: "(a)\\\\1"}'), expect: ['10:26 spec.http[0].match[0].authority.regex TRELLIS_CONFIG_INVALID_VALUE'], says: 'backreferences' },
  { name: 'regex "*" on headers', yaml: ROUTED('    match:\n    - headers:\n        x-user: {regex: "*"}'), expect: ['11:25 spec.http[0].match[0].headers["x-user"].regex TRELLIS_CONFIG_INVALID_VALUE'], says: 'RE2' },
  { name: 'invalid header name in a match', yaml: ROUTED('    match:\n    - headers:\n        "end user": {exact: jason}'), expect: ['11:9 spec.http[0].match[0].headers["end user"] TRELLIS_CONFIG_INVALID_VALUE'], says: 'not a valid header name' },
  { name: 'JWT claim routing (gateways only)', yaml: ROUTED('    match:\n    - headers:\n        "@request.auth.claims.sub": {exact: jason}'), expect: ['11:9 spec.http[0].match[0].headers["@request.auth.claims.sub"] TRELLIS_CONFIG_UNSUPPORTED'], says: 'only supported on gateways' },
  { name: 'match port out of range', yaml: ROUTED('    match:\n    - port: 0'), expect: ['10:13 spec.http[0].match[0].port TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 1 to 65535' },
  { name: 'bad sourceNamespace', yaml: ROUTED('    match:\n    - sourceNamespace: Shop'), expect: ['10:24 spec.http[0].match[0].sourceNamespace TRELLIS_CONFIG_INVALID_VALUE'], says: 'not a valid namespace' },
  { name: 'rewrite uri and uriRegexRewrite', yaml: ROUTED('    rewrite:\n      uri: /b\n      uriRegexRewrite: {match: "^/a", rewrite: /b}'), expect: ['9:5 spec.http[0].rewrite TRELLIS_CONFIG_INVALID_VALUE'], says: 'not both' },
  { name: 'uriRegexRewrite regex does not compile', yaml: ROUTED('    rewrite:\n      uriRegexRewrite: {match: "^/a[", rewrite: /b}'), expect: ['10:32 spec.http[0].rewrite.uriRegexRewrite.match TRELLIS_CONFIG_INVALID_VALUE'], says: 'invalid regular expression' },
  { name: 'empty rewrite', yaml: ROUTED('    rewrite: {}'), expect: ['9:14 spec.http[0].rewrite TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs uri, uriRegexRewrite or authority' },
  { name: 'authority rewritten twice', yaml: ROUTED('    rewrite: {authority: a.example.com}\n    headers:\n      request:\n        set: {host: b.example.com}'), expect: ['12:21 spec.http[0].headers.request.set.host TRELLIS_CONFIG_INVALID_VALUE'], says: 'more than once' },
  { name: 'redirect code 304', yaml: HTTP('redirect: {uri: /b, redirectCode: 304}'), expect: ['7:39 spec.http[0].redirect.redirectCode TRELLIS_CONFIG_INVALID_VALUE'], says: 'use 301, 302, 303, 307, 308' },
  { name: 'redirect port and derivePort', yaml: HTTP('redirect: {port: 8080, derivePort: FROM_REQUEST_PORT}'), expect: ['7:15 spec.http[0].redirect TRELLIS_CONFIG_INVALID_VALUE'], says: 'port or derivePort, not both' },
  { name: 'redirect without target', yaml: HTTP('redirect: {redirectCode: 302}'), expect: ['7:15 spec.http[0].redirect TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs uri, authority, scheme, port or derivePort' },
  { name: 'redirect scheme ftp', yaml: HTTP('redirect: {scheme: ftp}'), expect: ['7:24 spec.http[0].redirect.scheme TRELLIS_CONFIG_INVALID_VALUE'], says: '"http" or "https"' },
  { name: 'direct response status 600', yaml: HTTP('directResponse: {status: 600}'), expect: ['7:30 spec.http[0].directResponse.status TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 200 to 599' },
  { name: 'direct response status 101', yaml: HTTP('directResponse: {status: 101}'), expect: ['7:30 spec.http[0].directResponse.status TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 200 to 599' },
  { name: 'direct response body string and bytes', yaml: HTTP('directResponse:\n      status: 503\n      body: {string: a, bytes: YQ==}'), expect: ['9:13 spec.http[0].directResponse.body TRELLIS_CONFIG_INVALID_VALUE'], says: 'not both' },
  { name: 'direct response bytes not base64', yaml: HTTP('directResponse:\n      status: 503\n      body: {bytes: "not base64!"}'), expect: ['9:21 spec.http[0].directResponse.body.bytes TRELLIS_CONFIG_INVALID_VALUE'], says: 'base64' },
  { name: 'bad timeout', yaml: ROUTED('    timeout: 10 seconds'), expect: ['9:14 spec.http[0].timeout TRELLIS_CONFIG_INVALID_VALUE'], says: 'invalid duration' },
  { name: 'negative timeout', yaml: ROUTED('    timeout: -1s'), expect: ['9:14 spec.http[0].timeout TRELLIS_CONFIG_INVALID_VALUE'], says: 'cannot be negative' },
  { name: 'timeout below 1ms', yaml: ROUTED('    timeout: 500us'), expect: ['9:14 spec.http[0].timeout TRELLIS_CONFIG_INVALID_VALUE'], says: 'at least 1ms' },
  { name: 'timeout 0s', yaml: ROUTED('    timeout: 0s'), expect: ['9:14 spec.http[0].timeout TRELLIS_CONFIG_INVALID_VALUE'], says: 'at least 1ms' },
  { name: 'timeout with sub-millisecond precision', yaml: ROUTED('    timeout: 1500us'), expect: ['9:14 spec.http[0].timeout TRELLIS_CONFIG_INVALID_VALUE'], says: 'millisecond precision' },
  { name: 'bad perTryTimeout', yaml: ROUTED('    retries: {attempts: 3, perTryTimeout: 2x}'), expect: ['9:43 spec.http[0].retries.perTryTimeout TRELLIS_CONFIG_INVALID_VALUE'], says: 'invalid duration' },
  { name: 'bad backoff', yaml: ROUTED('    retries: {attempts: 3, backoff: 0s}'), expect: ['9:37 spec.http[0].retries.backoff TRELLIS_CONFIG_INVALID_VALUE'], says: 'at least 1ms' },
  { name: 'negative attempts', yaml: ROUTED('    retries: {attempts: -1}'), expect: ['9:25 spec.http[0].retries.attempts TRELLIS_CONFIG_INVALID_VALUE'], says: 'non-negative integer' },
  { name: 'retry settings with attempts 0', yaml: ROUTED('    retries: {attempts: 0, retryOn: 5xx}'), expect: ['9:25 spec.http[0].retries.attempts TRELLIS_CONFIG_INVALID_VALUE'], says: 'disables retries' },
  { name: 'unknown retryOn condition', yaml: ROUTED('    retries: {attempts: 2, retryOn: "5xx,connect-failures"}'), expect: ['9:37 spec.http[0].retries.retryOn TRELLIS_CONFIG_INVALID_VALUE'], says: '"connect-failures" is not a retry condition' },
  { name: 'retryOn with spaces', yaml: ROUTED('    retries: {attempts: 2, retryOn: "5xx, reset"}'), expect: ['9:37 spec.http[0].retries.retryOn TRELLIS_CONFIG_INVALID_VALUE'], says: 'no spaces' },
  { name: 'retryOn status code out of range', yaml: ROUTED('    retries: {attempts: 2, retryOn: "5xx,700"}'), expect: ['9:37 spec.http[0].retries.retryOn TRELLIS_CONFIG_INVALID_VALUE'], says: '"700" is not a retry condition' },
  { name: 'fault without delay or abort', yaml: ROUTED('    fault: {}'), expect: ['9:12 spec.http[0].fault TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs a delay, an abort or both' },
  { name: 'delay without fixedDelay', yaml: ROUTED('    fault:\n      delay: {percentage: {value: 10}}'), expect: ['10:14 spec.http[0].fault.delay TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs fixedDelay' },
  { name: 'exponentialDelay', yaml: ROUTED('    fault:\n      delay: {exponentialDelay: 1s}'), expect: ['10:15 spec.http[0].fault.delay.exponentialDelay TRELLIS_CONFIG_UNSUPPORTED'], says: 'exponentialDelay is not supported' },
  { name: 'delay percentage above 100', yaml: ROUTED('    fault:\n      delay: {fixedDelay: 1s, percentage: {value: 101}}'), expect: ['10:51 spec.http[0].fault.delay.percentage.value TRELLIS_CONFIG_INVALID_VALUE'], says: 'between 0.0001 and 100' },
  { name: 'negative abort percentage', yaml: ROUTED('    fault:\n      abort: {httpStatus: 503, percentage: {value: -1}}'), expect: ['10:52 spec.http[0].fault.abort.percentage.value TRELLIS_CONFIG_INVALID_VALUE'], says: 'between 0.0001 and 100' },
  { name: 'abort without status', yaml: ROUTED('    fault:\n      abort: {percentage: {value: 10}}'), expect: ['10:14 spec.http[0].fault.abort TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs httpStatus or grpcStatus' },
  { name: 'abort with httpStatus and grpcStatus', yaml: ROUTED('    fault:\n      abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}'), expect: ['10:14 spec.http[0].fault.abort TRELLIS_CONFIG_INVALID_VALUE'], says: 'set one of httpStatus, grpcStatus and http2Error' },
  { name: 'abort httpStatus 700', yaml: ROUTED('    fault:\n      abort: {httpStatus: 700}'), expect: ['10:27 spec.http[0].fault.abort.httpStatus TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 200 to 599' },
  { name: 'abort unknown grpcStatus', yaml: ROUTED('    fault:\n      abort: {grpcStatus: "14"}'), expect: ['10:27 spec.http[0].fault.abort.grpcStatus TRELLIS_CONFIG_INVALID_VALUE'], says: 'unknown gRPC status "14"' },
  { name: 'abort http2Error', yaml: ROUTED('    fault:\n      abort: {http2Error: REFUSED_STREAM}'), expect: ['10:15 spec.http[0].fault.abort.http2Error TRELLIS_CONFIG_UNSUPPORTED'], says: 'HTTP/2 error aborts are not supported' },
  { name: 'mirror and mirrors', yaml: ROUTED('    mirror: {host: shadow}\n    mirrors:\n    - destination: {host: shadow}'), expect: ['10:5 spec.http[0].mirrors TRELLIS_CONFIG_INVALID_VALUE'], says: 'mirror or mirrors, not both' },
  { name: 'mirrorPercentage above 100', yaml: ROUTED('    mirror: {host: shadow}\n    mirrorPercentage: {value: 150}'), expect: ['10:31 spec.http[0].mirrorPercentage.value TRELLIS_CONFIG_INVALID_VALUE'], says: 'between 0.0001 and 100' },
  { name: 'mirrors percentage above 100', yaml: ROUTED('    mirrors:\n    - destination: {host: shadow}\n      percentage: {value: 100.5}'), expect: ['11:27 spec.http[0].mirrors[0].percentage.value TRELLIS_CONFIG_INVALID_VALUE'], says: 'between 0.0001 and 100' },
  { name: 'cors allowOrigin with allowOrigins', yaml: ROUTED('    corsPolicy:\n      allowOrigin: ["https://a.example"]\n      allowOrigins: [{exact: "https://a.example"}]'), expect: ['10:7 spec.http[0].corsPolicy.allowOrigin TRELLIS_CONFIG_INVALID_VALUE'], says: 'allowOrigin is its deprecated form' },
  { name: 'cors lower-case method', yaml: ROUTED('    corsPolicy:\n      allowMethods: [GET, post]'), expect: ['10:27 spec.http[0].corsPolicy.allowMethods[1] TRELLIS_CONFIG_INVALID_VALUE'], says: '"post" is not a supported HTTP method' },
  { name: 'cors maxAge with milliseconds', yaml: ROUTED('    corsPolicy:\n      maxAge: 1500ms'), expect: ['10:15 spec.http[0].corsPolicy.maxAge TRELLIS_CONFIG_INVALID_VALUE'], says: 'whole seconds' },
  { name: 'cors empty origin', yaml: ROUTED('    corsPolicy:\n      allowOrigins: [{prefix: ""}]'), expect: ['10:22 spec.http[0].corsPolicy.allowOrigins[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'non-empty exact, prefix or regex' },
  { name: 'set a pseudo-header', yaml: ROUTED('    headers:\n      request:\n        set: {":path": /x}'), expect: ['11:15 spec.http[0].headers.request.set[":path"] TRELLIS_CONFIG_INVALID_VALUE'], says: 'pseudo-headers' },
  { name: 'remove host', yaml: ROUTED('    headers:\n      request:\n        remove: [Host]'), expect: ['11:18 spec.http[0].headers.request.remove[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'Host header cannot be changed' },
  { name: 'set host on the response', yaml: ROUTED('    headers:\n      response:\n        set: {host: a}'), expect: ['11:15 spec.http[0].headers.response.set.host TRELLIS_CONFIG_INVALID_VALUE'], says: 'Host header cannot be changed' },
  { name: 'header value with an Envoy formatter', yaml: ROUTED('    headers:\n      request:\n        add: {x-client: "%DOWNSTREAM_REMOTE_ADDRESS%"}'), expect: ['11:25 spec.http[0].headers.request.add["x-client"] TRELLIS_CONFIG_UNSUPPORTED'], says: 'Trellis sends values literally' },
  { name: 'destination header operation on a pseudo-header', yaml: HTTP('route:\n    - destination: {host: reviews}\n      headers:\n        response:\n          add: {":status": "200"}'), expect: ['11:17 spec.http[0].route[0].headers.response.add[":status"] TRELLIS_CONFIG_INVALID_VALUE'], says: 'pseudo-headers' },
  { name: 'tcp route without destinations', yaml: VS('  hosts: [db]\n  tcp:\n  - match:\n    - port: 5432'), expect: ['7:5 spec.tcp[0] TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs route destinations' },
  { name: 'tcp weights', yaml: VS('  hosts: [db]\n  tcp:\n  - route:\n    - destination: {host: db-a}\n      weight: 60\n    - destination: {host: db-b}\n      weight: 60'), expect: ['7:5 spec.tcp[0].route TRELLIS_CONFIG_INVALID_VALUE'], says: 'add up to 120' },
  { name: 'tcp destination subnet', yaml: VS('  hosts: [db]\n  tcp:\n  - match:\n    - destinationSubnets: ["10.0.0.0/33"]\n    route:\n    - destination: {host: db}'), expect: ['8:28 spec.tcp[0].match[0].destinationSubnets[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'bad subnet' },
  { name: 'tcp sourceSubnet', yaml: VS('  hosts: [db]\n  tcp:\n  - match:\n    - sourceSubnet: 10.0.0.0/8\n    route:\n    - destination: {host: db}'), expect: ['8:7 spec.tcp[0].match[0].sourceSubnet TRELLIS_CONFIG_UNSUPPORTED'], says: 'sourceSubnet is not supported' },
  { name: 'tls match without SNI hosts', yaml: VS('  hosts: ["*.example.com"]\n  tls:\n  - match:\n    - sniHosts: []\n    route:\n    - destination: {host: a.example.com}'), expect: ['8:17 spec.tls[0].match[0].sniHosts TRELLIS_CONFIG_MISSING_FIELD'], says: 'at least one SNI host' },
  { name: 'tls SNI host outside the hosts', yaml: VS('  hosts: ["*.example.com"]\n  tls:\n  - match:\n    - sniHosts: [a.example.org]\n    route:\n    - destination: {host: a.example.com}'), expect: ['8:18 spec.tls[0].match[0].sniHosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'not one of the VirtualService\'s hosts' },
  { name: 'tls SNI host invalid', yaml: VS('  hosts: ["*.example.com"]\n  tls:\n  - match:\n    - sniHosts: ["a_b.example.com"]\n      port: 70000\n    route:\n    - destination: {host: a.example.com}'), expect: ['8:18 spec.tls[0].match[0].sniHosts[0] TRELLIS_CONFIG_INVALID_VALUE', '9:13 spec.tls[0].match[0].port TRELLIS_CONFIG_INVALID_VALUE'], says: 'not a valid host name' },
  { name: 'tls route without match', yaml: VS('  hosts: ["*.example.com"]\n  tls:\n  - match: []\n    route:\n    - destination: {host: a.example.com}'), expect: ['7:12 spec.tls[0].match TRELLIS_CONFIG_MISSING_FIELD'], says: 'at least one match' },
  { name: 'exportTo "*" with others', yaml: VS('  hosts: [reviews]\n  exportTo: ["*", "."]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['6:13 spec.exportTo TRELLIS_CONFIG_INVALID_VALUE'], says: 'list it alone' },
  { name: 'delegate', yaml: HTTP('delegate: {name: reviews-v1, namespace: shop}'), expect: ['7:5 spec.http[0].delegate TRELLIS_CONFIG_UNSUPPORTED'], says: 'delegation to another VirtualService is not supported' },
  { name: 'bad gateway name', yaml: VS('  hosts: [reviews]\n  gateways: [mesh, "a/b/c"]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['6:20 spec.gateways[1] TRELLIS_CONFIG_INVALID_VALUE'], says: 'use "mesh"' },
];

export const VIRTUAL_SERVICE_WARNINGS: readonly Case[] = [
  { name: 'bound only to a gateway', yaml: VS('  hosts: [reviews.example.com]\n  gateways: [istio-system/ingress]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['6:13 spec.gateways TRELLIS_CONFIG_IGNORED'], says: 'it has no effect for sidecars', severity: 'warning' },
  { name: 'gateway and mesh', yaml: VS('  hosts: [reviews]\n  gateways: [mesh, istio-system/ingress]\n  http:\n  - route:\n    - destination: {host: reviews}'), expect: ['6:13 spec.gateways TRELLIS_CONFIG_IGNORED'], says: 'the routes apply to sidecars because "mesh" is listed', severity: 'warning' },
  { name: 'catch-all route before others', yaml: VS('  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n  - match:\n    - uri: {prefix: /a}\n    route:\n    - destination: {host: reviews}'), expect: ['9:5 spec.http[1] TRELLIS_CONFIG_IGNORED'], says: 'never used', severity: 'warning' },
  { name: 'deprecated mirrorPercent', yaml: ROUTED('    mirror: {host: shadow}\n    mirrorPercent: 10'), expect: ['10:5 spec.http[0].mirrorPercent TRELLIS_CONFIG_DEPRECATED'], says: 'mirrorPercent is deprecated', severity: 'warning' },
  { name: 'deprecated allowOrigin', yaml: ROUTED('    corsPolicy:\n      allowOrigin: ["https://a.example"]'), expect: ['10:7 spec.http[0].corsPolicy.allowOrigin TRELLIS_CONFIG_DEPRECATED'], says: 'allowOrigin is deprecated', severity: 'warning' },
  { name: 'match only for gateways', yaml: ROUTED('    match:\n    - gateways: [istio-system/ingress]'), expect: ['10:17 spec.http[0].match[0].gateways TRELLIS_CONFIG_IGNORED'], says: 'never matches sidecar traffic', severity: 'warning' },
  { name: 'abort without percentage', yaml: ROUTED('    fault:\n      abort: {httpStatus: 503}'), expect: ['10:14 spec.http[0].fault.abort TRELLIS_CONFIG_IGNORED'], says: 'aborts no request', severity: 'warning' },
  { name: 'retryRemoteLocalities', yaml: ROUTED('    retries: {attempts: 2, retryRemoteLocalities: true}'), expect: ['9:28 spec.http[0].retries.retryRemoteLocalities TRELLIS_CONFIG_IGNORED'], says: 'no localities', severity: 'warning' },
];

const DR_HOST = '  host: reviews\n';

export const DESTINATION_RULE_CASES: readonly Case[] = [
  { name: 'empty host', yaml: DR('  host: ""'), expect: ['5:9 spec.host TRELLIS_CONFIG_MISSING_FIELD'], says: 'host is required' },
  { name: 'invalid host', yaml: DR('  host: "reviews:9080"'), expect: ['5:9 spec.host TRELLIS_CONFIG_INVALID_VALUE'], says: 'a host has no port' },
  { name: 'duplicate subset names', yaml: DR(`${DR_HOST}  subsets:\n  - name: v1\n    labels: {version: v1}\n  - name: v1\n    labels: {version: v2}`), expect: ['9:11 spec.subsets[1].name TRELLIS_CONFIG_DUPLICATE'], says: 'defined twice' },
  { name: 'subset name not a DNS label', yaml: DR(`${DR_HOST}  subsets:\n  - name: V_1\n    labels: {version: v1}`), expect: ['7:11 spec.subsets[0].name TRELLIS_CONFIG_INVALID_VALUE'], says: 'not a DNS label' },
  { name: 'subset label value invalid', yaml: DR(`${DR_HOST}  subsets:\n  - name: v1\n    labels: {version: "v1 beta"}`), expect: ['8:23 spec.subsets[0].labels.version TRELLIS_CONFIG_INVALID_VALUE'], says: 'label value' },
  { name: 'empty traffic policy', yaml: DR(`${DR_HOST}  trafficPolicy: {}`), expect: ['6:18 spec.trafficPolicy TRELLIS_CONFIG_INVALID_VALUE'], says: 'an empty trafficPolicy' },
  { name: 'simple and consistentHash', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      simple: RANDOM\n      consistentHash: {useSourceIp: true}`), expect: ['7:5 spec.trafficPolicy.loadBalancer TRELLIS_CONFIG_INVALID_VALUE'], says: 'simple or consistentHash, not both' },
  { name: 'PASSTHROUGH load balancer', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      simple: PASSTHROUGH`), expect: ['8:15 spec.trafficPolicy.loadBalancer.simple TRELLIS_CONFIG_UNSUPPORTED'], says: 'PASSTHROUGH' },
  { name: 'consistentHash with two keys', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x-user, useSourceIp: true}`), expect: ['8:23 spec.trafficPolicy.loadBalancer.consistentHash TRELLIS_CONFIG_INVALID_VALUE'], says: 'one hash key, not httpHeaderName and useSourceIp' },
  { name: 'consistentHash without key', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      consistentHash: {ringHash: {minimumRingSize: 1024}}`), expect: ['8:23 spec.trafficPolicy.loadBalancer.consistentHash TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs one hash key' },
  { name: 'cookie without name', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n        httpCookie: {name: "", ttl: 0s}`), expect: ['9:28 spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name TRELLIS_CONFIG_MISSING_FIELD'], says: 'needs a name' },
  { name: 'cookie ttl invalid', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n        httpCookie: {name: user, ttl: 1d}`), expect: ['9:39 spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl TRELLIS_CONFIG_INVALID_VALUE'], says: 'invalid duration' },
  { name: 'ring size 0', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 0}}`), expect: ['8:71 spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize TRELLIS_CONFIG_INVALID_VALUE'], says: 'positive integer' },
  { name: 'minimumRingSize with ringHash', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true, minimumRingSize: 64, ringHash: {minimumRingSize: 64}}`), expect: ['8:43 spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize TRELLIS_CONFIG_INVALID_VALUE'], says: 'not both' },
  { name: 'negative maxConnections', yaml: DR(`${DR_HOST}  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: -1}`), expect: ['8:29 spec.trafficPolicy.connectionPool.tcp.maxConnections TRELLIS_CONFIG_INVALID_VALUE'], says: 'non-negative integer' },
  { name: 'fractional http2MaxRequests', yaml: DR(`${DR_HOST}  trafficPolicy:\n    connectionPool:\n      http: {http2MaxRequests: 1.5}`), expect: ['8:32 spec.trafficPolicy.connectionPool.http.http2MaxRequests TRELLIS_CONFIG_INVALID_VALUE'], says: 'non-negative integer' },
  { name: 'bad connectTimeout', yaml: DR(`${DR_HOST}  trafficPolicy:\n    connectionPool:\n      tcp: {connectTimeout: 0s}`), expect: ['8:29 spec.trafficPolicy.connectionPool.tcp.connectTimeout TRELLIS_CONFIG_INVALID_VALUE'], says: 'at least 1ms' },
  { name: 'empty connection pool', yaml: DR(`${DR_HOST}  trafficPolicy:\n    connectionPool: {}`), expect: ['7:21 spec.trafficPolicy.connectionPool TRELLIS_CONFIG_INVALID_VALUE'], says: 'an empty connectionPool' },
  { name: 'UPGRADE with useClientProtocol', yaml: DR(`${DR_HOST}  trafficPolicy:\n    connectionPool:\n      http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}`), expect: ['8:59 spec.trafficPolicy.connectionPool.http.useClientProtocol TRELLIS_CONFIG_INVALID_VALUE'], says: 'cannot be true when h2UpgradePolicy is UPGRADE' },
  { name: 'maxEjectionPercent above 100', yaml: DR(`${DR_HOST}  trafficPolicy:\n    outlierDetection: {maxEjectionPercent: 101}`), expect: ['7:44 spec.trafficPolicy.outlierDetection.maxEjectionPercent TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 0 to 100' },
  { name: 'outlier interval 0', yaml: DR(`${DR_HOST}  trafficPolicy:\n    outlierDetection: {interval: 0s, baseEjectionTime: -30s}`), expect: ['7:34 spec.trafficPolicy.outlierDetection.interval TRELLIS_CONFIG_INVALID_VALUE', '7:56 spec.trafficPolicy.outlierDetection.baseEjectionTime TRELLIS_CONFIG_INVALID_VALUE'], says: 'at least 1ms' },
  { name: 'local origin failures without split', yaml: DR(`${DR_HOST}  trafficPolicy:\n    outlierDetection: {consecutiveLocalOriginFailures: 3}`), expect: ['7:56 spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures TRELLIS_CONFIG_INVALID_VALUE'], says: 'needs splitExternalLocalOriginErrors' },
  { name: 'ISTIO_MUTUAL with a client certificate', yaml: DR(`${DR_HOST}  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL\n      clientCertificate: /etc/certs/cert.pem`), expect: ['9:7 spec.trafficPolicy.tls.clientCertificate TRELLIS_CONFIG_INVALID_VALUE'], says: 'uses the mesh\'s own certificates' },
  { name: 'MUTUAL', yaml: DR(`  host: api.example.com\n  trafficPolicy:\n    tls:\n      mode: MUTUAL\n      clientCertificate: /c.pem\n      privateKey: /k.pem`), expect: ['8:13 spec.trafficPolicy.tls.mode TRELLIS_CONFIG_UNSUPPORTED'], says: 'MUTUAL TLS origination' },
  { name: 'SIMPLE with caCertificates', yaml: DR(`  host: api.example.com\n  trafficPolicy:\n    tls:\n      mode: SIMPLE\n      caCertificates: /ca.pem`), expect: ['9:7 spec.trafficPolicy.tls.caCertificates TRELLIS_CONFIG_UNSUPPORTED'], says: 'system\'s CAs' },
  { name: 'port-level settings without port', yaml: DR(`${DR_HOST}  trafficPolicy:\n    portLevelSettings:\n    - loadBalancer: {simple: RANDOM}`), expect: ['8:7 spec.trafficPolicy.portLevelSettings[0] TRELLIS_CONFIG_MISSING_FIELD'], says: 'need port.number' },
  { name: 'port-level settings port twice', yaml: DR(`${DR_HOST}  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 9080}\n      loadBalancer: {simple: RANDOM}\n    - port: {number: 9080}\n      loadBalancer: {simple: ROUND_ROBIN}`), expect: ['10:22 spec.trafficPolicy.portLevelSettings[1].port.number TRELLIS_CONFIG_DUPLICATE'], says: 'already has settings' },
  { name: 'port-level settings empty', yaml: DR(`${DR_HOST}  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 9080}`), expect: ['8:7 spec.trafficPolicy.portLevelSettings[0] TRELLIS_CONFIG_MISSING_FIELD'], says: 'at least one of loadBalancer' },
  { name: 'workloadSelector exported elsewhere', yaml: DR(`${DR_HOST}  workloadSelector:\n    matchLabels: {app: productpage}\n  exportTo: ["*"]`), expect: ['8:13 spec.exportTo TRELLIS_CONFIG_INVALID_VALUE'], says: 'applies to its own namespace only' },
  { name: 'subset traffic policy checked', yaml: DR(`${DR_HOST}  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy:\n      outlierDetection: {minHealthPercent: -5}`), expect: ['10:44 spec.subsets[0].trafficPolicy.outlierDetection.minHealthPercent TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 0 to 100' },
];

export const DESTINATION_RULE_WARNINGS: readonly Case[] = [
  { name: 'maglev', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}`), expect: ['8:43 spec.trafficPolicy.loadBalancer.consistentHash.maglev TRELLIS_CONFIG_IGNORED'], says: 'maglev is ignored', severity: 'warning' },
  { name: 'deprecated consecutiveErrors', yaml: DR(`${DR_HOST}  trafficPolicy:\n    outlierDetection: {consecutiveErrors: 5}`), expect: ['7:24 spec.trafficPolicy.outlierDetection.consecutiveErrors TRELLIS_CONFIG_DEPRECATED'], says: 'consecutiveErrors is deprecated', severity: 'warning' },
  { name: 'maxConnections 0 means unset', yaml: DR(`${DR_HOST}  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 0}`), expect: ['8:29 spec.trafficPolicy.connectionPool.tcp.maxConnections TRELLIS_CONFIG_IGNORED'], says: '0 means "not set"', severity: 'warning' },
  { name: 'deprecated minimumRingSize', yaml: DR(`${DR_HOST}  trafficPolicy:\n    loadBalancer:\n      consistentHash: {useSourceIp: true, minimumRingSize: 64}`), expect: ['8:43 spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize TRELLIS_CONFIG_DEPRECATED'], says: 'minimumRingSize is deprecated', severity: 'warning' },
  { name: 'TLS fields without mode', yaml: DR(`${DR_HOST}  trafficPolicy:\n    tls: {sni: reviews.example.com}`), expect: ['7:10 spec.trafficPolicy.tls TRELLIS_CONFIG_IGNORED'], says: 'without mode, TLS is DISABLE', severity: 'warning' },
];

export const SIDECAR_CASES: readonly Case[] = [
  { name: 'empty Sidecar', yaml: SC('  workloadSelector:\n    labels: {app: a}'), expect: ['4:1 spec TRELLIS_CONFIG_MISSING_FIELD'], says: 'an empty Sidecar' },
  { name: 'egress listener without hosts', yaml: SC('  egress:\n  - hosts: []'), expect: ['6:12 spec.egress[0].hosts TRELLIS_CONFIG_MISSING_FIELD'], says: 'at least one host' },
  { name: 'egress host without namespace', yaml: SC('  egress:\n  - hosts: ["reviews.shop.svc.cluster.local"]'), expect: ['6:13 spec.egress[0].hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'egress hosts are "namespace/dnsName"' },
  { name: 'egress host with a bad namespace', yaml: SC('  egress:\n  - hosts: ["Shop/*"]'), expect: ['6:13 spec.egress[0].hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'namespace "Shop"' },
  { name: 'egress short name', yaml: SC('  egress:\n  - hosts: ["./reviews"]'), expect: ['6:13 spec.egress[0].hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'short names are not allowed' },
  { name: 'egress partial wildcard', yaml: SC('  egress:\n  - hosts: ["*/*reviews.example.com"]'), expect: ['6:13 spec.egress[0].hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'partial wildcard' },
  { name: 'egress empty dnsName', yaml: SC('  egress:\n  - hosts: ["shop/"]'), expect: ['6:13 spec.egress[0].hosts[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'cannot be empty' },
  { name: 'two listeners without port', yaml: SC('  egress:\n  - hosts: ["./*"]\n  - hosts: ["istio-system/*"]'), expect: ['6:5 spec.egress[0] TRELLIS_CONFIG_INVALID_VALUE', '7:5 spec.egress[1] TRELLIS_CONFIG_INVALID_VALUE'], says: 'must be the last one' },
  { name: 'listener without port not last', yaml: SC('  egress:\n  - hosts: ["./*"]\n  - port: {number: 9080, protocol: HTTP, name: http}\n    hosts: ["./*"]'), expect: ['6:5 spec.egress[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'must be the last one' },
  { name: 'egress port out of range', yaml: SC('  egress:\n  - port: {number: 0, protocol: HTTP, name: http}\n    hosts: ["./*"]'), expect: ['6:20 spec.egress[0].port.number TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 1 to 65535' },
  { name: 'workloadSelector with a wildcard', yaml: SC('  workloadSelector:\n    labels: {app: "web*"}\n  egress:\n  - hosts: ["./*"]'), expect: ['6:19 spec.workloadSelector.labels.app TRELLIS_CONFIG_INVALID_VALUE'], says: 'wildcard in selector' },
  { name: 'egressProxy without ALLOW_ANY', yaml: SC('  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY\n    egressProxy: {host: proxy.example.com, port: {number: 3128}}'), expect: ['7:5 spec.outboundTrafficPolicy.egressProxy TRELLIS_CONFIG_INVALID_VALUE'], says: 'only valid with mode ALLOW_ANY' },
];

export const SIDECAR_WARNINGS: readonly Case[] = [
  { name: 'egress port ignored', yaml: SC('  egress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    bind: 127.0.0.1\n    hosts: ["./*"]'), expect: ['6:5 spec.egress[0].port TRELLIS_CONFIG_IGNORED'], says: 'port, bind: Trellis has one outbound listener', severity: 'warning' },
  { name: 'egressProxy ignored', yaml: SC('  outboundTrafficPolicy:\n    mode: ALLOW_ANY\n    egressProxy: {host: proxy.example.com, port: {number: 3128}}'), expect: ['7:5 spec.outboundTrafficPolicy.egressProxy TRELLIS_CONFIG_IGNORED'], says: 'egress proxies are not supported', severity: 'warning' },
  { name: 'ingress ignored', yaml: SC('  ingress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    defaultEndpoint: 127.0.0.1:8080'), expect: ['5:3 spec.ingress TRELLIS_CONFIG_IGNORED'], says: 'ingress is not supported', severity: 'warning' },
  { name: 'selector without labels', yaml: SC('  workloadSelector: {}\n  egress:\n  - hosts: ["./*"]'), expect: ['5:21 spec.workloadSelector TRELLIS_CONFIG_IGNORED'], says: 'selector without labels', severity: 'warning' },
  { name: 'duplicate egress host', yaml: SC('  egress:\n  - hosts: ["./*", "./reviews.shop.svc.cluster.local"]'), expect: ['6:20 spec.egress[0].hosts[1] TRELLIS_CONFIG_IGNORED'], says: 'repeats or overlaps', severity: 'warning' },
];

const BUCKET = '    tokenBucket: {maxTokens: 10, fillInterval: 1s}';

export const RATE_LIMIT_CASES: readonly Case[] = [
  { name: 'no rules', yaml: RL('  rules: []'), expect: ['5:10 spec.rules TRELLIS_CONFIG_MISSING_FIELD'], says: 'at least one rule' },
  { name: 'maxTokens 0', yaml: RL('  rules:\n  - tokenBucket: {maxTokens: 0, fillInterval: 1s}'), expect: ['6:30 spec.rules[0].tokenBucket.maxTokens TRELLIS_CONFIG_INVALID_VALUE'], says: 'positive integer' },
  { name: 'fractional tokensPerFill', yaml: RL('  rules:\n  - tokenBucket: {maxTokens: 10, tokensPerFill: 0.5, fillInterval: 1s}'), expect: ['6:49 spec.rules[0].tokenBucket.tokensPerFill TRELLIS_CONFIG_INVALID_VALUE'], says: 'tokensPerFill 0.5 must be a positive integer' },
  { name: 'fillInterval below 50ms', yaml: RL('  rules:\n  - tokenBucket: {maxTokens: 10, fillInterval: 10ms}'), expect: ['6:48 spec.rules[0].tokenBucket.fillInterval TRELLIS_CONFIG_INVALID_VALUE'], says: 'at least 50ms' },
  { name: 'fillInterval invalid', yaml: RL('  rules:\n  - tokenBucket: {maxTokens: 10, fillInterval: often}'), expect: ['6:48 spec.rules[0].tokenBucket.fillInterval TRELLIS_CONFIG_INVALID_VALUE'], says: 'invalid duration' },
  { name: 'path without slash', yaml: RL(`  rules:\n  - match: {paths: ["api/*"]}\n${BUCKET}`), expect: ['6:21 spec.rules[0].match.paths[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'paths start with "/"' },
  { name: 'path with a star in the middle', yaml: RL(`  rules:\n  - match: {paths: ["/a/*/b"]}\n${BUCKET}`), expect: ['6:21 spec.rules[0].match.paths[0] TRELLIS_CONFIG_INVALID_VALUE'], says: '"*" is only allowed once' },
  { name: 'lower-case method', yaml: RL(`  rules:\n  - match: {methods: [get]}\n${BUCKET}`), expect: ['6:23 spec.rules[0].match.methods[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'write "GET"' },
  { name: 'method pattern', yaml: RL(`  rules:\n  - match: {methods: ["P*"]}\n${BUCKET}`), expect: ['6:23 spec.rules[0].match.methods[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'no "*" patterns' },
  { name: 'port 0', yaml: RL(`  rules:\n  - match: {ports: [0]}\n${BUCKET}`), expect: ['6:21 spec.rules[0].match.ports[0] TRELLIS_CONFIG_INVALID_VALUE'], says: 'from 1 to 65535' },
  { name: 'empty methods list', yaml: RL(`  rules:\n  - match: {methods: []}\n${BUCKET}`), expect: ['6:22 spec.rules[0].match.methods TRELLIS_CONFIG_INVALID_VALUE'], says: 'matches nothing' },
  { name: 'selector label invalid', yaml: RL(`  selector:\n    matchLabels: {"app/x/y": web}\n  rules:\n  - ${BUCKET.trim()}`), expect: ['6:19 spec.selector.matchLabels["app/x/y"] TRELLIS_CONFIG_INVALID_VALUE'], says: 'label key' },
];
