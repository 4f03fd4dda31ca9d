import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfigSet, parseConfigText } from '../../../src/api/config-set.js';
import { compileSnapshot, snapshotVersions } from '../../../src/mesh/compile.js';
import { buildRegistry } from '../../../src/mesh/registry.js';
import type { ClusterSnapshot, ProxySnapshot, RouteTableSnapshot, TrafficSnapshot, TrustSnapshot } from '../../../src/mesh/snapshot.js';

const TRUST: TrustSnapshot = { trustDomain: 'cluster.local', bundle: { keys: [] }, revocations: { sequence: 0, serials: [], identities: [] } };
const NET = 'networking.istio.io/v1';

const doc = (kind: string, name: string, namespace: string, spec: string, api = NET, meta = ''): string =>
  `apiVersion: ${api}\nkind: ${kind}\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n${meta}spec:\n${spec}\n---\n`;

/** bookinfo-like: reviews v1/v2 in `shop`, a client in `shop` and one in `other`, an external API. */
const BASE =
  doc('WorkloadEntry', 'client', 'shop', '  address: 10.0.0.9\n  labels: {app: client}') +
  doc('WorkloadEntry', 'outsider', 'other', '  address: 10.0.0.8\n  labels: {app: outsider}') +
  doc('WorkloadEntry', 'reviews-v1', 'shop', '  address: 10.0.0.1\n  labels: {app: reviews, version: v1}') +
  doc('WorkloadEntry', 'reviews-v2', 'shop', '  address: 10.0.0.2\n  labels: {app: reviews, version: v2}') +
  doc('ServiceEntry', 'reviews', 'shop', '  hosts: [reviews.shop.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - {number: 9080, name: http, protocol: HTTP}\n  - {number: 9090, name: tcp-admin, protocol: TCP}\n  workloadSelector:\n    labels: {app: reviews}') +
  doc('ServiceEntry', 'api', 'shop', '  hosts: [api.example.com]\n  location: MESH_EXTERNAL\n  resolution: DNS\n  ports:\n  - {number: 443, name: https, protocol: TLS}');

const SUBSETS = doc('DestinationRule', 'reviews', 'shop', '  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}');

function load(yaml: string): ConfigSet {
  const result = parseConfigText(yaml, 'test.yaml');
  assert.deepEqual(result.errors, []);
  assert.ok(result.config);
  return result.config;
}

function compile(yaml: string, workload = 'shop/client'): ProxySnapshot {
  const config = load(yaml);
  const snapshot = compileSnapshot(config, buildRegistry(config), workload, TRUST);
  assert.ok(snapshot);
  return snapshot;
}

function traffic(yaml: string, workload?: string): TrafficSnapshot {
  const compiled = compile(yaml, workload).outbound.traffic;
  assert.ok(compiled);
  return compiled;
}

function table(t: TrafficSnapshot, host: string, port: number): RouteTableSnapshot {
  const found = t.routeTables.find((r) => r.host === host && r.port === port);
  assert.ok(found, `no route table for ${host}:${port}`);
  return found;
}

function cluster(t: TrafficSnapshot, name: string): ClusterSnapshot {
  const found = t.clusters.find((c) => c.name === name);
  assert.ok(found, `no cluster ${name}; have ${t.clusters.map((c) => c.name).join(', ')}`);
  return found;
}

const REVIEWS = 'reviews.shop.svc.cluster.local';

