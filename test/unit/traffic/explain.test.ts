import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfigSet, parseConfigText } from '../../../src/api/config-set.js';
import { compileSnapshot } from '../../../src/mesh/compile.js';
import { buildRegistry } from '../../../src/mesh/registry.js';
import type { ProxySnapshot, TrustSnapshot } from '../../../src/mesh/snapshot.js';
import { describeConnectionPool, describeLoadBalancer, describeOutlierDetection, explainRoute, type RouteCheckRequest } from '../../../src/traffic/explain.js';

/**
 * `trellis route check`'s core: each part of the explanation from a small config compiled the
 * way the control plane compiles it for one proxy.
 */

const TRUST: TrustSnapshot = { trustDomain: 'cluster.local', bundle: { keys: [] }, revocations: { sequence: 0, serials: [], identities: [] } };

const doc = (kind: string, api: string, name: string, namespace: string | undefined, spec: string): string =>
  `apiVersion: ${api}\nkind: ${kind}\nmetadata:\n  name: ${name}\n${namespace === undefined ? '' : `  namespace: ${namespace}\n`}spec:\n${spec}\n---\n`;
const net = (kind: string, name: string, namespace: string, spec: string): string => doc(kind, 'networking.istio.io/v1', name, namespace, spec);
const meshConfig = (mode: string): string => doc('MeshConfig', 'trellis.dev/v1alpha1', 'mesh', undefined, `  outboundTrafficPolicy:\n    mode: ${mode}`);

const workload = (name: string, labels: string, port: number, namespace = 'default'): string =>
  net('WorkloadEntry', name, namespace, `  address: 127.0.0.1\n  labels: {${labels}}\n  ports: {http: ${port}}\n  serviceAccount: ${name.split('-')[0] ?? name}`);
const service = (name: string, ports: string, namespace = 'default', app = name): string =>
  net('ServiceEntry', name, namespace, `  hosts: [${name}.${namespace}.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n${ports}\n  workloadSelector:\n    labels: {app: ${app}}`);

/** Bookinfo in small: productpage calls reviews (v1..v3) and ratings; a TCP database; an external API. */
const BASE =
  workload('productpage-v1', 'app: productpage, version: v1', 19080) +
  workload('reviews-v1', 'app: reviews, version: v1', 19082) +
  workload('reviews-v2', 'app: reviews, version: v2', 19083) +
  workload('reviews-v3', 'app: reviews, version: v3', 19084) +
  workload('ratings-v1', 'app: ratings, version: v1', 19085) +
  workload('db-1', 'app: db', 15432, 'data') +
  service('productpage', '  - {number: 9080, name: http, protocol: HTTP}') +
  service('reviews', '  - {number: 9080, name: http, protocol: HTTP}') +
  service('ratings', '  - {number: 9080, name: http, protocol: HTTP}') +
  service('db', '  - {number: 5432, name: tcp-postgres, protocol: TCP}', 'data') +
  net('ServiceEntry', 'httpbin', 'default', '  hosts: [httpbin.org]\n  location: MESH_EXTERNAL\n  resolution: DNS\n  ports:\n  - {number: 80, name: http, protocol: HTTP}') +
  net(
    'DestinationRule',
    'reviews',
    'default',
    `  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 10, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 5, maxRetries: 3}
    outlierDetection: {consecutive5xxErrors: 3, interval: 5s, baseEjectionTime: 1m}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
  - {name: v4, labels: {version: v4}}`,
  ) +
  net('DestinationRule', 'ratings', 'default', '  host: ratings\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x-user}');

const REVIEWS_VS = net(
  'VirtualService',
  'reviews',
  'default',
  `  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - name: canary
    match:
    - uri: {prefix: /canary}
    route:
    - destination: {host: reviews, subset: v4}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 80
    - destination: {host: reviews, subset: v3}
      weight: 20`,
);

