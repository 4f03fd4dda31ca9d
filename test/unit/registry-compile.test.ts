import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfigSet, parseConfigText } from '../../src/api/config-set.js';
import { compileSnapshot, snapshotVersions } from '../../src/mesh/compile.js';
import { buildRegistry, hostAliases, portProtocol, servicesVisibleTo } from '../../src/mesh/registry.js';
import type { TrustSnapshot } from '../../src/mesh/snapshot.js';
import { canonicalJson, contentVersion } from '../../src/mesh/version.js';

const TRUST: TrustSnapshot = { trustDomain: 'cluster.local', bundle: { keys: [] }, revocations: { sequence: 0, serials: [], identities: [] } };

function config(yaml: string): ConfigSet {
  const result = parseConfigText(yaml, 'test.yaml');
  assert.deepEqual(result.errors, []);
  assert.ok(result.config);
  return result.config;
}

const doc = (kind: string, api: string, name: string, namespace: string, spec: string, extraMeta = ''): string =>
  `apiVersion: ${api}\nkind: ${kind}\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n${extraMeta}spec:\n${spec}\n---\n`;
const we = (name: string, namespace: string, spec: string): string => doc('WorkloadEntry', 'networking.istio.io/v1', name, namespace, spec);
const se = (name: string, namespace: string, spec: string, extraMeta = ''): string => doc('ServiceEntry', 'networking.istio.io/v1', name, namespace, spec, extraMeta);

const BASE =
  we('reviews-v1', 'shop', '  address: 10.0.0.1\n  serviceAccount: reviews\n  labels: {app: reviews, version: v1}\n  ports: {http: 9080}') +
  we('reviews-v2', 'shop', '  address: 10.0.0.2\n  labels: {app: reviews, version: v2}\n  weight: 3') +
  we('reviews-other-ns', 'other', '  address: 10.0.0.3\n  labels: {app: reviews}') +
  se('reviews', 'shop', '  hosts: [reviews.shop.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - {number: 80, name: http, targetPort: 8080}\n  - {number: 9090, name: grpc-admin, protocol: GRPC}\n  workloadSelector:\n    labels: {app: reviews}\n  subjectAltNames: [spiffe://cluster.local/ns/shop/sa/legacy]');

