import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTrellisError } from '../../../src/api/errors.js';
import { policiesForWorkload, type WorkloadAuthzPolicies } from '../../../src/policy/authz-policies.js';
import { buildAuthorizer } from '../../../src/policy/authorizer.js';
import { API, authorizerFor, config, plaintext, policy, request } from '../../helpers/policy.js';

/** Istio's evaluation order and scoping: CUSTOM → DENY → ALLOW, AUDIT, dry-run, defaults, TCP. */

const MESH_DENY = 'apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec: {defaultAuthorization: DENY}\n';
const allowAll = (name = 'allow-all', extra: Parameters<typeof policy>[2] = {}): string => policy(name, 'rules:\n- {}', extra);
const denyPath = (name: string, path: string, extra: Parameters<typeof policy>[2] = {}): string =>
  policy(name, `action: DENY\nrules:\n- to: [{operation: {paths: [${JSON.stringify(path)}]}}]`, extra);

void describe('precedence', () => {
  void it('DENY beats ALLOW', () => {
    const a = authorizerFor(allowAll() + denyPath('deny-admin', '/admin*'));
    const decision = a.evaluate(request({ http: { path: '/admin/users' } }));
    assert.deepEqual([decision.decision, decision.policy, decision.action, decision.rule], ['DENY', 'shop/deny-admin', 'DENY', 0]);
    assert.equal(a.evaluate(request({ http: { path: '/shop' } })).decision, 'ALLOW');
  });

  void it('with no policy at all, the default is ALLOW (as in Istio)', () => {
    const decision = authorizerFor('').evaluate(request());
    assert.deepEqual([decision.decision, decision.policy], ['ALLOW', null]);
    assert.match(decision.reason, /no ALLOW policy applies to workload shop\/api-1/);
  });

  void it('defaultAuthorization DENY denies a workload without ALLOW policies', () => {
    const decision = authorizerFor(MESH_DENY).evaluate(request());
    assert.deepEqual([decision.decision, decision.policy], ['DENY', null]);
    assert.match(decision.reason, /defaultAuthorization is DENY/);
  });

  void it('defaultAuthorization DENY still lets ALLOW policies allow', () => {
    assert.equal(authorizerFor(MESH_DENY + allowAll()).evaluate(request()).decision, 'ALLOW');
  });

  void it('defaultAuthorization DENY: a DENY-only workload is denied by default', () => {
    const decision = authorizerFor(MESH_DENY + denyPath('d', '/admin')).evaluate(request());
    assert.equal(decision.decision, 'DENY');
  });

  void it('an empty spec allows nothing', () => {
    const decision = authorizerFor(policy('allow-nothing', '{}')).evaluate(request());
    assert.equal(decision.decision, 'DENY');
    assert.match(decision.reason, /have no rules, so they allow nothing/);
  });

  void it('rules: [{}] matches every request', () => {
    const a = authorizerFor(allowAll());
    assert.equal(a.evaluate(plaintext({ sourceIp: '192.0.2.1', http: { method: 'DELETE', path: '/x' } })).decision, 'ALLOW');
    assert.equal(a.evaluate(request({ tcp: true })).decision, 'ALLOW');
  });

  void it('a DENY rules: [{}] denies every request', () => {
    const decision = authorizerFor(allowAll() + policy('deny-all', 'action: DENY\nrules:\n- {}')).evaluate(request());
    assert.equal(decision.policy, 'shop/deny-all');
    assert.match(decision.reason, /the rule matches every request/);
  });
});

