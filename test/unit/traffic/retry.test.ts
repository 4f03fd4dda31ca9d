import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HttpRetrySnapshot } from '../../../src/mesh/snapshot.js';
import { CircuitBreaker } from '../../../src/traffic/circuit-breaker.js';
import { seededRandom } from '../../../src/traffic/random.js';
import {
  attemptTimeoutMs,
  compileRetryPolicy,
  isRetryCondition,
  ISTIO_DEFAULT_RETRY,
  retryBackoffMs,
  retryCondition,
  RetryState,
  type AttemptOutcome,
  type CompiledRetryPolicy,
} from '../../../src/traffic/retry.js';
import { draws } from './fixtures.js';

function policy(retryOn: string[], extra: Partial<HttpRetrySnapshot> = {}): CompiledRetryPolicy {
  const compiled = compileRetryPolicy({ attempts: 3, retryOn, retriableStatusCodes: [], backoffBaseMs: 25, ...extra });
  assert.ok(compiled);
  return compiled;
}

const status = (code: number, extra: Partial<Extract<AttemptOutcome, { kind: 'response' }>> = {}): AttemptOutcome => ({ kind: 'response', status: code, ...extra });
const grpc = (code: number): AttemptOutcome => ({ kind: 'response', status: 200, grpcStatus: code });

void describe("Istio's retry policy translation", () => {
  void it('no retries on the route: the default policy (2 retries: connect-failure, refused-stream, unavailable, cancelled; no 503 since Istio 1.24)', () => {
    const compiled = compileRetryPolicy(undefined);
    assert.ok(compiled);
    assert.equal(compiled.retries, 2);
    assert.deepEqual([...compiled.conditions].sort(), ['cancelled', 'connect-failure', 'refused-stream', 'retriable-status-codes', 'unavailable']);
    assert.deepEqual([...compiled.retriableStatusCodes], []);
    assert.equal(retryCondition(compiled, status(503)), undefined);
    assert.equal(retryCondition(compiled, { kind: 'connect-failure' }), 'connect-failure');
    assert.equal(retryCondition(compiled, grpc(14)), 'unavailable (grpc-status 14)');
    assert.deepEqual([...compiled.grpcStatuses].sort(), [1, 14]);
    assert.equal(compiled.backoffBaseMs, 25);
    assert.equal(compiled.backoffMaxMs, 250);
    assert.equal(compiled.avoidPreviousHosts, true);
    assert.equal(compileRetryPolicy(undefined, { consistentHash: true })?.avoidPreviousHosts, false);
    assert.equal(ISTIO_DEFAULT_RETRY.attempts, 2);
  });

  void it('attempts: 0 disables retries', () => {
    assert.equal(compileRetryPolicy({ ...ISTIO_DEFAULT_RETRY, attempts: 0 }), undefined);
  });

  void it('status codes in retryOn become retriable status codes', () => {
    const compiled = policy(['gateway-error', '429', ' 409 ']);
    assert.deepEqual([...compiled.conditions].sort(), ['gateway-error', 'retriable-status-codes']);
    assert.deepEqual([...compiled.retriableStatusCodes].sort(), [409, 429]);
  });

  void it('retryIgnorePreviousHosts overrides the default', () => {
    assert.equal(policy(['5xx'], { retryIgnorePreviousHosts: false }).avoidPreviousHosts, false);
    assert.equal(compileRetryPolicy({ attempts: 1, retryOn: ['5xx'], retriableStatusCodes: [], backoffBaseMs: 25, retryIgnorePreviousHosts: true }, { consistentHash: true })?.avoidPreviousHosts, true);
  });

  void it('knows every condition name', () => {
    for (const name of ['5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx', 'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable', '503']) {
      assert.equal(isRetryCondition(name), true, name);
    }
    for (const name of ['5XX', 'timeout', 'unknown', '999', '']) assert.equal(isRetryCondition(name), false, name);
  });
});