describe('registry', () => {
  it('selects WorkloadEntries in the ServiceEntry namespace and resolves ports as Istio does', () => {
    const registry = buildRegistry(config(BASE));
    const [reviews] = registry.services;
    assert.equal(reviews?.host, 'reviews.shop.svc.cluster.local');
    assert.deepEqual(reviews?.endpoints.map((e) => e.workload), ['shop/reviews-v1', 'shop/reviews-v2']);
    // v1 names its http port: that wins; v2 does not: targetPort, else the service port number.
    assert.deepEqual(reviews?.endpoints.map((e) => e.ports), [{ http: 9080, 'grpc-admin': 9090 }, { http: 8080, 'grpc-admin': 9090 }]);
    assert.equal(reviews?.endpoints[1]?.weight, 3);
    assert.deepEqual(reviews?.endpoints.map((e) => e.identity), ['spiffe://cluster.local/ns/shop/sa/reviews', 'spiffe://cluster.local/ns/shop/sa/default']);
    assert.deepEqual(reviews?.identities, ['spiffe://cluster.local/ns/shop/sa/default', 'spiffe://cluster.local/ns/shop/sa/legacy', 'spiffe://cluster.local/ns/shop/sa/reviews']);
    assert.deepEqual(reviews?.ports.map((p) => [p.name, p.protocol, p.targetPortName]), [['http', 'HTTP', 'http'], ['grpc-admin', 'GRPC', 'grpc-admin']]);
  });

  it('takes inline endpoints, and trusts only subjectAltNames outside the mesh', () => {
    const registry = buildRegistry(config(se('payments', 'shop', '  hosts: [pay.example.com, pay2.example.com]\n  resolution: DNS\n  ports:\n  - {number: 443, name: https}\n  endpoints:\n  - {address: pay.example.com, serviceAccount: pay}\n  subjectAltNames: [spiffe://partner.org/pay]')));
    assert.deepEqual(registry.services.map((s) => s.host), ['pay.example.com', 'pay2.example.com']);
    const [pay] = registry.services;
    assert.equal(pay?.location, 'MESH_EXTERNAL');
    assert.deepEqual(pay?.endpoints[0]?.ports, { https: 443 });
    assert.equal(pay?.endpoints[0]?.identity, 'spiffe://cluster.local/ns/shop/sa/pay');
    assert.deepEqual(pay?.identities, ['spiffe://partner.org/pay']);
    assert.equal(pay?.ports[0]?.protocol, 'TCP');
  });

  it("limits visibility with exportTo and resolves a host declared twice: own namespace, then oldest", () => {
    const yaml =
      se('a', 'shop', '  hosts: [api.example.com]\n  exportTo: ["."]') +
      se('b', 'other', '  hosts: [api.example.com]', '  creationTimestamp: "2024-01-02T00:00:00Z"\n') +
      se('c', 'third', '  hosts: [api.example.com]', '  creationTimestamp: "2024-01-01T00:00:00Z"\n') +
      se('d', 'third', '  hosts: [only.example.com]\n  exportTo: [shop]');
    const registry = buildRegistry(config(yaml));
    const sources = (ns: string): string[] => servicesVisibleTo(registry, ns).map((s) => `${s.host}=${s.source}`);
    assert.deepEqual(sources('shop'), ['api.example.com=ServiceEntry shop/a', 'only.example.com=ServiceEntry third/d']);
    assert.deepEqual(sources('other'), ['api.example.com=ServiceEntry other/b']);
    assert.deepEqual(sources('elsewhere'), ['api.example.com=ServiceEntry third/c']);
  });

  it('gives Kubernetes-style hosts their short names, the bare name only in the same namespace', () => {
    assert.deepEqual(hostAliases('reviews.shop.svc.cluster.local', 'shop'), ['reviews', 'reviews.shop', 'reviews.shop.svc']);
    assert.deepEqual(hostAliases('reviews.shop.svc.cluster.local', 'other'), ['reviews.shop', 'reviews.shop.svc']);
    assert.deepEqual(hostAliases('api.example.com', 'shop'), []);
  });

  it('derives protocols from the declaration, else the port name, else UNKNOWN', () => {
    assert.equal(portProtocol({ protocol: 'http2', name: 'x' }), 'HTTP2');
    assert.equal(portProtocol({ protocol: 'HTTPS', name: 'http' }), 'TCP');
    assert.equal(portProtocol({ protocol: 'GRPC-WEB', name: 'x' }), 'HTTP');
    assert.equal(portProtocol({ name: 'grpc-api' }), 'GRPC');
    assert.equal(portProtocol({ name: 'http' }), 'HTTP');
    assert.equal(portProtocol({ name: 'tcp-db' }), 'TCP');
    assert.equal(portProtocol({ name: 'mongo' }), 'TCP');
    assert.equal(portProtocol({ name: 'web' }), 'UNKNOWN');
  });
});