describe('traffic compile', () => {
  it('gives every service port a default route to all endpoints, with Istio defaults', () => {
    const t = traffic(BASE);
    const reviews = table(t, REVIEWS, 9080);
    assert.equal(reviews.virtualService, undefined);
    assert.deepEqual(reviews.http.map((r) => r.route), [[{ cluster: `outbound|9080||${REVIEWS}`, host: REVIEWS, port: 9080, weight: 100 }]]);
    assert.equal(reviews.http[0]?.retries, undefined, 'no retries field: the proxy applies Istio’s default policy');
    const c = cluster(t, `outbound|9080||${REVIEWS}`);
    assert.deepEqual(c.endpoints.map((e) => e.workload), ['shop/reviews-v1', 'shop/reviews-v2']);
    assert.deepEqual(c.loadBalancer, { simple: 'LEAST_REQUEST' });
    assert.deepEqual(c.tls, { mode: 'ISTIO_MUTUAL' });
    assert.equal(c.outlierDetection, undefined);
    assert.equal(t.outboundTrafficPolicy, 'ALLOW_ANY');
    assert.equal(t.outboundTrafficPolicySource, 'Istio default');
  });

  it('splits by weight between subsets, resolving short names in the VirtualService namespace', () => {
    const vs = doc('VirtualService', 'reviews', 'shop', '  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 80\n    - destination: {host: reviews, subset: v2}\n      weight: 20');
    const t = traffic(BASE + SUBSETS + vs);
    const reviews = table(t, REVIEWS, 9080);
    assert.equal(reviews.virtualService, 'shop/reviews');
    assert.deepEqual(reviews.http[0]?.route.map((d) => [d.cluster, d.subset, d.weight]), [
      [`outbound|9080|v1|${REVIEWS}`, 'v1', 80],
      [`outbound|9080|v2|${REVIEWS}`, 'v2', 20],
    ]);
    assert.deepEqual(cluster(t, `outbound|9080|v2|${REVIEWS}`).endpoints.map((e) => e.workload), ['shop/reviews-v2']);
    assert.equal(cluster(t, `outbound|9080|v2|${REVIEWS}`).destinationRule, 'shop/reviews');
    // The TCP port has no tcp routes in the VirtualService: it keeps the default.
    assert.equal(table(t, REVIEWS, 9090).tcp[0]?.route[0]?.cluster, `outbound|9090||${REVIEWS}`);
  });

  it('keeps matches, header names lower-case, and converts retries, timeouts, faults and mirrors', () => {
    const vs = doc(
      'VirtualService',
      'reviews',
      'shop',
      [
        '  hosts: [reviews.shop.svc.cluster.local]',
        '  http:',
        '  - name: jason',
        '    match:',
        '    - headers: {End-User: {exact: jason}}',
        '    route:',
        '    - destination: {host: reviews, subset: v2}',
        '    timeout: 1.5s',
        '    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,409,reset"}',
        '    fault:',
        '      delay: {fixedDelay: 7s}',
        '      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 10}}',
        '    mirror: {host: reviews, subset: v1}',
        '  - route:',
        '    - destination: {host: reviews, subset: v1}',
        '    retries: {attempts: 0}',
      ].join('\n'),
    );
    const [jason, rest] = table(traffic(BASE + SUBSETS + vs), REVIEWS, 9080).http;
    assert.deepEqual(jason?.match, [{ headers: { 'end-user': { exact: 'jason' } } }]);
    assert.equal(jason?.name, 'jason');
    assert.equal(jason?.timeoutMs, 1500);
    assert.deepEqual(jason?.retries, { attempts: 3, perTryTimeoutMs: 500, retryOn: ['5xx', 'reset', 'retriable-status-codes'], retriableStatusCodes: [409], backoffBaseMs: 25 });
    // A delay without a percentage delays nothing (Istio); gRPC status names become codes.
    assert.deepEqual(jason?.fault, { delay: { fixedDelayMs: 7000, percentage: 0 }, abort: { grpcStatus: 14, percentage: 10 } });
    assert.deepEqual(jason?.mirrors, [{ cluster: `outbound|9080|v1|${REVIEWS}`, host: REVIEWS, subset: 'v1', port: 9080, percentage: 100 }]);
    // `attempts: 0` disables retries, as in Istio (validation rejects other retry fields without attempts).
    assert.equal(rest?.retries?.attempts, 0);
    assert.equal(rest?.index, 1);
  });

  it('layers DestinationRule policies: rule, its port level, the subset, the subset port level', () => {
    const dr = doc(
      'DestinationRule',
      'reviews',
      'shop',
      [
        '  host: reviews.shop.svc.cluster.local',
        '  trafficPolicy:',
        '    loadBalancer: {simple: ROUND_ROBIN}',
        '    connectionPool: {tcp: {maxConnections: 10, connectTimeout: 2s}, http: {http1MaxPendingRequests: 1, maxRetries: 2}}',
        '    outlierDetection: {consecutive5xxErrors: 3}',
        '    portLevelSettings:',
        '    - port: {number: 9090}',
        '      loadBalancer: {simple: RANDOM}',
        '  subsets:',
        '  - name: v1',
        '    labels: {version: v1}',
        '  - name: v2',
        '    labels: {version: v2}',
        '    trafficPolicy:',
        '      loadBalancer:',
        '        consistentHash: {httpHeaderName: X-User}',
      ].join('\n'),
    );
    const vs = doc('VirtualService', 'reviews', 'shop', '  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v2}\n  tcp:\n  - route:\n    - destination: {host: reviews, subset: v1, port: {number: 9090}}');
    const t = traffic(BASE + dr + vs);
    const base = cluster(t, `outbound|9080||${REVIEWS}`);
    assert.deepEqual(base.loadBalancer, { simple: 'ROUND_ROBIN' });
    assert.deepEqual(base.connectionPool, { maxConnections: 10, connectTimeoutMs: 2000, http1MaxPendingRequests: 1, maxRetries: 2 });
    assert.deepEqual(base.outlierDetection, { consecutive5xxErrors: 3, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10, minHealthPercent: 0 });
    assert.deepEqual(cluster(t, `outbound|9090||${REVIEWS}`).loadBalancer, { simple: 'RANDOM' });
    assert.deepEqual(cluster(t, `outbound|9090|v1|${REVIEWS}`).loadBalancer, { simple: 'RANDOM' });
    assert.deepEqual(cluster(t, `outbound|9080|v2|${REVIEWS}`).loadBalancer, { consistentHash: { httpHeaderName: 'x-user' }, minimumRingSize: 1024 });
    assert.deepEqual(cluster(t, `outbound|9080|v2|${REVIEWS}`).connectionPool.maxConnections, 10, 'fields the subset does not set come from the rule');
  });

  it('applies only VirtualServices bound to the mesh and exported to the caller', () => {
    const vs =
      doc('VirtualService', 'private', 'shop', '  hosts: [reviews]\n  exportTo: ["."]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}') +
      doc('VirtualService', 'edge', 'shop', '  hosts: [api.example.com]\n  gateways: [shop/ingress]\n  http:\n  - directResponse: {status: 418}');
    const own = traffic(BASE + SUBSETS + vs);
    assert.equal(table(own, REVIEWS, 9080).virtualService, 'shop/private');
    assert.equal(table(own, 'api.example.com', 443).virtualService, undefined);
    const other = traffic(BASE + SUBSETS + vs, 'other/outsider');
    assert.equal(table(other, REVIEWS, 9080).virtualService, undefined);
  });

  it('narrows the services a workload sees with its Sidecar, and takes its egress mode', () => {
    const sidecar = doc('Sidecar', 'default', 'shop', '  egress:\n  - hosts: ["./reviews.shop.svc.cluster.local"]\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}');
    const snapshot = compile(BASE + sidecar);
    assert.deepEqual(snapshot.outbound.services.map((s) => s.host), [REVIEWS]);
    assert.deepEqual(snapshot.outbound.traffic?.routeTables.map((r) => r.host), [REVIEWS, REVIEWS]);
    assert.equal(snapshot.outbound.traffic?.outboundTrafficPolicy, 'REGISTRY_ONLY');
    assert.equal(snapshot.outbound.traffic?.outboundTrafficPolicySource, 'Sidecar shop/default');
    // The other namespace has no Sidecar of its own and the root namespace none either: it sees everything.
    assert.equal(compile(BASE + sidecar, 'other/outsider').outbound.services.length, 2);
  });

  it('falls back to the root namespace Sidecar, and to the MeshConfig mode', () => {
    const root = doc('Sidecar', 'default', 'istio-system', '  egress:\n  - hosts: ["*/api.example.com"]');
    const mesh = 'apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec:\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n';
    const snapshot = compile(BASE + root + mesh, 'other/outsider');
    assert.deepEqual(snapshot.outbound.services.map((s) => s.host), ['api.example.com']);
    assert.equal(snapshot.outbound.traffic?.outboundTrafficPolicySource, 'MeshConfig mesh');
  });

  it('reaches an external DNS service at its own name, with TLS origination from its DestinationRule', () => {
    const dr = doc('DestinationRule', 'api', 'shop', '  host: api.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE}');
    const api = cluster(traffic(BASE + dr), 'outbound|443||api.example.com');
    assert.equal(api.location, 'MESH_EXTERNAL');
    assert.equal(api.resolution, 'DNS');
    assert.deepEqual(api.endpoints.map((e) => [e.address, e.ports]), [['api.example.com', { https: 443 }]]);
    assert.deepEqual(api.tls, { mode: 'SIMPLE', sni: 'api.example.com' });
  });

  it("looks DestinationRules up by namespace first (the caller's, then the service's), then by host", () => {
    const callerWildcard = doc('DestinationRule', 'all-local', 'other', '  host: "*.shop.svc.cluster.local"\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM}');
    const serviceExact = doc('DestinationRule', 'reviews', 'shop', '  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}');
    const fromOther = cluster(traffic(BASE + callerWildcard + serviceExact, 'other/outsider'), `outbound|9080||${REVIEWS}`);
    assert.equal(fromOther.destinationRule, 'other/all-local');
    const fromShop = cluster(traffic(BASE + callerWildcard + serviceExact), `outbound|9080||${REVIEWS}`);
    assert.equal(fromShop.destinationRule, 'shop/reviews');
  });

  it('matches resource hosts by full name only, as Istio and validation do', () => {
    const vs = doc('VirtualService', 'reviews', 'shop', '  hosts: [reviews.shop]\n  http:\n  - route:\n    - destination: {host: reviews.shop.svc.cluster.local}');
    assert.equal(table(traffic(BASE + vs), REVIEWS, 9080).virtualService, undefined);
  });

  it('sends to an external host on its targetPort (TLS origination from port 80 to 443)', () => {
    const se = doc('ServiceEntry', 'web', 'shop', '  hosts: [web.example.com]\n  resolution: DNS\n  ports:\n  - {number: 80, name: http, protocol: HTTP, targetPort: 443}');
    const dr = doc('DestinationRule', 'web', 'shop', '  host: web.example.com\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 80}\n      tls: {mode: SIMPLE}');
    const web = cluster(traffic(BASE + se + dr), 'outbound|80||web.example.com');
    assert.deepEqual(web.endpoints.map((e) => [e.address, e.ports]), [['web.example.com', { http: 443 }]]);
    assert.deepEqual(web.tls, { mode: 'SIMPLE', sni: 'web.example.com' });
  });

  it('gives each workload the RateLimits that select it', () => {
    const limit = (name: string, namespace: string, selector: string): string =>
      doc('RateLimit', name, namespace, `${selector}  rules:\n  - per: caller\n    tokenBucket: {maxTokens: 5, fillInterval: 1s}`, 'trellis.dev/v1alpha1');
    const yaml = BASE + limit('reviews-only', 'shop', '  selector: {matchLabels: {app: reviews}}\n') + limit('mesh-wide', 'istio-system', '') + limit('elsewhere', 'other', '');
    assert.deepEqual(compile(yaml, 'shop/reviews-v1').inbound.rateLimits?.map((r) => r.source), ['istio-system/mesh-wide', 'shop/reviews-only']);
    assert.deepEqual(compile(yaml, 'shop/reviews-v1').inbound.rateLimits?.[1]?.rules, [{ match: {}, per: 'caller', maxTokens: 5, tokensPerFill: 1, fillIntervalMs: 1000 }]);
    assert.deepEqual(compile(yaml, 'shop/client').inbound.rateLimits?.map((r) => r.source), ['istio-system/mesh-wide']);
  });

  it('is deterministic: document order changes no version', () => {
    const vs = doc('VirtualService', 'reviews', 'shop', '  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}');
    const docs = (BASE + SUBSETS + vs).split('---\n').filter((d) => d.trim() !== '');
    const forward = snapshotVersions(compile(docs.join('---\n')));
    const backward = snapshotVersions(compile([...docs].reverse().join('---\n')));
    assert.deepEqual(forward, backward);
  });
});
