import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTrellisError } from '../../../src/api/errors.js';
import type { CorsPolicySnapshot, HttpMatchSnapshot, HttpRouteSnapshot } from '../../../src/mesh/snapshot.js';
import { compileCors, corsDecision } from '../../../src/traffic/cors.js';
import { abortResponse, decideFault } from '../../../src/traffic/fault.js';
import { applyHeaderOperations, applyRequestHeaderOperations, applyResponseHeaderOperations, removeHeader, setHeader, type HeaderPairs } from '../../../src/traffic/header-ops.js';
import { seededRandom } from '../../../src/traffic/random.js';
import { redirectResponse, type RedirectSnapshot } from '../../../src/traffic/redirect.js';
import { compileRewrite, re2Substitution, rewriteAuthority, rewritePath } from '../../../src/traffic/rewrite.js';
import { destination, draws } from './fixtures.js';

void describe('fault injection', () => {
  void it('delay and abort at their percentages, independent draws (seeded: exact counts)', () => {
    const random = seededRandom(2024);
    const counts = { delayed: 0, aborted: 0, both: 0, none: 0 };
    for (let i = 0; i < 10_000; i++) {
      const decision = decideFault({ delay: { fixedDelayMs: 5_000, percentage: 10 }, abort: { httpStatus: 500, percentage: 50 } }, random);
      if (decision.delayMs !== undefined && decision.abort !== undefined) counts.both++;
      else if (decision.delayMs !== undefined) counts.delayed++;
      else if (decision.abort !== undefined) counts.aborted++;
      else counts.none++;
    }
    // Expected about 500 both, 500 delay only, 4,500 abort only, 4,500 neither.
    assert.deepEqual(counts, { delayed: 496, aborted: 4480, both: 523, none: 4501 });
  });

  void it('the delay draw comes first, then the abort draw', () => {
    const fault = { delay: { fixedDelayMs: 7_000, percentage: 50 }, abort: { httpStatus: 503, percentage: 50 } };
    assert.deepEqual(decideFault(fault, draws(0.2, 0.9)), { delayMs: 7_000, responseFlags: ['DI'] });
    assert.deepEqual(decideFault(fault, draws(0.9, 0.2)), { abort: { httpStatus: 503 }, responseFlags: ['FI'] });
    assert.deepEqual(decideFault(fault, draws(0.1, 0.1)), { delayMs: 7_000, abort: { httpStatus: 503 }, responseFlags: ['DI', 'FI'] });
    assert.deepEqual(decideFault(fault, draws(0.9, 0.9)), { responseFlags: [] });
  });

  void it('0 % never, 100 % always; no fault, no decision', () => {
    const random = seededRandom(1);
    for (let i = 0; i < 1000; i++) {
      assert.equal(decideFault({ abort: { httpStatus: 500, percentage: 0 } }, random).abort, undefined);
      assert.deepEqual(decideFault({ abort: { httpStatus: 500, percentage: 100 } }, random).abort, { httpStatus: 500 });
    }
    assert.deepEqual(decideFault(undefined, random), { responseFlags: [] });
  });

  void it('gRPC aborts answer 200 with grpc-status', () => {
    const decision = decideFault({ abort: { grpcStatus: 14, percentage: 100 } }, draws(0));
    assert.deepEqual(decision.abort, { grpcStatus: 14 });
    const reply = abortResponse({ grpcStatus: 14 });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.headers.find(([n]) => n === 'grpc-status'), ['grpc-status', '14']);
    assert.equal(abortResponse({ httpStatus: 418 }).status, 418);
  });
});

