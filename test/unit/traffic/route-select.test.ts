import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTrellisError } from '../../../src/api/errors.js';
import type { HttpMatchSnapshot, TcpRouteSnapshot } from '../../../src/mesh/snapshot.js';
import { compileIstioRegex } from '../../../src/traffic/matchers.js';
import { compileRouteTable, compileSniHost, RouteTables, selectHttpRoute, selectL4Route, type ConnectionView } from '../../../src/traffic/route-select.js';
import { httpRoute, request, table } from './fixtures.js';

function matches(match: HttpMatchSnapshot, overrides: Parameters<typeof request>[0]): boolean {
  return selectHttpRoute(compileRouteTable(table([httpRoute(0, [match])])), request(overrides)).matched;
}

void describe('HTTP route selection: every match field and its negative', () => {
  const cases: ReadonlyArray<[string, HttpMatchSnapshot, Parameters<typeof request>[0], boolean]> = [
    ['uri exact', { uri: { exact: '/reviews/1' } }, {}, true],
    ['uri exact ignores the query', { uri: { exact: '/reviews/1' } }, { path: '/reviews/1?x=1' }, true],
    ['uri exact, other path', { uri: { exact: '/reviews/1' } }, { path: '/reviews/2' }, false],
    ['uri exact is case-sensitive', { uri: { exact: '/reviews/1' } }, { path: '/Reviews/1' }, false],
    ['uri exact with ignoreUriCase', { uri: { exact: '/reviews/1' }, ignoreUriCase: true }, { path: '/REVIEWS/1' }, true],
    ['uri prefix', { uri: { prefix: '/rev' } }, {}, true],
    ['uri prefix is a plain string prefix', { uri: { prefix: '/reviews/1' } }, { path: '/reviews/10' }, true],
    ['uri prefix, other path', { uri: { prefix: '/ratings' } }, {}, false],
    ['uri prefix with ignoreUriCase', { uri: { prefix: '/REV' }, ignoreUriCase: true }, {}, true],
    ['uri prefix does not see the query', { uri: { prefix: '/reviews/1?' } }, { path: '/reviews/1?x' }, false],
    ['uri regex is a full match', { uri: { regex: '/reviews/[0-9]+' } }, {}, true],
    ['uri regex not anchored by the user still is', { uri: { regex: 'reviews' } }, {}, false],
    ['uri regex, no match', { uri: { regex: '/reviews/[a-z]+' } }, {}, false],
    ['ignoreUriCase never applies to regex', { uri: { regex: '/reviews/1' }, ignoreUriCase: true }, { path: '/REVIEWS/1' }, false],
    ['uri regex with leading (?i)', { uri: { regex: '(?i)/reviews/1' } }, { path: '/REVIEWS/1' }, true],
    ['empty uri match is every path', { uri: {} }, { path: '/anything' }, true],
    ['method exact', { method: { exact: 'GET' } }, {}, true],
    ['method is case-sensitive', { method: { exact: 'get' } }, {}, false],
    ['method regex', { method: { regex: 'GET|HEAD' } }, { method: 'HEAD' }, true],
    ['authority exact includes the port', { authority: { exact: 'reviews:9080' } }, {}, true],
    ['authority exact without port does not match host:port', { authority: { exact: 'reviews' } }, {}, false],
    ['authority prefix', { authority: { prefix: 'reviews' } }, {}, true],
    ['scheme', { scheme: { exact: 'https' } }, {}, false],
    ['header exact', { headers: { 'end-user': { exact: 'jason' } } }, { headers: { 'end-user': 'jason' } }, true],
    ['header exact, other value', { headers: { 'end-user': { exact: 'jason' } } }, { headers: { 'end-user': 'alice' } }, false],
    ['header exact, absent', { headers: { 'end-user': { exact: 'jason' } } }, {}, false],
    ['pseudo-header :authority reads the authority', { headers: { ':authority': { prefix: 'reviews' } } }, {}, true],
    ['pseudo-header :path reads the path with its query', { headers: { ':path': { exact: '/reviews/1?x=1' } } }, { path: '/reviews/1?x=1' }, true],
    ['pseudo-header :method', { headers: { ':method': { exact: 'POST' } } }, {}, false],
    ['withoutHeaders on a pseudo-header that is always there', { withoutHeaders: { ':method': {} } }, {}, false],
    ['header values are case-sensitive', { headers: { 'end-user': { exact: 'jason' } } }, { headers: { 'end-user': 'Jason' } }, false],
    ['header names are not', { headers: { 'end-user': { exact: 'jason' } } }, { headers: { 'End-User': 'jason' } }, true],
    ['header prefix', { headers: { cookie: { prefix: 'user=' } } }, { headers: { cookie: 'user=jason' } }, true],
    ['header regex', { headers: { cookie: { regex: '^(.*?;)?(user=jason)(;.*)?$' } } }, { headers: { cookie: 'a=b; user=jason' } }, false],
    ['header regex (bookinfo cookie)', { headers: { cookie: { regex: '^(.*?;)?(user=jason)(;.*)?$' } } }, { headers: { cookie: 'a=b;user=jason' } }, true],
    ['header presence (empty StringMatch)', { headers: { 'x-canary': {} } }, { headers: { 'x-canary': '' } }, true],
    ['header presence, absent', { headers: { 'x-canary': {} } }, {}, false],
    ['header regex "*" is presence', { headers: { 'x-canary': { regex: '*' } } }, { headers: { 'x-canary': 'anything' } }, true],
    ['header regex ".*" needs the header', { headers: { 'x-canary': { regex: '.*' } } }, {}, false],
    ['header exact "" matches an empty value', { headers: { 'x-canary': { exact: '' } } }, { headers: { 'x-canary': '' } }, true],
    ['withoutHeaders presence: header absent', { withoutHeaders: { 'x-debug': {} } }, {}, true],
    ['withoutHeaders presence: header present', { withoutHeaders: { 'x-debug': {} } }, { headers: { 'x-debug': '1' } }, false],
    ['withoutHeaders exact: same value', { withoutHeaders: { 'end-user': { exact: 'jason' } } }, { headers: { 'end-user': 'jason' } }, false],
    ['withoutHeaders exact: other value', { withoutHeaders: { 'end-user': { exact: 'jason' } } }, { headers: { 'end-user': 'alice' } }, true],
    ['withoutHeaders exact: header absent', { withoutHeaders: { 'end-user': { exact: 'jason' } } }, {}, true],
    ['withoutHeaders exact "": absent reads as ""', { withoutHeaders: { 'end-user': { exact: '' } } }, {}, false],
    ['query param exact', { queryParams: { u: { exact: 'jason' } } }, { path: '/reviews/1?a=1&u=jason' }, true],
    ['query param first value wins', { queryParams: { u: { exact: 'jason' } } }, { path: '/reviews/1?u=alice&u=jason' }, false],
    ['query param exact "" for a bare name', { queryParams: { debug: { exact: '' } } }, { path: '/reviews/1?debug' }, true],
    ['query param regex', { queryParams: { id: { regex: '[0-9]+' } } }, { path: '/r?id=42' }, true],
    ['query param values are not percent-decoded (Envoy)', { queryParams: { q: { exact: 'a b' } } }, { path: '/r?q=a%20b' }, false],
    ['query param raw value', { queryParams: { q: { exact: 'a%20b' } } }, { path: '/r?q=a%20b' }, true],
    ['query param presence', { queryParams: { debug: {} } }, { path: '/r?debug=1' }, true],
    ['query param absent', { queryParams: { debug: {} } }, { path: '/r' }, false],
    ['port', { port: 9080 }, {}, true],
    ['port, other', { port: 9081 }, {}, false],
    ['sourceLabels subset', { sourceLabels: { app: 'productpage' } }, {}, true],
    ['sourceLabels, other value', { sourceLabels: { app: 'reviews' } }, {}, false],
    ['sourceLabels, label missing', { sourceLabels: { team: 'a' } }, {}, false],
    ['sourceNamespace', { sourceNamespace: 'default' }, {}, true],
    ['sourceNamespace, other', { sourceNamespace: 'prod' }, {}, false],
    ['JWT claim headers never match outbound', { headers: { '@request.auth.claims.group': { exact: 'admin' } } }, {}, false],
    ['JWT claim withoutHeaders always match outbound', { withoutHeaders: { '@request.auth.claims.group': { exact: 'admin' } } }, {}, true],
    ['several fields are ANDed', { uri: { prefix: '/reviews' }, headers: { 'end-user': { exact: 'jason' } } }, { headers: { 'end-user': 'alice' } }, false],
    ['empty match object matches everything', {}, { path: '/x', method: 'DELETE' }, true],
  ];
  for (const [name, match, overrides, expected] of cases) {
    void it(`${name} → ${expected ? 'match' : 'no match'}`, () => assert.equal(matches(match, overrides), expected));
  }
});