void describe('retry conditions (Envoy)', () => {
  const outcomes: ReadonlyArray<[string, AttemptOutcome]> = [
    ['500', status(500)],
    ['502', status(502)],
    ['503', status(503)],
    ['504', status(504)],
    ['409', status(409)],
    ['429', status(429)],
    ['200', status(200)],
    ['503 rate limited', status(503, { rateLimited: true })],
    ['connect failure', { kind: 'connect-failure' }],
    ['reset', { kind: 'reset' }],
    ['reset before request', { kind: 'reset', beforeRequest: true }],
    ['refused stream', { kind: 'refused-stream' }],
    ['per-try timeout', { kind: 'per-try-timeout' }],
    ['overflow', { kind: 'overflow' }],
    ['grpc 14', grpc(14)],
    ['grpc 4', grpc(4)],
    ['grpc 2', grpc(2)],
  ];
  // For each retryOn: the outcomes (by label) it retries.
  const table: ReadonlyArray<[string[], string[]]> = [
    [['5xx'], ['500', '502', '503', '504', 'connect failure', 'reset', 'reset before request', 'refused stream', 'per-try timeout']],
    [['gateway-error'], ['502', '503', '504', 'connect failure', 'reset', 'reset before request', 'refused stream', 'per-try timeout']],
    [['reset'], ['connect failure', 'reset', 'reset before request', 'refused stream', 'per-try timeout']],
    [['reset-before-request'], ['connect failure', 'reset before request']],
    [['connect-failure'], ['connect failure']],
    [['refused-stream'], ['refused stream']],
    [['retriable-4xx'], ['409']],
    [['retriable-status-codes', '429'], ['429']],
    [['503'], ['503']],
    [['envoy-ratelimited'], ['503 rate limited']],
    [['5xx', 'envoy-ratelimited'], ['500', '502', '503', '504', '503 rate limited', 'connect failure', 'reset', 'reset before request', 'refused stream', 'per-try timeout']],
    [['unavailable'], ['grpc 14']],
    [['deadline-exceeded', 'internal'], ['grpc 4']],
    [['cancelled', 'resource-exhausted'], []],
    [['retriable-headers', 'http3-post-connect-failure'], []],
  ];
  for (const [retryOn, expected] of table) {
    void it(`retryOn ${retryOn.join(',')}`, () => {
      const compiled = policy(retryOn);
      const retried = outcomes.filter(([, outcome]) => retryCondition(compiled, outcome) !== undefined).map(([label]) => label);
      assert.deepEqual(retried, expected);
    });
  }

  void it('names the condition that matched', () => {
    assert.equal(retryCondition(policy(['gateway-error', '503']), status(503)), 'gateway-error');
    assert.equal(retryCondition(policy(['503']), status(503)), 'retriable-status-codes (503)');
    assert.equal(retryCondition(policy(['unavailable']), grpc(14)), 'unavailable (grpc-status 14)');
  });
});

void describe('backoff (full jitter, 25 ms base, 10× cap)', () => {
  void it('retry N waits within [0, min((2^N − 1) × base, 10 × base))', () => {
    const upper = [25, 75, 175, 250, 250];
    const random = seededRandom(17);
    for (let n = 1; n <= 5; n++) {
      let max = 0;
      let min = Infinity;
      for (let i = 0; i < 2000; i++) {
        const wait = retryBackoffMs(n, 25, 250, random);
        assert.ok(Number.isInteger(wait) && wait >= 0 && wait < (upper[n - 1] as number), `retry ${n}: ${wait}`);
        max = Math.max(max, wait);
        min = Math.min(min, wait);
      }
      assert.equal(min, 0);
      assert.equal(max, (upper[n - 1] as number) - 1);
    }
  });

  void it('edges of the draw', () => {
    assert.equal(retryBackoffMs(2, 25, 250, () => 0), 0);
    assert.equal(retryBackoffMs(2, 25, 250, () => 0.999999), 74);
    assert.equal(retryBackoffMs(40, 25, 250, () => 0.5), 125);
  });
});