void describe('rewrite', () => {
  const route = (rewrite: HttpRouteSnapshot['rewrite']): Pick<HttpRouteSnapshot, 'rewrite'> => (rewrite === undefined ? {} : { rewrite });
  const cases: ReadonlyArray<[string, HttpRouteSnapshot['rewrite'], HttpMatchSnapshot | undefined, string, string | undefined]> = [
    ['prefix match: the matched prefix is replaced', { uri: '/v2/reviews' }, { uri: { prefix: '/reviews' } }, '/reviews/1?x=1', '/v2/reviews/1?x=1'],
    ['prefix match to "/"', { uri: '/' }, { uri: { prefix: '/api/' } }, '/api/users', '/users'],
    ['prefix match with ignoreUriCase: same length replaced', { uri: '/new' }, { uri: { prefix: '/old' }, ignoreUriCase: true }, '/OLD/x', '/new/x'],
    ['exact match: the whole path, query kept', { uri: '/ratings' }, { uri: { exact: '/reviews/1' } }, '/reviews/1?a=b', '/ratings?a=b'],
    ['regex match: the whole path', { uri: '/x' }, { uri: { regex: '/reviews/[0-9]+' } }, '/reviews/42', '/x'],
    ['no uri match: only the leading "/" (Istio prefix "/")', { uri: '/v2' }, undefined, '/foo', '/v2foo'],
    ['match without uri: same', { uri: '/v2/' }, { headers: { a: { exact: 'b' } } }, '/foo?q', '/v2/foo?q'],
    ['uriRegexRewrite: every match in the path, not the query', { uriRegexRewrite: { match: '/a/', rewrite: '/b/' } }, undefined, '/a/a/x?p=/a/', '/b/a/x?p=/a/'],
    ['uriRegexRewrite with groups', { uriRegexRewrite: { match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1' } }, undefined, '/service/foo/v1/api?x', '/v1/api/instance/foo?x'],
    ['uriRegexRewrite replaces all non-overlapping matches', { uriRegexRewrite: { match: 'o', rewrite: '0' } }, undefined, '/foo/boo', '/f00/b00'],
    ['authority only: no path rewrite', { authority: 'other' }, undefined, '/x', undefined],
    ['no rewrite', undefined, undefined, '/x', undefined],
  ];
  for (const [name, rewrite, match, path, expected] of cases) {
    void it(name, () => assert.equal(rewritePath(route(rewrite), match, path), expected));
  }

  void it('RE2 substitutions become JavaScript replacements', () => {
    assert.equal(re2Substitution('\\1-\\2'), '$1-$2');
    assert.equal(re2Substitution('\\0'), '$&');
    assert.equal(re2Substitution('$1 \\\\'), '$$1 \\');
  });

  void it('a bad uriRegexRewrite fails at compile time', () => {
    assert.throws(() => compileRewrite({ rewrite: { uriRegexRewrite: { match: '(', rewrite: '' } } }), (err: unknown) => isTrellisError(err, 'TRELLIS_TRAFFIC_BAD_REGEX'));
  });

  void it('authority: rewrite.authority, else a host header operation on the route, else on the destination', () => {
    const d = { headers: { request: { set: { Host: 'from-destination' } } } };
    assert.equal(rewriteAuthority({ rewrite: { authority: 'explicit' }, headers: { request: { set: { host: 'x' } } } }, d), 'explicit');
    assert.equal(rewriteAuthority({ headers: { request: { add: { ':authority': 'added' }, set: { host: 'set' } } } }, d), 'set');
    assert.equal(rewriteAuthority({ headers: { request: { add: { ':authority': 'added' } } } }, d), 'added');
    assert.equal(rewriteAuthority({}, d), 'from-destination');
    assert.equal(rewriteAuthority({}, undefined), undefined);
  });
});

void describe('redirect', () => {
  const request = { scheme: 'http', authority: 'bookinfo.example:8080', path: '/v1/getProductRatings?id=1' };
  const cases: ReadonlyArray<[string, RedirectSnapshot, typeof request, number, string]> = [
    ['uri replaces the path, query kept, 301', { uri: '/v1/bookRatings', redirectCode: 301 }, request, 301, 'http://bookinfo.example:8080/v1/bookRatings?id=1'],
    ['uri with its own query wins', { uri: '/new?x=2', redirectCode: 302 }, request, 302, 'http://bookinfo.example:8080/new?x=2'],
    ['authority replaces host and port', { authority: 'newratings.default.svc.cluster.local', redirectCode: 301 }, request, 301, 'http://newratings.default.svc.cluster.local/v1/getProductRatings?id=1'],
    ['port replaces the request port', { port: 9443, redirectCode: 307 }, request, 307, 'http://bookinfo.example:9443/v1/getProductRatings?id=1'],
    ['scheme change keeps a non-default port', { scheme: 'https', redirectCode: 308 }, request, 308, 'https://bookinfo.example:8080/v1/getProductRatings?id=1'],
    ['scheme change drops the old default port', { scheme: 'https', redirectCode: 301 }, { ...request, authority: 'a.example:80' }, 301, 'https://a.example/v1/getProductRatings?id=1'],
    ['https with port 443: no port (from a request on the default port)', { scheme: 'https', port: 443, redirectCode: 301 }, { ...request, authority: 'bookinfo.example' }, 301, 'https://bookinfo.example/v1/getProductRatings?id=1'],
    // Istio drops a :443 / :80 port redirect altogether, so the request's own port stays (an Istio quirk, kept).
    ['https with port 443 from a request on another port keeps that port', { scheme: 'https', port: 443, redirectCode: 301 }, request, 301, 'https://bookinfo.example:8080/v1/getProductRatings?id=1'],
    ['http with port 80: no port', { port: 80, redirectCode: 301 }, { ...request, authority: 'bookinfo.example:80' }, 301, 'http://bookinfo.example:80/v1/getProductRatings?id=1'],
    ['authority and port together', { authority: 'b.example', port: 8443, scheme: 'https', redirectCode: 303 }, request, 303, 'https://b.example:8443/v1/getProductRatings?id=1'],
    ['IPv6 authority', { port: 81, redirectCode: 301 }, { ...request, authority: '[::1]:8080' }, 301, 'http://[::1]:81/v1/getProductRatings?id=1'],
    ['uri without a leading slash gets one', { uri: 'x', redirectCode: 301 }, { ...request, path: '/a' }, 301, 'http://bookinfo.example:8080/x'],
    ['code 0 means 301', { uri: '/x', redirectCode: 0 }, request, 301, 'http://bookinfo.example:8080/x?id=1'],
    ['derivePort FROM_PROTOCOL_DEFAULT: the scheme default, no port', { scheme: 'https', protocolDefaultPort: true, redirectCode: 301 }, request, 301, 'https://bookinfo.example/v1/getProductRatings?id=1'],
  ];
  for (const [name, redirect, req, status, location] of cases) {
    void it(name, () => assert.deepEqual(redirectResponse(redirect, req), { status, location }));
  }
});

void describe('CORS', () => {
  const policy: CorsPolicySnapshot = {
    allowOrigins: [{ exact: 'https://example.com' }, { regex: 'https://.*\\.example\\.org' }],
    allowMethods: ['POST', 'GET'],
    allowHeaders: ['X-Foo-Bar'],
    exposeHeaders: ['X-Expose'],
    maxAgeSeconds: 86_400,
    allowCredentials: false,
  };
  const cors = compileCors(policy);
  const req = (method: string, headers: Record<string, string>): { method: string; headers: Map<string, string> } => ({ method, headers: new Map(Object.entries(headers)) });

  void it('preflight from an allowed origin is answered here', () => {
    const decision = corsDecision(cors, req('OPTIONS', { origin: 'https://a.example.org', 'access-control-request-method': 'POST' }));
    assert.deepEqual(decision, {
      kind: 'preflight-response',
      status: 200,
      originAllowed: true,
      headers: [
        ['access-control-allow-origin', 'https://a.example.org'],
        ['access-control-allow-methods', 'POST,GET'],
        ['access-control-allow-headers', 'X-Foo-Bar'],
        ['access-control-max-age', '86400'],
      ],
    });
  });

  void it('preflight from another origin goes upstream (FORWARD) or is answered without CORS headers (IGNORE)', () => {
    const preflight = req('OPTIONS', { origin: 'https://evil.example', 'access-control-request-method': 'POST' });
    assert.deepEqual(corsDecision(cors, preflight), { kind: 'forward', originAllowed: false, responseHeaders: [] });
    const ignore = compileCors({ ...policy, unmatchedPreflights: 'IGNORE' });
    const decision = corsDecision(ignore, preflight);
    assert.equal(decision.kind, 'preflight-response');
    assert.ok(decision.kind === 'preflight-response');
    assert.equal(decision.headers.some(([n]) => n === 'access-control-allow-origin'), false);
  });

  void it('OPTIONS without Access-Control-Request-Method is not a preflight', () => {
    assert.equal(corsDecision(cors, req('OPTIONS', { origin: 'https://example.com' })).kind, 'forward');
  });

  void it('actual requests: allow-origin, credentials and expose-headers on the response', () => {
    assert.deepEqual(corsDecision(cors, req('GET', { origin: 'https://example.com' })), {
      kind: 'forward',
      originAllowed: true,
      responseHeaders: [
        ['access-control-allow-origin', 'https://example.com'],
        ['access-control-expose-headers', 'X-Expose'],
      ],
    });
    const withCredentials = compileCors({ ...policy, allowCredentials: true });
    const decision = corsDecision(withCredentials, req('GET', { origin: 'https://example.com' }));
    assert.ok(decision.kind === 'forward');
    assert.deepEqual(decision.responseHeaders[1], ['access-control-allow-credentials', 'true']);
    assert.deepEqual(corsDecision(cors, req('GET', { origin: 'https://nope.example' })), { kind: 'forward', originAllowed: false, responseHeaders: [] });
  });

  void it('no Origin, empty Origin or no policy: nothing to do', () => {
    assert.deepEqual(corsDecision(cors, req('GET', {})), { kind: 'none' });
    assert.deepEqual(corsDecision(cors, req('GET', { origin: '' })), { kind: 'none' });
    assert.deepEqual(corsDecision(undefined, req('GET', { origin: 'https://example.com' })), { kind: 'none' });
  });

  void it('an origin matcher that matches "*" allows every origin; "*" methods and headers echo the request', () => {
    const open = compileCors({ allowOrigins: [{ exact: '*' }], allowMethods: ['*'], allowHeaders: ['*'], exposeHeaders: [] });
    const decision = corsDecision(open, req('OPTIONS', { origin: 'https://any.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-a,x-b' }));
    assert.ok(decision.kind === 'preflight-response');
    assert.deepEqual(decision.headers, [
      ['access-control-allow-origin', 'https://any.example'],
      ['access-control-allow-methods', 'PUT'],
      ['access-control-allow-headers', 'x-a,x-b'],
    ]);
    assert.equal(compileCors({ ...policy, allowOrigins: [{ regex: '.*' }] }).originAllowed('https://x'), true);
    assert.equal(compileCors({ ...policy, allowOrigins: [{ prefix: 'https://' }] }).originAllowed('http://x'), false);
  });
});

void describe('header operations', () => {
  void it('set replaces every value, add appends, remove removes — case-insensitive names, case kept', () => {
    const headers: HeaderPairs = [
      ['X-A', '1'],
      ['x-b', '2'],
      ['X-a', '3'],
      ['Keep', 'k'],
    ];
    setHeader(headers, 'x-a', 'new');
    assert.deepEqual(headers, [
      ['x-a', 'new'],
      ['x-b', '2'],
      ['Keep', 'k'],
    ]);
    removeHeader(headers, 'X-B');
    assert.deepEqual(headers, [
      ['x-a', 'new'],
      ['Keep', 'k'],
    ]);
  });

  void it('one set of operations: remove first, then set, then add; empty values do nothing', () => {
    const headers: HeaderPairs = [
      ['x-remove', 'r'],
      ['x-set', 'old'],
      ['x-add', 'a1'],
      ['x-empty', 'stays'],
    ];
    applyHeaderOperations(headers, { remove: ['x-remove', 'x-added-then-removed'], set: { 'x-set': 'new', 'x-empty': '' }, add: { 'x-add': 'a2', 'x-added-then-removed': 'v' } });
    assert.deepEqual(headers, [
      ['x-set', 'new'],
      ['x-add', 'a1'],
      ['x-empty', 'stays'],
      ['x-add', 'a2'],
      ['x-added-then-removed', 'v'],
    ]);
  });

  void it('never touches pseudo-headers or host', () => {
    const headers: HeaderPairs = [['Host', 'a']];
    applyHeaderOperations(headers, { set: { host: 'b', ':path': '/x' }, remove: ['host'] });
    assert.deepEqual(headers, [['Host', 'a']]);
  });

  const routeOps = { request: { set: { 'x-level': 'route' }, add: { 'x-trace': 'route' } }, response: { set: { 'x-level': 'route' } } };
  const destinationOps = { request: { set: { 'x-level': 'destination' }, add: { 'x-trace': 'destination' } }, response: { set: { 'x-level': 'destination' } } };

  void it('one destination: route and destination operations merge, the destination set wins', () => {
    const route = { headers: routeOps, route: [{ ...destination('reviews'), headers: destinationOps }] };
    const headers: HeaderPairs = [];
    applyRequestHeaderOperations(headers, route, route.route[0]);
    assert.deepEqual(headers, [
      ['x-level', 'destination'],
      ['x-trace', 'route'],
      ['x-trace', 'destination'],
    ]);
  });

  void it('weighted destinations: the destination runs first, the route overwrites', () => {
    const route = { headers: routeOps, route: [{ ...destination('reviews', 'v1', 50), headers: destinationOps }, destination('reviews', 'v2', 50)] };
    const request: HeaderPairs = [];
    applyRequestHeaderOperations(request, route, route.route[0]);
    assert.deepEqual(request, [
      ['x-level', 'route'],
      ['x-trace', 'destination'],
      ['x-trace', 'route'],
    ]);
    const response: HeaderPairs = [['X-Level', 'upstream']];
    applyResponseHeaderOperations(response, route, route.route[0]);
    assert.deepEqual(response, [['x-level', 'route']]);
    const other: HeaderPairs = [];
    applyRequestHeaderOperations(other, route, route.route[1]);
    assert.deepEqual(other, [
      ['x-level', 'route'],
      ['x-trace', 'route'],
    ]);
  });
});
