import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTrellisError } from '../../../src/api/errors.js';
import type { ClusterSnapshot, TrafficSnapshot } from '../../../src/mesh/snapshot.js';
import { TrafficState } from '../../../src/traffic/cluster.js';
import { pickDestination } from '../../../src/traffic/destination.js';
import { egressDecision } from '../../../src/traffic/egress.js';
import { decideFault } from '../../../src/traffic/fault.js';
import { seededRandom } from '../../../src/traffic/random.js';
import { RetryState, type AttemptOutcome } from '../../../src/traffic/retry.js';
import { selectHttpRoute } from '../../../src/traffic/route-select.js';
import { cluster, destination, endpoint, FakeClock, httpRoute, request, table } from './fixtures.js';

const V1 = 'outbound|9080|v1|reviews.default.svc.cluster.local';
const V2 = 'outbound|9080|v2|reviews.default.svc.cluster.local';

function snapshot(clusters: ClusterSnapshot[], routes = table([httpRoute(0, [], { route: [destination('reviews.default.svc.cluster.local', 'v1', 80), destination('reviews.default.svc.cluster.local', 'v2', 20)] })])): TrafficSnapshot {
  return { routeTables: [routes], clusters, outboundTrafficPolicy: 'REGISTRY_ONLY', outboundTrafficPolicySource: 'default' };
}

const outlier = { intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50, minHealthPercent: 0 };

function clusters(): ClusterSnapshot[] {
  return [
    cluster([endpoint('10.0.1.1'), endpoint('10.0.1.2'), endpoint('10.0.1.3')], { name: V1, subset: 'v1', outlierDetection: outlier }),
    cluster([endpoint('10.0.2.1')], { name: V2, subset: 'v2', loadBalancer: { consistentHash: { httpHeaderName: 'x-user' }, minimumRingSize: 64 } }),
  ];
}