void describe('scoping', () => {
  void it('root-namespace policies apply to every namespace', () => {
    const a = authorizerFor(allowAll() + denyPath('mesh-deny', '/debug*', { namespace: 'istio-system' }));
    const decision = a.evaluate(request({ http: { path: '/debug/pprof' } }));
    assert.equal(decision.policy, 'istio-system/mesh-deny');
  });

  void it('a selector in the root namespace selects workloads of all namespaces', () => {
    const yaml = policy('v1-only', 'selector: {matchLabels: {version: v2}}\nrules:\n- {}', { namespace: 'istio-system' });
    assert.equal(authorizerFor(yaml).evaluate(request()).decision, 'ALLOW', 'v2 selector does not select a v1 workload: default');
    const selected = policy('v1-nothing', 'selector: {matchLabels: {version: v1}}', { namespace: 'istio-system' });
    assert.equal(authorizerFor(selected).evaluate(request()).decision, 'DENY');
  });

  void it('the root namespace follows MeshConfig.rootNamespace', () => {
    const mesh = 'apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec: {rootNamespace: mesh-root}\n';
    const yaml = mesh + policy('nothing', '{}', { namespace: 'mesh-root' }) + policy('other', '{}', { namespace: 'istio-system' });
    const set = policiesForWorkload(config(yaml), API);
    assert.deepEqual(set.policies.map((p) => `${p.namespace}/${p.name}`), ['mesh-root/nothing']);
  });

  void it('policies of another namespace do not apply', () => {
    assert.equal(authorizerFor(policy('nothing', '{}', { namespace: 'web' })).evaluate(request()).decision, 'ALLOW');
  });

  void it('selector scoping by workload labels', () => {
    const yaml = policy('web-only', 'selector: {matchLabels: {app: web}}');
    assert.equal(authorizerFor(yaml).evaluate(request()).decision, 'ALLOW', 'not selected: no policy applies');
    assert.equal(authorizerFor(policy('api-only', 'selector: {matchLabels: {app: api, version: v1}}')).evaluate(request()).decision, 'DENY');
  });

  void it('targetRefs policies never apply to sidecar workloads', () => {
    const yaml = policy('gw', 'targetRefs:\n- {kind: Gateway, group: gateway.networking.k8s.io, name: gw}\naction: DENY\nrules:\n- {}');
    assert.equal(authorizerFor(yaml).evaluate(request()).decision, 'ALLOW');
  });

  void it('lists root-namespace policies first, then by namespace and name', () => {
    const yaml = allowAll('b') + allowAll('a') + allowAll('z', { namespace: 'istio-system' });
    const set = policiesForWorkload(config(yaml), API);
    assert.deepEqual(set.policies.map((p) => `${p.namespace}/${p.name}`), ['istio-system/z', 'shop/a', 'shop/b']);
  });
});

void describe('dry-run and audit', () => {
  const dry = { annotations: { 'istio.io/dry-run': 'true' } };

  void it('a dry-run DENY policy is reported, never enforced', () => {
    const a = authorizerFor(allowAll() + denyPath('new-deny', '/admin*', dry));
    const decision = a.evaluate(request({ http: { path: '/admin' } }));
    assert.equal(decision.decision, 'ALLOW');
    assert.deepEqual(decision.dryRun, [{ policy: 'shop/new-deny', rule: 0, action: 'DENY', effect: 'would deny' }]);
    assert.equal(decision.dryRunDecision, 'DENY');
  });

  void it('a dry-run ALLOW policy does not count as an ALLOW policy', () => {
    const a = authorizerFor(policy('new-allow', 'rules:\n- to: [{operation: {paths: ["/public*"]}}]', dry));
    const miss = a.evaluate(request({ http: { path: '/private' } }));
    assert.equal(miss.decision, 'ALLOW', 'enforced: no ALLOW policy, so the default');
    assert.deepEqual(miss.dryRun, []);
    assert.equal(miss.dryRunDecision, 'DENY', 'enforcing it would deny this request');
    const hit = a.evaluate(request({ http: { path: '/public/x' } }));
    assert.deepEqual(hit.dryRun, [{ policy: 'shop/new-allow', rule: 0, action: 'ALLOW', effect: 'would allow' }]);
    assert.equal(hit.dryRunDecision, 'ALLOW');
  });

  void it('dry-run "false" is enforced', () => {
    const decision = authorizerFor(allowAll() + denyPath('d', '/admin', { annotations: { 'istio.io/dry-run': 'false' } })).evaluate(request({ http: { path: '/admin' } }));
    assert.equal(decision.decision, 'DENY');
    assert.equal(decision.dryRunDecision, undefined, 'no dry-run policies, no dry-run decision');
  });

  void it('AUDIT never changes the decision', () => {
    const audit = policy('audit-admin', 'action: AUDIT\nrules:\n- to: [{operation: {paths: ["/admin*"]}}]');
    const allowed = authorizerFor(allowAll() + audit).evaluate(request({ http: { path: '/admin' } }));
    assert.equal(allowed.decision, 'ALLOW');
    assert.deepEqual(allowed.audit, [{ policy: 'shop/audit-admin', rule: 0 }]);
    const denied = authorizerFor(policy('nothing', '{}') + audit).evaluate(request({ http: { path: '/admin' } }));
    assert.equal(denied.decision, 'DENY');
    assert.equal(denied.audit.length, 1);
    const alone = authorizerFor(audit).evaluate(request({ http: { path: '/admin' } }));
    assert.equal(alone.decision, 'ALLOW', 'AUDIT policies are not ALLOW policies');
  });
});

