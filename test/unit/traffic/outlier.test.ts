import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OutlierDetectionSnapshot } from '../../../src/mesh/snapshot.js';
import { OutlierDetector, type OutlierOutcome } from '../../../src/traffic/outlier.js';
import { FakeClock } from './fixtures.js';

const HOSTS = ['a:1', 'b:1', 'c:1', 'd:1'];
const ok: OutlierOutcome = { kind: 'response', status: 200 };
const s500: OutlierOutcome = { kind: 'response', status: 500 };
const s503: OutlierOutcome = { kind: 'response', status: 503 };

function config(overrides: Partial<OutlierDetectionSnapshot> = {}): OutlierDetectionSnapshot {
  return { intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 100, minHealthPercent: 0, ...overrides };
}

function detector(overrides: Partial<OutlierDetectionSnapshot> = {}, hosts = HOSTS): { d: OutlierDetector; clock: FakeClock } {
  const clock = new FakeClock(0);
  return { d: new OutlierDetector(config(overrides), hosts, { now: clock.now }), clock };
}

function times(d: OutlierDetector, host: string, outcome: OutlierOutcome, n: number): ReturnType<OutlierDetector['report']>[] {
  return Array.from({ length: n }, () => d.report(host, outcome));
}

void describe('outlier detection: counters', () => {
  void it('5 consecutive 5xx (the default) eject at once; a success in between resets', () => {
    const { d } = detector();
    times(d, 'a:1', s500, 4);
    d.report('a:1', ok);
    assert.deepEqual(times(d, 'a:1', s500, 4), [undefined, undefined, undefined, undefined]);
    assert.equal(d.isEjected('a:1'), false);
    const event = d.report('a:1', s500);
    assert.deepEqual(event, { kind: 'ejected', endpoint: 'a:1', reason: 'consecutive-5xx', untilMs: 30_000, ejections: 1 });
    assert.equal(d.isEjected('a:1'), true);
    assert.deepEqual(d.healthyEndpoints(), ['b:1', 'c:1', 'd:1']);
  });

  void it('consecutive5xxErrors: 0 disables 5xx detection', () => {
    const { d } = detector({ consecutive5xxErrors: 0 });
    times(d, 'a:1', s500, 20);
    assert.equal(d.isEjected('a:1'), false);
  });

  void it('gateway errors: 502/503/504 count, another 5xx resets that counter but not the 5xx one', () => {
    const { d } = detector({ consecutiveGatewayErrors: 3, consecutive5xxErrors: 0 });
    d.report('a:1', { kind: 'response', status: 502 });
    d.report('a:1', { kind: 'response', status: 504 });
    d.report('a:1', s500);
    d.report('a:1', s503);
    d.report('a:1', s503);
    assert.equal(d.isEjected('a:1'), false);
    assert.equal(d.report('a:1', s503)?.kind, 'ejected');
  });

  void it('gateway errors feed the 5xx counter too', () => {
    const { d } = detector({ consecutive5xxErrors: 3 });
    times(d, 'a:1', s503, 2);
    assert.equal(d.report('a:1', s500)?.kind, 'ejected');
  });

  void it('locally originated failures count as 503 (connect failure, reset) and 504 (timeout)', () => {
    const { d } = detector({ consecutiveGatewayErrors: 3, consecutive5xxErrors: 0 });
    d.report('a:1', { kind: 'connect-failure' });
    d.report('a:1', { kind: 'reset' });
    const event = d.report('a:1', { kind: 'timeout' });
    assert.deepEqual(event && { kind: event.kind, reason: event.reason }, { kind: 'ejected', reason: 'consecutive-gateway-errors' });
  });

  void it('splitExternalLocalOriginErrors: local failures have their own counter (default 5)', () => {
    const { d } = detector({ splitExternalLocalOriginErrors: true, consecutive5xxErrors: 2 });
    times(d, 'a:1', { kind: 'connect-failure' }, 4);
    d.report('a:1', s500);
    assert.equal(d.isEjected('a:1'), false, 'a local failure is not a 5xx');
    assert.equal(d.report('a:1', s500)?.kind, 'ejected');
    const other = detector({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2 }).d;
    other.report('b:1', { kind: 'timeout' });
    other.report('b:1', ok); // a response resets local-origin failures
    other.report('b:1', { kind: 'timeout' });
    const event = other.report('b:1', { kind: 'reset' });
    assert.equal(event?.kind === 'ejected' ? event.reason : undefined, 'consecutive-local-origin-failures');
  });

  void it('no config: nothing is counted, everything is eligible', () => {
    const clock = new FakeClock();
    const d = new OutlierDetector(undefined, HOSTS, { now: clock.now });
    assert.equal(d.enabled, false);
    assert.equal(times(d, 'a:1', s500, 10).every((e) => e === undefined), true);
    assert.equal(d.eligibility().eligible('a:1'), true);
  });
});