const RATINGS_VS = net(
  'VirtualService',
  'ratings',
  'default',
  `  hosts: [ratings]
  http:
  - match:
    - uri: {prefix: /ratings}
      method: {exact: GET}
    - headers:
        x-test: {exact: "1"}
    fault:
      delay: {fixedDelay: 7s, percentage: {value: 100}}
      abort: {httpStatus: 500, percentage: {value: 10}}
    timeout: 10s
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure,503"}
    rewrite: {uri: /v2/ratings}
    route:
    - destination: {host: ratings}
    mirror: {host: reviews, subset: v3}
    mirrorPercentage: {value: 25}
  - match:
    - uri: {exact: /old}
    redirect: {uri: /ratings/0, redirectCode: 302}
  - match:
    - uri: {prefix: /health}
    directResponse: {status: 200, body: {string: ok}}`,
);

const DB_VS = net('VirtualService', 'db', 'data', '  hosts: [db.data.svc.cluster.local]\n  tcp:\n  - match:\n    - port: 5432\n    route:\n    - destination: {host: db.data.svc.cluster.local}');

function snapshotOf(yaml: string, from = 'default/productpage-v1'): ProxySnapshot {
  const result = parseConfigText(yaml, 'test.yaml');
  assert.deepEqual(result.errors, []);
  const config = result.config as ConfigSet;
  const snapshot = compileSnapshot(config, buildRegistry(config), from, TRUST);
  assert.ok(snapshot);
  return snapshot;
}

const MESH = snapshotOf(meshConfig('REGISTRY_ONLY') + BASE + REVIEWS_VS + RATINGS_VS + DB_VS);

function check(request: Partial<RouteCheckRequest> & { host: string }, snapshot = MESH): ReturnType<typeof explainRoute> {
  return explainRoute(snapshot, request);
}