void describe('CUSTOM', () => {
  const custom = policy('ext', 'action: CUSTOM\nprovider: {name: opa}\nrules:\n- to: [{operation: {paths: ["/admin*"]}}]');

  void it('is evaluated first and fails closed when it matches (no providers yet)', () => {
    const decision = authorizerFor(allowAll() + custom).evaluate(request({ http: { path: '/admin' } }));
    assert.deepEqual([decision.decision, decision.policy, decision.action, decision.rule], ['DENY', 'shop/ext', 'CUSTOM', 0]);
    assert.match(decision.reason, /provider "opa".*fails closed/);
  });

  void it('does nothing when it does not match', () => {
    assert.equal(authorizerFor(allowAll() + custom).evaluate(request({ http: { path: '/shop' } })).decision, 'ALLOW');
  });
});

void describe('TCP connections (Istio rules for HTTP-only fields)', () => {
  void it('a DENY rule with only HTTP fields matches TCP traffic', () => {
    const decision = authorizerFor(allowAll() + denyPath('deny-admin', '/admin')).evaluate(request({ tcp: true }));
    assert.deepEqual([decision.decision, decision.policy], ['DENY', 'shop/deny-admin']);
    assert.match(decision.reason, /on TCP its HTTP fields \(paths\) are ignored/);
  });

  void it('a DENY rule scoped by port only matches TCP on that port', () => {
    const yaml = allowAll() + policy('d', 'action: DENY\nrules:\n- to: [{operation: {methods: ["POST"], ports: ["9090"]}}]');
    assert.equal(authorizerFor(yaml).evaluate(request({ tcp: true })).decision, 'ALLOW');
    assert.equal(authorizerFor(yaml).evaluate(request({ tcp: true, destinationPort: 9090 })).decision, 'DENY');
  });

  void it('a DENY source with only requestPrincipals matches every TCP source', () => {
    const yaml = allowAll() + policy('d', 'action: DENY\nrules:\n- from: [{source: {notRequestPrincipals: ["*"]}}]');
    assert.equal(authorizerFor(yaml).evaluate(request({ tcp: true })).decision, 'DENY');
  });

  void it('an ALLOW rule with HTTP fields never matches TCP', () => {
    const yaml = policy('p', 'rules:\n- from: [{source: {namespaces: ["web"]}}]\n  to: [{operation: {methods: ["GET"]}}]');
    const decision = authorizerFor(yaml).evaluate(request({ tcp: true }));
    assert.equal(decision.decision, 'DENY');
    assert.match(decision.nearest?.field ?? '', /needs HTTP fields \(methods\) and this is a TCP connection/);
  });

  void it('an ALLOW rule with only TCP fields matches TCP', () => {
    const yaml = policy('p', 'rules:\n- from: [{source: {namespaces: ["web"]}}]\n  to: [{operation: {ports: ["8080"]}}]\n  when: [{key: connection.sni, values: ["api.shop.svc"]}]');
    assert.equal(authorizerFor(yaml).evaluate(request({ tcp: true, sni: 'api.shop.svc' })).decision, 'ALLOW');
  });
});