void describe('HTTP route selection: order, OR, catch-all and explanations', () => {
  // Istio's bookinfo "reviews" rules: jason → v2, everyone else → v1.
  const bookinfo = compileRouteTable(
    table([httpRoute(0, [{ headers: { 'end-user': { exact: 'jason' } } }], { name: 'jason' }), httpRoute(1, [])]),
  );

  void it('the bookinfo end-user: jason rule sends jason to the first route', () => {
    const selection = selectHttpRoute(bookinfo, request({ headers: { 'end-user': 'jason' } }));
    assert.ok(selection.matched);
    assert.equal(selection.position, 0);
    assert.equal(selection.matchIndex, 0);
    assert.deepEqual(selection.conditions, ['headers[end-user]: "jason" = exact "jason"']);
    assert.match(selection.explanation, /VirtualService default\/reviews, route "jason"/);
  });

  void it('everyone else falls through to the catch-all', () => {
    const selection = selectHttpRoute(bookinfo, request({ headers: { 'end-user': 'alice' } }));
    assert.ok(selection.matched);
    assert.equal(selection.position, 1);
    assert.equal(selection.matchIndex, undefined);
  });

  void it('first match wins even when a later route matches better', () => {
    const compiled = compileRouteTable(table([httpRoute(0, [{ uri: { prefix: '/' } }]), httpRoute(1, [{ uri: { exact: '/reviews/1' } }])]));
    const selection = selectHttpRoute(compiled, request());
    assert.ok(selection.matched);
    assert.equal(selection.position, 0);
  });

  void it('several match entries are ORed; the one that matched is reported', () => {
    const compiled = compileRouteTable(table([httpRoute(0, [{ uri: { prefix: '/ratings' } }, { uri: { prefix: '/reviews' } }])]));
    const selection = selectHttpRoute(compiled, request());
    assert.ok(selection.matched);
    assert.equal(selection.matchIndex, 1);
    assert.deepEqual(selection.match, { uri: { prefix: '/reviews' } });
  });

  void it('no route: the first failing condition of every entry of every route', () => {
    const compiled = compileRouteTable(
      table([
        httpRoute(0, [{ headers: { 'end-user': { exact: 'jason' } } }], { name: 'jason' }),
        httpRoute(1, [{ uri: { prefix: '/ratings' }, method: { exact: 'POST' } }, { port: 8080 }]),
      ]),
    );
    const selection = selectHttpRoute(compiled, request({ headers: { 'end-user': 'alice' } }));
    assert.equal(selection.matched, false);
    assert.ok(!selection.matched);
    assert.deepEqual(selection.routes, [
      { route: '"jason"', position: 0, failures: ['headers[end-user]: "alice" ≠ exact "jason"'] },
      { route: 'http[1]', position: 1, failures: ['match[0] uri: "/reviews/1" ≠ prefix "/ratings"', 'match[1] port: 9080 ≠ 8080'] },
    ]);
    assert.match(selection.explanation, /no route of VirtualService default\/reviews matched: route "jason": headers\[end-user\]: "alice" ≠ exact "jason"/);
  });

  void it('explains absent headers, withoutHeaders, labels and ignoreUriCase', () => {
    const explain = (match: HttpMatchSnapshot, overrides: Parameters<typeof request>[0] = {}): string => {
      const selection = selectHttpRoute(compileRouteTable(table([httpRoute(0, [match])])), request(overrides));
      assert.ok(!selection.matched);
      return selection.routes[0]?.failures[0] ?? '';
    };
    assert.equal(explain({ headers: { 'end-user': { exact: 'jason' } } }), 'headers[end-user]: absent ≠ exact "jason"');
    assert.equal(explain({ headers: { 'x-canary': {} } }), 'headers[x-canary]: absent, must be present');
    assert.equal(explain({ withoutHeaders: { 'x-debug': {} } }, { headers: { 'x-debug': '1' } }), 'withoutHeaders[x-debug]: present, must be absent');
    assert.equal(explain({ withoutHeaders: { 'end-user': { exact: 'jason' } } }, { headers: { 'end-user': 'jason' } }), 'withoutHeaders[end-user]: "jason" = exact "jason", which is excluded');
    assert.equal(explain({ sourceLabels: { app: 'reviews' } }), 'sourceLabels[app]: "productpage" ≠ "reviews"');
    assert.equal(explain({ uri: { prefix: '/X' }, ignoreUriCase: true }), 'uri: "/reviews/1" ≠ prefix "/X" (ignoring case)');
    assert.equal(explain({ queryParams: { id: { exact: '1' } } }), 'queryParams[id]: absent ≠ exact "1"');
  });

  void it('never shows credential header values', () => {
    const selection = selectHttpRoute(compileRouteTable(table([httpRoute(0, [{ headers: { authorization: { exact: 'Bearer x' } } }])])), request({ headers: { authorization: 'Bearer secret' } }));
    assert.ok(!selection.matched);
    assert.equal(selection.routes[0]?.failures[0], 'headers[authorization]: <redacted> ≠ exact "Bearer x"');
    assert.doesNotMatch(selection.explanation, /secret/);
  });

  void it('a table without routes explains itself', () => {
    const selection = selectHttpRoute(compileRouteTable(table([])), request());
    assert.ok(!selection.matched);
    assert.equal(selection.explanation, 'VirtualService default/reviews has no HTTP routes');
  });

  void it('RouteTables finds a table by host and port, case-insensitively', () => {
    const tables = new RouteTables([table([httpRoute(0, [])]), table([], { port: 9081 })]);
    assert.equal(tables.size, 2);
    assert.equal(tables.get('Reviews.default.svc.cluster.local', 9080)?.http.length, 1);
    assert.equal(tables.get('reviews.default.svc.cluster.local', 9081)?.http.length, 0);
    assert.equal(tables.get('reviews.default.svc.cluster.local', 1), undefined);
  });

  void it('a bad regex fails compilation with a stable code', () => {
    assert.throws(
      () => compileRouteTable(table([httpRoute(0, [{ uri: { regex: '(' } }])])),
      (err: unknown) => isTrellisError(err, 'TRELLIS_TRAFFIC_BAD_REGEX'),
    );
  });
});