void describe('outlier detection: ejection time, sweeps and return', () => {
  void it('returns at the first interval sweep after baseEjectionTime', () => {
    const { d, clock } = detector();
    clock.advance(3_000);
    times(d, 'a:1', s500, 5);
    assert.equal(d.status().find((h) => h.endpoint === 'a:1')?.ejectedUntilMs, 33_000);
    clock.advance(36_999); // t = 39,999: the sweep at 30,000 was too early, the next is at 40,000
    assert.equal(d.isEjected('a:1'), true);
    assert.equal(d.eligibility().eligible('a:1'), false);
    clock.advance(1); // t = 40,000
    assert.equal(d.isEjected('a:1'), false);
    assert.equal(d.eligibility().eligible('a:1'), true);
    const status = d.status().find((h) => h.endpoint === 'a:1');
    assert.deepEqual(status && { c: status.consecutive5xx, t: status.timesEjected }, { c: 0, t: 1 });
  });

  void it('ejection time grows with each ejection (base × k) and k decays while healthy', () => {
    const { d, clock } = detector();
    times(d, 'a:1', s500, 5); // t = 0, k = 1, back at the 30,000 sweep
    clock.advance(30_000);
    assert.equal(d.isEjected('a:1'), false);
    const second = times(d, 'a:1', s500, 5).at(-1); // t = 30,000, k = 2 → 60 s
    assert.deepEqual(second, { kind: 'ejected', endpoint: 'a:1', reason: 'consecutive-5xx', untilMs: 90_000, ejections: 2 });
    clock.advance(59_999);
    assert.equal(d.isEjected('a:1'), true);
    clock.advance(1);
    assert.equal(d.isEjected('a:1'), false);
    // Healthy sweeps at 100 s and 110 s bring k from 2 to 0.
    clock.advance(20_000);
    assert.equal(d.status().find((h) => h.endpoint === 'a:1')?.backoff, 0);
    const third = times(d, 'a:1', s500, 5).at(-1);
    assert.equal(third?.kind === 'ejected' ? third.untilMs - clock.time : 0, 30_000);
  });

  void it('ejection time is capped at 300 s (Envoy max_ejection_time)', () => {
    const { d, clock } = detector({ baseEjectionTimeMs: 100_000, intervalMs: 1_000 });
    let until = 0;
    for (let round = 0; round < 5; round++) {
      const event = times(d, 'a:1', s500, 5).at(-1);
      assert.ok(event?.kind === 'ejected');
      until = event.untilMs - clock.time;
      clock.advance(until);
      assert.equal(d.isEjected('a:1'), false);
    }
    assert.equal(until, 300_000);
  });

  void it('a long clock jump un-ejects and decays without running every sweep one by one', () => {
    const { d, clock } = detector({ intervalMs: 1 });
    times(d, 'a:1', s500, 5);
    clock.advance(10 * 24 * 3600 * 1000);
    assert.equal(d.isEjected('a:1'), false);
    assert.equal(d.status().find((h) => h.endpoint === 'a:1')?.backoff, 0);
  });
});

void describe('outlier detection: percent caps and panic', () => {
  void it('maxEjectionPercent counts the endpoint being ejected (10 % of 4: none)', () => {
    const { d } = detector({ maxEjectionPercent: 10 });
    const event = times(d, 'a:1', s500, 5).at(-1);
    assert.deepEqual(event, { kind: 'ejection-skipped', endpoint: 'a:1', reason: 'consecutive-5xx', why: 'max-ejection-percent' });
    assert.equal(d.isEjected('a:1'), false);
    // The counter was reset: it takes 5 more to try again.
    assert.equal(times(d, 'a:1', s500, 4).every((e) => e === undefined), true);
  });

  void it('maxEjectionPercent 50 of 4 endpoints: two ejected, the third stays', () => {
    const { d } = detector({ maxEjectionPercent: 50 });
    assert.equal(times(d, 'a:1', s500, 5).at(-1)?.kind, 'ejected');
    assert.equal(times(d, 'b:1', s500, 5).at(-1)?.kind, 'ejected');
    assert.equal(times(d, 'c:1', s500, 5).at(-1)?.kind, 'ejection-skipped');
    assert.deepEqual(d.healthyEndpoints(), ['c:1', 'd:1']);
  });

  void it('minHealthPercent: below it, ejections are ignored (panic)', () => {
    const { d } = detector({ minHealthPercent: 50 });
    times(d, 'a:1', s500, 5);
    let e = d.eligibility();
    assert.deepEqual([e.panic, e.healthy, e.total, e.eligible('a:1')], [false, 3, 4, false]);
    times(d, 'b:1', s500, 5);
    e = d.eligibility();
    assert.deepEqual([e.panic, e.healthy, e.eligible('a:1')], [false, 2, false], '50 % healthy is not below 50 %');
    times(d, 'c:1', s500, 5);
    e = d.eligibility();
    assert.deepEqual([e.panic, e.healthy, e.eligible('a:1'), e.eligible('c:1')], [true, 1, true, true]);
  });

  void it('minHealthPercent 0 (Istio default): all ejected means nothing is eligible', () => {
    const { d } = detector({}, ['a:1']);
    times(d, 'a:1', s500, 5);
    const e = d.eligibility();
    assert.deepEqual([e.panic, e.eligible('a:1')], [false, false]);
  });

  void it('endpoint changes: new endpoints start healthy, removing an ejected one frees its share', () => {
    const { d } = detector({ maxEjectionPercent: 25 });
    times(d, 'a:1', s500, 5);
    assert.equal(times(d, 'b:1', s500, 5).at(-1)?.kind, 'ejection-skipped');
    d.setEndpoints(['b:1', 'c:1', 'd:1', 'e:1']);
    assert.equal(d.report('a:1', s500), undefined, 'a removed endpoint is ignored');
    assert.equal(times(d, 'b:1', s500, 5).at(-1)?.kind, 'ejected');
  });

  void it('a new config keeps ejections; removing the config clears them', () => {
    const { d } = detector();
    times(d, 'a:1', s500, 5);
    d.updateConfig(config({ consecutive5xxErrors: 2 }));
    assert.equal(d.isEjected('a:1'), true);
    assert.equal(times(d, 'b:1', s500, 2).at(-1)?.kind, 'ejected');
    d.updateConfig(undefined);
    assert.equal(d.isEjected('a:1'), false);
    assert.equal(d.eligibility().eligible('b:1'), true);
  });
});