void describe('traffic state across requests and versions', () => {
  void it('a request from route to endpoint, with retries and outlier detection', () => {
    const clock = new FakeClock(0);
    const random = seededRandom(4);
    const state = new TrafficState(snapshot(clusters()), { now: clock.now, random });
    const failing = '10.0.1.2:9080';
    const served: string[] = [];

    for (let i = 0; i < 60; i++) {
      const table = state.routeTables.get('reviews.default.svc.cluster.local', 9080);
      assert.ok(table);
      const selection = selectHttpRoute(table, request());
      assert.ok(selection.matched);
      assert.deepEqual(decideFault(selection.route.fault, random).responseFlags, []);
      const chosen = pickDestination(selection.route.route, random);
      assert.ok(chosen);
      const runtime = state.cluster(chosen.cluster);
      assert.ok(runtime);
      const retry = new RetryState(state.routeExtras(selection.route).retryPolicy(runtime), { random, budget: runtime.breaker });
      for (;;) {
        const pick = runtime.pick({ exclude: retry.exclude });
        assert.ok(pick.kind === 'endpoint');
        retry.triedEndpoint(pick.target.key);
        // The failing endpoint refuses connections.
        const outcome: AttemptOutcome = pick.target.key === failing ? { kind: 'connect-failure' } : { kind: 'response', status: 200 };
        runtime.report(pick.target.key, outcome.kind === 'response' ? { kind: 'response', status: outcome.status } : { kind: 'connect-failure' });
        const decision = retry.decide(outcome, { bodyBuffered: true });
        if (!decision.retry) {
          served.push(outcome.kind === 'response' ? String(outcome.status) : outcome.kind);
          break;
        }
      }
      retry.finish();
    }
    // Every request succeeded: connect failures of the failing endpoint were retried elsewhere
    // (Istio's default policy retries them and avoids the endpoint already tried)…
    assert.deepEqual(new Set(served), new Set(['200']));
    // …and after 5 consecutive connect failures (counted as 503) it was ejected.
    const v1 = state.cluster(V1);
    assert.ok(v1);
    assert.equal(v1.outlier.isEjected(failing), true);
    assert.deepEqual(v1.eligibility().healthy, 2);
    assert.equal(v1.breaker.stats.retries, 0, 'every retry slot was given back');
  });

  void it('a new version keeps balancer, outlier and breaker state of clusters that stay', () => {
    const clock = new FakeClock(0);
    const state = new TrafficState(snapshot(clusters()), { now: clock.now, random: seededRandom(1) });
    const v1 = state.cluster(V1);
    assert.ok(v1);
    for (let i = 0; i < 5; i++) v1.report('10.0.1.1:9080', { kind: 'response', status: 500 });
    assert.equal(v1.outlier.isEjected('10.0.1.1:9080'), true);
    const next = clusters();
    (next[0] as ClusterSnapshot).endpoints.push(endpoint('10.0.1.4'));
    state.update(snapshot(next));
    assert.equal(state.cluster(V1), v1, 'same runtime object');
    assert.equal(v1.outlier.isEjected('10.0.1.1:9080'), true);
    assert.equal(v1.balancer.endpoints.length, 4);
    const picks = new Set(Array.from({ length: 12 }, () => {
      const pick = v1.pick();
      return pick.kind === 'endpoint' ? pick.target.key : '';
    }));
    assert.deepEqual([...picks].sort(), ['10.0.1.2:9080', '10.0.1.3:9080', '10.0.1.4:9080']);
    state.update(snapshot(next.slice(0, 1)));
    assert.equal(state.cluster(V2), undefined, 'removed clusters are dropped');
  });

  void it('an invalid version throws and leaves the previous one in place', () => {
    const state = new TrafficState(snapshot(clusters()), { now: () => 0, random: seededRandom(1) });
    const bad = snapshot(clusters(), table([httpRoute(0, [{ uri: { regex: '(' } }])]));
    assert.throws(() => state.update(bad), (err: unknown) => isTrellisError(err, 'TRELLIS_TRAFFIC_BAD_REGEX'));
    assert.equal(state.routeTables.get('reviews.default.svc.cluster.local', 9080)?.http[0]?.matches.length, 0);
  });

  void it('route extras: retries keep previous hosts for hashed clusters; CORS and rewrite compiled once', () => {
    const route = httpRoute(0, [], { corsPolicy: { allowOrigins: [{ exact: 'https://a' }], allowMethods: [], allowHeaders: [], exposeHeaders: [] }, rewrite: { uri: '/v2' } });
    const state = new TrafficState(snapshot(clusters(), table([route])), { now: () => 0, random: seededRandom(1) });
    const stored = state.traffic?.routeTables[0]?.http[0];
    assert.ok(stored);
    const extras = state.routeExtras(stored);
    assert.equal(extras, state.routeExtras(stored));
    assert.equal(extras.retryPolicy(state.cluster(V1))?.avoidPreviousHosts, true);
    assert.equal(extras.retryPolicy(state.cluster(V2))?.avoidPreviousHosts, false);
    assert.equal(extras.cors?.originAllowed('https://a'), true);
    assert.equal(extras.rewrite.path('/x', undefined), '/v2x');
  });

  void it('no traffic snapshot: nothing to route, no clusters', () => {
    const state = new TrafficState(undefined, { now: () => 0, random: seededRandom(1) });
    assert.equal(state.routeTables.size, 0);
    assert.equal(state.cluster(V1), undefined);
  });
});

void describe('egress', () => {
  void it('REGISTRY_ONLY blocks unregistered hosts with 502 and says why; ALLOW_ANY passes them through', () => {
    const closed = { outboundTrafficPolicy: 'REGISTRY_ONLY' as const, outboundTrafficPolicySource: 'Sidecar default/default' };
    assert.deepEqual(egressDecision(closed, { host: 'api.example.com', registered: false }), {
      allowed: false,
      status: 502,
      reason: 'api.example.com is not a registered service and outboundTrafficPolicy REGISTRY_ONLY (Sidecar default/default)',
    });
    assert.equal(egressDecision(closed, { host: 'reviews', registered: true }).allowed, true);
    const open = egressDecision({ outboundTrafficPolicy: 'ALLOW_ANY', outboundTrafficPolicySource: 'default' }, { host: 'api.example.com', registered: false });
    assert.ok(open.allowed);
    assert.equal(open.passthrough, true);
    assert.equal(egressDecision(undefined, { host: 'x', registered: false }).allowed, false);
  });
});