void describe('route explain: which route', () => {
  void it('puts the contract fields first, in the documented order', () => {
    assert.deepEqual(Object.keys(check({ host: 'reviews' })).slice(0, 8), ['virtualService', 'route', 'destinations', 'timeout', 'retries', 'fault', 'mirror', 'egress']);
  });

  void it('the 80/20 split: both destinations with weight, subset, port, cluster and load balancer', () => {
    const e = check({ host: 'reviews:9080' });
    assert.equal(e.outcome, 'routed');
    assert.equal(e.virtualService, 'default/reviews');
    assert.equal(e.route, 2);
    assert.deepEqual(
      e.destinations.map((d) => [d.host, d.subset, d.port, d.weight, d.cluster]),
      [
        ['reviews.default.svc.cluster.local', 'v1', 9080, 80, 'outbound|9080|v1|reviews.default.svc.cluster.local'],
        ['reviews.default.svc.cluster.local', 'v3', 9080, 20, 'outbound|9080|v3|reviews.default.svc.cluster.local'],
      ],
    );
    assert.deepEqual(e.destinations[0]?.loadBalancer, { simple: 'ROUND_ROBIN' });
    assert.equal(e.destinations[0]?.destinationRule, 'default/reviews');
    assert.equal(e.destinations[0]?.tls, 'ISTIO_MUTUAL');
    assert.deepEqual(e.destinations[0]?.endpoints, [{ address: '127.0.0.1', port: 19082, workload: 'default/reviews-v1' }]);
    assert.equal(e.explanation, 'VirtualService default/reviews, route http[2] (no match conditions)');
    assert.deepEqual(e.match, { index: null, conditions: [] });
    assert.equal(e.egress, 'allowed');
    assert.deepEqual(e.notes, []);
  });

  void it('header routing: end-user jason → v2, with the condition that held', () => {
    const e = check({ host: 'reviews', headers: new Map([['end-user', 'jason']]) });
    assert.equal(e.route, 'jason');
    assert.deepEqual(e.destinations.map((d) => [d.subset, d.weight]), [['v2', 100]]);
    assert.deepEqual(e.match, { index: 0, conditions: ['headers[end-user]: "jason" = exact "jason"'] });
    const other = check({ host: 'reviews', headers: new Map([['end-user', 'alice']]) });
    assert.equal(other.route, 2);
  });

  void it('resolves names as the workload\'s proxy does: short, namespaced, full, with or without the port', () => {
    for (const host of ['reviews', 'reviews.default', 'reviews.default.svc', 'reviews.default.svc.cluster.local', 'REVIEWS.default:9080']) {
      const e = check({ host });
      assert.equal(e.service?.host, 'reviews.default.svc.cluster.local', host);
      assert.equal(e.request.port, 9080, host);
    }
    assert.equal(check({ host: 'reviews', port: 9080 }).outcome, 'routed');
  });

  void it('explains why no route matched, route by route and match entry by match entry', () => {
    const e = check({ host: 'ratings', method: 'POST', path: '/ratings/1' });
    assert.equal(e.outcome, 'no-route');
    assert.equal(e.localReply, 404);
    assert.equal(e.virtualService, 'default/ratings');
    assert.equal(e.route, null);
    assert.deepEqual(e.destinations, []);
    assert.equal(e.egress, 'allowed');
    assert.deepEqual(e.noMatch, [
      { route: 'http[0]', failures: ['match[0] method: "POST" ≠ exact "GET"', 'match[1] headers[x-test]: absent ≠ exact "1"'] },
      { route: 'http[1]', failures: ['uri: "/ratings/1" ≠ exact "/old"'] },
      { route: 'http[2]', failures: ['uri: "/ratings/1" ≠ prefix "/health"'] },
    ]);
    assert.match(e.explanation, /^no route of VirtualService default\/ratings matched: route http\[0\]: match\[0\] method/);
  });

  void it('sourceLabels and sourceNamespace are the calling workload\'s', () => {
    const vs = net('VirtualService', 'reviews', 'default', '  hosts: [reviews]\n  http:\n  - match:\n    - sourceLabels: {app: ratings}\n    route:\n    - destination: {host: reviews, subset: v3}');
    const yaml = meshConfig('REGISTRY_ONLY') + BASE + vs;
    assert.equal(explainRoute(snapshotOf(yaml, 'default/ratings-v1'), { host: 'reviews' }).destinations[0]?.subset, 'v3');
    const e = explainRoute(snapshotOf(yaml), { host: 'reviews' });
    assert.equal(e.outcome, 'no-route');
    assert.deepEqual(e.noMatch, [{ route: 'http[0]', failures: ['sourceLabels[app]: "productpage" ≠ "ratings"'] }]);
  });

  void it('the default route when no VirtualService applies', () => {
    const e = check({ host: 'productpage' });
    assert.equal(e.virtualService, null);
    assert.equal(e.route, 'default');
    assert.deepEqual(e.destinations.map((d) => [d.host, d.subset, d.weight, d.loadBalancer]), [['productpage.default.svc.cluster.local', null, 100, { simple: 'LEAST_REQUEST' }]]);
    assert.equal(e.destinations[0]?.destinationRule, null);
  });
});

