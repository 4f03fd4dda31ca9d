import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker, UNLIMITED, type Admission, type RequestSlot } from '../../../src/traffic/circuit-breaker.js';

function started(admission: Admission): RequestSlot {
  assert.equal(admission.kind, 'started');
  return (admission as Extract<Admission, { kind: 'started' }>).slot;
}

const noop = (): void => undefined;

void describe('circuit breaker: HTTP/1.1 (a request holds a connection)', () => {
  void it("Istio's circuit-breaking sample: maxConnections 1, http1MaxPendingRequests 1", () => {
    const breaker = new CircuitBreaker({ maxConnections: 1, http1MaxPendingRequests: 1 }, { multiplexed: false });
    const first = started(breaker.admit(noop));
    const startedLater: RequestSlot[] = [];
    const second = breaker.admit((slot) => startedLater.push(slot));
    assert.equal(second.kind, 'queued');
    assert.deepEqual(breaker.admit(noop), { kind: 'overflow', reason: 'max-pending-requests', responseFlag: 'UO' });
    assert.deepEqual(breaker.stats, { active: 1, pending: 1, retries: 0 });
    first.release();
    assert.equal(startedLater.length, 1, 'the queued request starts when the connection frees up');
    assert.deepEqual(breaker.stats, { active: 1, pending: 0, retries: 0 });
    first.release(); // releasing twice is harmless
    assert.deepEqual(breaker.stats, { active: 1, pending: 0, retries: 0 });
    startedLater[0]?.release();
    assert.deepEqual(breaker.stats, { active: 0, pending: 0, retries: 0 });
    assert.deepEqual(breaker.overflows, { requests: 0, pending: 1, retries: 0 });
  });

  void it('queued requests start in order; a cancelled one is skipped and frees its place', () => {
    const breaker = new CircuitBreaker({ maxConnections: 1, http1MaxPendingRequests: 2 }, { multiplexed: false });
    const order: string[] = [];
    const slots: RequestSlot[] = [];
    const first = started(breaker.admit(noop));
    const a = breaker.admit((slot) => {
      order.push('a');
      slots.push(slot);
    });
    breaker.admit((slot) => {
      order.push('b');
      slots.push(slot);
    });
    assert.equal(breaker.admit(noop).kind, 'overflow');
    assert.ok(a.kind === 'queued');
    a.cancel();
    a.cancel();
    assert.equal(breaker.stats.pending, 1);
    assert.equal(breaker.admit(noop).kind, 'queued', 'the cancelled request freed a place in the queue');
    first.release();
    assert.deepEqual(order, ['b']);
    assert.equal(breaker.canStart(), false, 'no jumping the queue while requests wait');
  });

  void it('http2MaxRequests caps requests in flight whatever the protocol, before any queueing', () => {
    const breaker = new CircuitBreaker({ http2MaxRequests: 2, maxConnections: 10 }, { multiplexed: false });
    started(breaker.admit(noop));
    const second = started(breaker.admit(noop));
    assert.deepEqual(breaker.admit(noop), { kind: 'overflow', reason: 'max-requests', responseFlag: 'UO' });
    second.release();
    assert.equal(breaker.admit(noop).kind, 'started');
    assert.equal(breaker.overflows.requests, 1);
  });
});

void describe('circuit breaker: HTTP/2 (requests share connections)', () => {
  void it('only http2MaxRequests limits; nothing waits', () => {
    const breaker = new CircuitBreaker({ maxConnections: 1, http1MaxPendingRequests: 1, http2MaxRequests: 3 }, { multiplexed: true });
    for (let i = 0; i < 3; i++) started(breaker.admit(noop));
    assert.deepEqual(breaker.admit(noop), { kind: 'overflow', reason: 'max-requests', responseFlag: 'UO' });
  });

  void it("Istio's defaults: everything unlimited", () => {
    const breaker = new CircuitBreaker({}, { multiplexed: false });
    for (let i = 0; i < 10_000; i++) started(breaker.admit(noop));
    for (let i = 0; i < 10_000; i++) assert.equal(breaker.tryAcquireRetry(), true);
    assert.equal(UNLIMITED, 4_294_967_295);
  });
});

void describe('circuit breaker: retries and updates', () => {
  void it('maxRetries counts retries in flight', () => {
    const breaker = new CircuitBreaker({ maxRetries: 2 }, { multiplexed: true });
    assert.equal(breaker.tryAcquireRetry(), true);
    assert.equal(breaker.tryAcquireRetry(), true);
    assert.equal(breaker.tryAcquireRetry(), false);
    breaker.releaseRetry();
    assert.equal(breaker.tryAcquireRetry(), true);
    assert.equal(breaker.overflows.retries, 1);
  });

  void it('raising a limit starts waiting requests at once; counters carry over', () => {
    const breaker = new CircuitBreaker({ maxConnections: 1, http1MaxPendingRequests: 5 }, { multiplexed: false });
    started(breaker.admit(noop));
    let startedCount = 0;
    breaker.admit(() => startedCount++);
    breaker.admit(() => startedCount++);
    breaker.update({ maxConnections: 2, http1MaxPendingRequests: 5 });
    assert.equal(startedCount, 1);
    assert.deepEqual(breaker.stats, { active: 2, pending: 1, retries: 0 });
    breaker.update({ maxConnections: 2 }, { multiplexed: true });
    assert.equal(startedCount, 2);
  });
});