void describe('retry state: attempts, buffering, circuit breaker', () => {
  void it('attempts = retries: 2 retries allowed, so 3 tries in all', () => {
    const state = new RetryState(compileRetryPolicy(undefined), { random: draws(0.5) });
    const first = state.decide({ kind: 'connect-failure' }, { bodyBuffered: true });
    assert.deepEqual(first, { retry: true, backoffMs: 12, attempt: 2, condition: 'connect-failure' });
    const second = state.decide({ kind: 'refused-stream' }, { bodyBuffered: true });
    assert.deepEqual(second, { retry: true, backoffMs: 37, attempt: 3, condition: 'refused-stream' });
    assert.deepEqual(state.decide({ kind: 'connect-failure' }, { bodyBuffered: true }), { retry: false, reason: 'limit-exceeded', condition: 'connect-failure' });
    assert.equal(state.attempt, 3);
  });

  void it('not retriable, no policy, body not buffered', () => {
    const state = new RetryState(compileRetryPolicy(undefined), { random: draws(0.5) });
    assert.deepEqual(state.decide(status(503), { bodyBuffered: true }), { retry: false, reason: 'not-retriable' });
    assert.deepEqual(state.decide(status(200), { bodyBuffered: true }), { retry: false, reason: 'not-retriable' });
    assert.deepEqual(state.decide({ kind: 'connect-failure' }, { bodyBuffered: false }), { retry: false, reason: 'body-not-buffered', condition: 'connect-failure' });
    const none = new RetryState(undefined, { random: draws(0.5) });
    assert.deepEqual(none.decide(status(503), { bodyBuffered: true }), { retry: false, reason: 'no-policy' });
  });

  void it('an overflow is never retried', () => {
    const state = new RetryState(policy(['5xx', 'reset']), { random: draws(0.5) });
    assert.deepEqual(state.decide({ kind: 'overflow' }, { bodyBuffered: true }), { retry: false, reason: 'not-retriable' });
  });

  void it('maxRetries: a retry holds a slot until its outcome; at the limit the retry overflows', () => {
    const breaker = new CircuitBreaker({ maxRetries: 1 }, { multiplexed: true });
    const a = new RetryState(policy(['5xx']), { random: draws(0.5), budget: breaker });
    const b = new RetryState(policy(['5xx']), { random: draws(0.5), budget: breaker });
    assert.equal(a.decide(status(500), { bodyBuffered: true }).retry, true);
    assert.equal(breaker.stats.retries, 1);
    assert.deepEqual(b.decide(status(500), { bodyBuffered: true }), { retry: false, reason: 'overflow', condition: '5xx' });
    // a's retry ends (success): the slot is free again.
    assert.deepEqual(a.decide(status(200), { bodyBuffered: true }), { retry: false, reason: 'not-retriable' });
    assert.equal(breaker.stats.retries, 0);
    const c = new RetryState(policy(['5xx']), { random: draws(0.5), budget: breaker });
    assert.equal(c.decide(status(500), { bodyBuffered: true }).retry, true);
    c.finish();
    assert.equal(breaker.stats.retries, 0);
    assert.equal(breaker.overflows.retries, 1);
  });

  void it('previous hosts: excluded unless the policy keeps them', () => {
    const state = new RetryState(policy(['5xx']), { random: draws(0.5) });
    state.triedEndpoint('10.0.0.1:80');
    assert.deepEqual([...state.exclude], ['10.0.0.1:80']);
    const hashed = new RetryState(compileRetryPolicy(undefined, { consistentHash: true }), { random: draws(0.5) });
    hashed.triedEndpoint('10.0.0.1:80');
    assert.deepEqual([...hashed.exclude], []);
  });

  void it('attempt timeout: per-try timeout bounded by what is left of the route timeout', () => {
    const withPerTry = policy(['5xx'], { perTryTimeoutMs: 2_000 });
    assert.equal(attemptTimeoutMs(withPerTry, 5_000, 0), 2_000);
    assert.equal(attemptTimeoutMs(withPerTry, 5_000, 4_000), 1_000);
    assert.equal(attemptTimeoutMs(withPerTry, 5_000, 6_000), 0);
    assert.equal(attemptTimeoutMs(withPerTry, undefined, 100), 2_000);
    assert.equal(attemptTimeoutMs(policy(['5xx']), 5_000, 1_000), 4_000);
    assert.equal(attemptTimeoutMs(undefined, undefined, 1_000), undefined);
    assert.equal(attemptTimeoutMs(undefined, 0, 1_000), undefined);
  });
});