void describe('route explain: what the route does', () => {
  void it('Istio\'s default retries when the route sets none, and says so; no timeout', () => {
    const e = check({ host: 'reviews' });
    assert.equal(e.timeout, null);
    assert.deepEqual(e.retries, {
      attempts: 2,
      perTryTimeout: null,
      retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
      retriableStatusCodes: [],
      backoffBase: '25ms',
      retryIgnorePreviousHosts: true,
      default: true,
    });
    assert.equal(e.fault, null);
    assert.deepEqual(e.mirror, []);
  });

  void it('timeout, retries, fault, mirror and rewrite of a route', () => {
    const e = check({ host: 'ratings', path: '/ratings/7' });
    assert.equal(e.timeout, '10s');
    assert.deepEqual(e.retries, {
      attempts: 3,
      perTryTimeout: '2s',
      retryOn: ['5xx', 'connect-failure', 'retriable-status-codes'],
      retriableStatusCodes: [503],
      backoffBase: '25ms',
      // ratings hashes on a header: retries keep the key's endpoint, as in Istio.
      retryIgnorePreviousHosts: false,
      default: false,
    });
    assert.deepEqual(e.fault, { delay: { fixedDelay: '7s', percentage: 100 }, abort: { httpStatus: 500, percentage: 10 } });
    assert.deepEqual(e.mirror, [{ host: 'reviews.default.svc.cluster.local', subset: 'v3', port: 9080, percentage: 25, cluster: 'outbound|9080|v3|reviews.default.svc.cluster.local' }]);
    assert.deepEqual(e.rewrite, { uri: '/v2/ratings' });
    assert.deepEqual(e.destinations[0]?.loadBalancer, { consistentHash: { httpHeaderName: 'x-user' }, minimumRingSize: 1024 });
  });

  void it('connection pool and outlier detection of the destination cluster, in words too', () => {
    const d = check({ host: 'reviews' }).destinations[0];
    assert.deepEqual(d?.connectionPool, { maxConnections: 10, connectTimeoutMs: 2000, http1MaxPendingRequests: 5, maxRetries: 3 });
    assert.equal(describeConnectionPool(d?.connectionPool ?? {}), 'maxConnections 10, connectTimeout 2s, http1MaxPendingRequests 5, maxRetries 3 (beyond: 503, flag UO)');
    assert.equal(describeOutlierDetection(d?.outlierDetection ?? null), 'consecutive5xxErrors 3, interval 5s, baseEjectionTime 1m, maxEjectionPercent 10, minHealthPercent 0');
    assert.equal(describeOutlierDetection(null), 'off');
    assert.equal(describeConnectionPool({}), 'no limits (Envoy defaults)');
    assert.equal(describeLoadBalancer({ consistentHash: { httpCookie: { name: 'u', ttlMs: 60_000 } }, minimumRingSize: 1024 }), 'consistent hash on cookie u (ttl 1m) (ring ≥ 1024)');
  });

  void it('a redirect or direct response route: the local answer instead of destinations', () => {
    const redirect = check({ host: 'ratings:9080', path: '/old?x=1' });
    assert.equal(redirect.outcome, 'redirect');
    assert.deepEqual(redirect.redirect, { status: 302, location: 'http://ratings:9080/ratings/0?x=1' });
    assert.equal(redirect.localReply, 302);
    assert.deepEqual(redirect.destinations, []);
    assert.equal(redirect.retries, null);
    const direct = check({ host: 'ratings', path: '/health' });
    assert.equal(direct.outcome, 'direct-response');
    assert.deepEqual(direct.directResponse, { status: 200, body: 'ok' });
    assert.equal(direct.route, 2);
  });

  void it('a destination without endpoints gets a note: the proxy would answer 503', () => {
    const e = check({ host: 'reviews', path: '/canary' });
    assert.equal(e.outcome, 'routed');
    assert.deepEqual(e.destinations[0]?.endpoints, []);
    assert.match(e.notes[0] ?? '', /subset v4 has no endpoints .*503 no healthy upstream \(UH\)/);
  });

  void it('a TCP service port: the tcp route, no HTTP settings', () => {
    const e = check({ host: 'db.data:5432' });
    assert.equal(e.request.protocol, 'TCP');
    assert.equal(e.outcome, 'routed');
    assert.equal(e.virtualService, 'data/db');
    assert.equal(e.route, 0);
    assert.equal(e.explanation, 'VirtualService data/db, tcp route tcp[0] (match)');
    assert.deepEqual(e.destinations.map((d) => [d.host, d.port, d.cluster]), [['db.data.svc.cluster.local', 5432, 'outbound|5432||db.data.svc.cluster.local']]);
    assert.equal(e.retries, null);
    assert.equal(e.timeout, null);
    // --tcp on an HTTP port takes the tcp routes (the default route here).
    const forced = check({ host: 'reviews', tcp: true });
    assert.equal(forced.request.protocol, 'TCP');
    assert.equal(forced.virtualService, 'default/reviews');
    assert.equal(forced.route, 0);
  });
});