describe('compile', () => {
  const PEER_AUTHN =
    doc('PeerAuthentication', 'security.istio.io/v1', 'mesh', 'istio-system', '  mtls: {mode: STRICT}') +
    doc('PeerAuthentication', 'security.istio.io/v1', 'reviews', 'shop', '  selector:\n    matchLabels: {app: reviews}\n  portLevelMtls:\n    "9090": {mode: PERMISSIVE}');

  it('compiles a workload: inbound ports from the entry and its services, mTLS per port, visible services', () => {
    const authz =
      doc('AuthorizationPolicy', 'security.istio.io/v1', 'reviews-only', 'shop', '  selector:\n    matchLabels: {app: reviews}\n  rules:\n  - from:\n    - source: {principals: [cluster.local/ns/shop/sa/web]}') +
      doc('AuthorizationPolicy', 'security.istio.io/v1', 'other-app', 'shop', '  selector:\n    matchLabels: {app: ratings}');
    const cfg = config(BASE + PEER_AUTHN + authz);
    const snapshot = compileSnapshot(cfg, buildRegistry(cfg), 'shop/reviews-v1', TRUST);
    assert.ok(snapshot);
    assert.equal(snapshot.workload.identity, 'spiffe://cluster.local/ns/shop/sa/reviews');
    assert.deepEqual(snapshot.inbound.ports, [
      { name: 'http', port: 9080, protocol: 'HTTP', mtls: 'STRICT' },
      { name: 'grpc-admin', port: 9090, protocol: 'GRPC', mtls: 'PERMISSIVE' },
    ]);
    assert.deepEqual(snapshot.outbound.services.map((s) => [s.host, s.aliases.length]), [['reviews.shop.svc.cluster.local', 3]]);
    // The policy part is src/policy's selection for this workload.
    assert.deepEqual(snapshot.inbound.policy.authorization.policies.map((p) => `${p.namespace}/${p.name}`), ['shop/reviews-only']);
    assert.equal(snapshot.inbound.policy.mtls.mode, 'STRICT');
    assert.deepEqual(snapshot.inbound.policy.mtls.ports, { '9090': 'PERMISSIVE' });
    assert.equal(compileSnapshot(cfg, buildRegistry(cfg), 'shop/nope', TRUST), undefined);
    // Another namespace without any PeerAuthentication of its own inherits the mesh-wide mode.
    assert.deepEqual(compileSnapshot(cfg, buildRegistry(cfg), 'other/reviews-other-ns', TRUST)?.inbound.ports, []);
  });

  it('is deterministic: the order of documents does not change any version', () => {
    const docs = (BASE + PEER_AUTHN).split('---\n').filter((d) => d.trim() !== '');
    const a = config(docs.join('---\n'));
    const b = config([...docs].reverse().join('---\n'));
    const va = snapshotVersions(compileSnapshot(a, buildRegistry(a), 'shop/reviews-v2', TRUST) ?? assert.fail());
    const vb = snapshotVersions(compileSnapshot(b, buildRegistry(b), 'shop/reviews-v2', TRUST) ?? assert.fail());
    assert.deepEqual(va, vb);
  });

  it('changes only the versions of the types whose content changed', () => {
    const before = config(BASE);
    const after = config(BASE.replace('ports: {http: 9080}', 'ports: {http: 9081}'));
    const v = (cfg: ConfigSet, workload: string) => snapshotVersions(compileSnapshot(cfg, buildRegistry(cfg), workload, TRUST) ?? assert.fail());
    const [b1, a1] = [v(before, 'shop/reviews-v1'), v(after, 'shop/reviews-v1')];
    assert.deepEqual(Object.keys(b1).filter((t) => b1[t as keyof typeof b1] !== a1[t as keyof typeof a1]).sort(), ['inbound', 'outbound']);
    const [b2, a2] = [v(before, 'shop/reviews-v2'), v(after, 'shop/reviews-v2')];
    assert.deepEqual(Object.keys(b2).filter((t) => b2[t as keyof typeof b2] !== a2[t as keyof typeof a2]), ['outbound']);
  });

  it('hashes canonical JSON: key order does not matter, values do', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 1, e: 2 }] } }), '{"a":{"c":[3,{"e":2,"f":1}],"d":2},"b":1}');
    assert.equal(contentVersion({ a: 1, b: 2 }), contentVersion({ b: 2, a: 1 }));
    assert.notEqual(contentVersion({ a: 1 }), contentVersion({ a: 2 }));
  });
});