void describe('explanations', () => {
  void it('names the nearest rule and the field that failed', () => {
    const yaml = policy('p', 'rules:\n- from: [{source: {namespaces: ["ops"]}}]\n  to: [{operation: {paths: ["/ops*"]}}]\n- to: [{operation: {methods: ["GET"], paths: ["/api/*"]}}]');
    const decision = authorizerFor(yaml).evaluate(request({ http: { path: '/admin' } }));
    assert.equal(decision.decision, 'DENY');
    assert.deepEqual(decision.nearest, { policy: 'shop/p', rule: 1, failed: 1, field: 'paths: "/admin" ≠ "/api/*"' });
    assert.equal(decision.reason, 'denied: no ALLOW policy matched; the nearest is shop/p rule 1, where paths: "/admin" ≠ "/api/*"');
  });

  void it('explains negative fields and absent attributes', () => {
    const a = authorizerFor(policy('p', 'rules:\n- from: [{source: {notIpBlocks: ["10.0.0.0/8"]}}]\n- from: [{source: {principals: ["cluster.local/ns/a/sa/b", "cluster.local/ns/c/sa/d"]}}]'));
    assert.equal(a.evaluate(request()).nearest?.field, 'notIpBlocks: "10.1.2.3" is in excluded "10.0.0.0/8"');
    const b = authorizerFor(policy('p', 'rules:\n- from: [{source: {principals: ["cluster.local/ns/a/sa/b", "cluster.local/ns/c/sa/d"]}}]'));
    assert.equal(b.evaluate(plaintext()).nearest?.field, 'principals: no peer identity (plaintext connection) ≠ any of "cluster.local/ns/a/sa/b", "cluster.local/ns/c/sa/d"');
  });
});

void describe('fail closed and serialization', () => {
  const a = authorizerFor(allowAll());

  void it('refuses requests it cannot parse', () => {
    for (const bad of [
      request({ sourceIp: 'not-an-ip' }),
      request({ destinationPort: 0 }),
      request({ sourcePrincipal: 'spiffe://cluster.local/ns/web/sa/frontend' }),
      request({ http: { method: 'get' } }),
      request({ http: { path: '/a?b=c' } }),
      request({ http: { path: 'relative' } }),
      request({ http: { host: 'a b' } }),
    ]) {
      const decision = a.evaluate(bad);
      assert.equal(decision.decision, 'DENY', JSON.stringify(bad));
      assert.match(decision.reason, /fail closed/);
    }
  });

  void it('the per-workload policy set survives JSON and decides the same', () => {
    const yaml = allowAll() + denyPath('d', '/admin*') + policy('x', 'action: AUDIT\nrules:\n- from: [{source: {ipBlocks: ["10.0.0.0/8"]}}]');
    const set = policiesForWorkload(config(yaml), API);
    const copy = JSON.parse(JSON.stringify(set)) as WorkloadAuthzPolicies;
    assert.deepEqual(copy, set);
    for (const r of [request({ http: { path: '/admin' } }), request(), request({ tcp: true })]) {
      assert.deepEqual(buildAuthorizer(copy).evaluate(r), buildAuthorizer(set).evaluate(r));
    }
  });

  void it('refuses to compile a policy set it cannot understand', () => {
    const set = policiesForWorkload(config(allowAll()), API);
    const broken: WorkloadAuthzPolicies = { ...set, policies: [{ ...set.policies[0]!, rules: [{ from: [{ ipBlocks: ['10.0.0.0/99'] }] }] }] };
    assert.throws(() => buildAuthorizer(broken), (err) => isTrellisError(err, 'TRELLIS_AUTHZ_INVALID_POLICY_SET'));
    const unknownKey: WorkloadAuthzPolicies = { ...set, policies: [{ ...set.policies[0]!, rules: [{ when: [{ key: 'source.ipp', values: ['x'] }] }] }] };
    assert.throws(() => buildAuthorizer(unknownKey), (err) => isTrellisError(err, 'TRELLIS_AUTHZ_INVALID_POLICY_SET'));
  });
});