void describe('RE2 expressions in JavaScript', () => {
  const cases: ReadonlyArray<[string, string, boolean]> = [
    ['v[12]', 'v1', true],
    ['v[12]', 'v12', false],
    ['(?i)abc', 'ABC', true],
    ['(?P<id>[0-9]+)', '42', true],
    ['\\Aabc\\z', 'abc', true],
    ['a|b', 'b', true],
    ['[]a]', ']', true],
    ['[^]a]', 'b', true],
  ];
  for (const [source, input, expected] of cases) {
    void it(`${source} ${expected ? 'matches' : 'does not match'} ${input}`, () => assert.equal(compileIstioRegex(source).test(input), expected));
  }
  for (const source of ['[[:alpha:]]', '\\Qa.b\\E', 'a(?i)b', '(?U)a', 'a\\']) {
    void it(`rejects RE2-only ${source}`, () => assert.throws(() => compileIstioRegex(source), (err: unknown) => isTrellisError(err, 'TRELLIS_TRAFFIC_BAD_REGEX')));
  }
});

void describe('L4 route selection (tcp, tls)', () => {
  const tcp = (index: number, match: TcpRouteSnapshot['match']): TcpRouteSnapshot => ({ index, match, route: [] });
  const connection = (overrides: Partial<ConnectionView> = {}): ConnectionView => ({
    port: 27017,
    destinationIp: '10.1.2.3',
    source: { namespace: 'default', labels: { app: 'api' } },
    ...overrides,
  });

  void it('tcp: port, subnets, source labels and namespace, first match wins', () => {
    const compiled = compileRouteTable(
      table([], {
        tcp: [tcp(0, [{ port: 27018 }]), tcp(1, [{ destinationSubnets: ['10.9.0.0/16'] }, { destinationSubnets: ['10.1.0.0/16'], sourceLabels: { app: 'api' } }]), tcp(2, [])],
      }),
    );
    const hit = selectL4Route(compiled, connection());
    assert.ok(hit.matched);
    assert.equal(hit.position, 1);
    assert.equal(hit.matchIndex, 1);
    const other = selectL4Route(compiled, connection({ source: { namespace: 'default', labels: { app: 'web' } } }));
    assert.ok(other.matched);
    assert.equal(other.position, 2);
  });

  void it('tcp: no route explains the failures', () => {
    const compiled = compileRouteTable(table([], { tcp: [tcp(0, [{ port: 1 }, { sourceNamespace: 'prod' }])] }));
    const miss = selectL4Route(compiled, connection());
    assert.ok(!miss.matched);
    assert.deepEqual(miss.routes[0]?.failures, ['match[0] port: 27017 ≠ 1', 'match[1] sourceNamespace: "default" ≠ "prod"']);
  });

  void it('tls: SNI hosts with wildcards', () => {
    const compiled = compileRouteTable(table([], { tls: [tcp(0, [{ sniHosts: ['*.example.com'] }]), tcp(1, [{ sniHosts: ['api.internal'] }])] }));
    const pick = (sni: string | undefined): number | undefined => {
      const selection = selectL4Route(compiled, connection(sni === undefined ? {} : { sni }), 'tls');
      return selection.matched ? selection.position : undefined;
    };
    assert.equal(pick('www.example.com'), 0);
    assert.equal(pick('a.b.example.com'), 0);
    assert.equal(pick('example.com'), undefined);
    assert.equal(pick('API.internal'), 1);
    assert.equal(pick(undefined), undefined);
  });

  void it('SNI patterns', () => {
    assert.equal(compileSniHost('*')('anything'), true);
    assert.equal(compileSniHost('*.a.com')('x.a.com'), true);
    assert.equal(compileSniHost('*.a.com')('.a.com'), false);
    assert.equal(compileSniHost('a.com')('b.com'), false);
  });
});