void describe('route explain: egress', () => {
  void it('REGISTRY_ONLY blocks an unregistered host, naming the setting and its source', () => {
    const e = check({ host: 'www.example.com' });
    assert.equal(e.outcome, 'blocked');
    assert.equal(e.egress, 'www.example.com is not a registered service and outboundTrafficPolicy REGISTRY_ONLY (MeshConfig mesh)');
    assert.deepEqual(e.egressPolicy, { allowed: false, reason: e.egress, mode: 'REGISTRY_ONLY', source: 'MeshConfig mesh' });
    assert.equal(e.localReply, 502);
    assert.equal(e.virtualService, null);
    assert.deepEqual(e.destinations, []);
    assert.equal(e.service, null);
  });

  void it('a MESH_EXTERNAL ServiceEntry host is registered: allowed, plain (no mTLS), reached at its DNS name', () => {
    const e = check({ host: 'httpbin.org', path: '/get' });
    assert.equal(e.outcome, 'routed');
    assert.equal(e.egress, 'allowed');
    assert.equal(e.egressPolicy.reason, 'httpbin.org is a registered service');
    assert.deepEqual(e.destinations.map((d) => [d.host, d.port, d.tls, d.location]), [['httpbin.org', 80, 'DISABLE', 'MESH_EXTERNAL']]);
    assert.equal(e.destinations[0]?.endpoints[0]?.address, 'httpbin.org');
  });

  void it('a registered name on a port it does not serve is unregistered to the proxy, with a hint', () => {
    const e = check({ host: 'reviews', port: 8080 });
    assert.equal(e.outcome, 'blocked');
    assert.match(e.notes[0] ?? '', /reviews\.default\.svc\.cluster\.local is registered but has no port 8080 \(its ports: 9080 http\)/);
  });

  void it('a short name of another namespace does not resolve, with a hint', () => {
    const e = check({ host: 'db', port: 5432 });
    assert.equal(e.outcome, 'blocked');
    assert.match(e.notes[0] ?? '', /short name db resolves only in the caller's namespace default \(db\.default\.svc\.cluster\.local\); did you mean db\.data\.svc\.cluster\.local\?/);
  });

  void it('ALLOW_ANY from a Sidecar passes an unregistered host through, and says where the setting came from', () => {
    const sidecar = net('Sidecar', 'open', 'default', '  workloadSelector:\n    labels: {app: productpage}\n  outboundTrafficPolicy: {mode: ALLOW_ANY}');
    const e = explainRoute(snapshotOf(meshConfig('REGISTRY_ONLY') + BASE + sidecar), { host: 'api.example.com:8080' });
    assert.equal(e.outcome, 'passthrough');
    assert.equal(e.egress, 'allowed');
    assert.deepEqual(e.egressPolicy, { allowed: true, reason: 'api.example.com is not registered; outboundTrafficPolicy ALLOW_ANY (Sidecar default/open) passes it through', mode: 'ALLOW_ANY', source: 'Sidecar default/open' });
    assert.deepEqual(e.destinations.map((d) => [d.host, d.port, d.cluster, d.weight]), [['api.example.com', 8080, 'PassthroughCluster', 100]]);
    assert.equal(e.retries, null);
  });

  void it('without MeshConfig or Sidecar: Istio\'s default, ALLOW_ANY', () => {
    const e = explainRoute(snapshotOf(BASE), { host: 'api.example.com' });
    assert.equal(e.outcome, 'passthrough');
    assert.equal(e.egressPolicy.source, 'Istio default');
    assert.equal(e.request.port, 80);
  });
});
