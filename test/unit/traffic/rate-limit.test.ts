import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RateLimitSnapshot } from '../../../src/mesh/snapshot.js';
import { LocalRateLimiter, TokenBucket, type RateLimitRequest } from '../../../src/traffic/rate-limit.js';
import { FakeClock } from './fixtures.js';

type Rule = RateLimitSnapshot['rules'][number];

function rule(extra: Partial<Rule> = {}): Rule {
  return { match: {}, per: 'workload', maxTokens: 2, tokensPerFill: 1, fillIntervalMs: 1_000, ...extra };
}

const get = (path = '/api/items', extra: Partial<RateLimitRequest> = {}): RateLimitRequest => ({ path, method: 'GET', port: 8080, ...extra });

void describe('token bucket', () => {
  void it('starts full, refills tokensPerFill per interval up to maxTokens, lazily', () => {
    const bucket = new TokenBucket({ maxTokens: 3, tokensPerFill: 2, fillIntervalMs: 1_000 }, 0);
    assert.equal(bucket.tryTake(0), true);
    assert.equal(bucket.tryTake(0), true);
    assert.equal(bucket.tryTake(0), true);
    assert.equal(bucket.tryTake(999), false);
    assert.equal(bucket.msUntilToken(999), 1);
    assert.equal(bucket.available(1_000), 2);
    assert.equal(bucket.available(5_000), 3, 'never above maxTokens');
    assert.equal(bucket.tryTake(5_000, 3), true);
    // Fills happen at interval boundaries counted from the last one, not from the request.
    assert.equal(bucket.available(5_999), 0);
    assert.equal(bucket.available(6_000), 2);
  });

  void it('a clock going backwards restarts the interval without minting tokens', () => {
    const bucket = new TokenBucket({ maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 1_000 }, 10_000);
    assert.equal(bucket.tryTake(10_000), true);
    assert.equal(bucket.available(5_000), 0);
    assert.equal(bucket.available(5_999), 0);
    assert.equal(bucket.available(6_000), 1);
  });
});

void describe('local rate limiter', () => {
  void it('per workload: one bucket; 429 with retry-after, source and rule', () => {
    const clock = new FakeClock(0);
    const limiter = new LocalRateLimiter([{ source: 'default/api', rules: [rule({ fillIntervalMs: 2_500 })] }], { now: clock.now });
    assert.deepEqual(limiter.check(get()), { allowed: true, rules: 1 });
    assert.deepEqual(limiter.check(get('/other', { caller: 'spiffe://td/ns/a/sa/x' })), { allowed: true, rules: 1 });
    assert.deepEqual(limiter.check(get()), { allowed: false, retryAfterSeconds: 3, source: 'default/api', rule: 0, per: 'workload' });
    clock.advance(2_000);
    assert.equal((limiter.check(get()) as { retryAfterSeconds: number }).retryAfterSeconds, 1, 'at least 1 second');
    clock.advance(500);
    assert.equal(limiter.check(get()).allowed, true);
  });

  void it('rules match paths (Istio patterns and templates), methods and ports; unmatched requests pass', () => {
    const clock = new FakeClock(0);
    const limiter = new LocalRateLimiter(
      [
        {
          source: 'default/api',
          rules: [
            rule({ match: { paths: ['/api/*'], methods: ['POST'] }, maxTokens: 1 }),
            rule({ match: { paths: ['/users/{*}/orders'] }, maxTokens: 1 }),
            rule({ match: { ports: [9090] }, maxTokens: 1 }),
          ],
        },
      ],
      { now: clock.now },
    );
    assert.equal(limiter.check(get('/api/items', { method: 'POST' })).allowed, true);
    assert.deepEqual(limiter.check(get('/api/items?x=1', { method: 'POST' })), { allowed: false, retryAfterSeconds: 1, source: 'default/api', rule: 0, per: 'workload' });
    assert.equal(limiter.check(get('/api/items')).allowed, true, 'GET is not limited by rule 0');
    assert.equal(limiter.check(get('/users/7/orders')).allowed, true);
    assert.equal(limiter.check(get('/users/7/orders')).allowed, false);
    assert.equal(limiter.check(get('/users/7/x/orders')).allowed, true, 'a template segment is one segment');
    assert.equal(limiter.check(get('/x', { port: 9090 })).allowed, true);
    assert.equal(limiter.check(get('/x', { port: 9090 })).allowed, false);
    assert.deepEqual(limiter.check(get('/free')), { allowed: true, rules: 0 });
  });

  void it('several matching rules: all or nothing', () => {
    const clock = new FakeClock(0);
    const limiter = new LocalRateLimiter(
      [
        { source: 'default/wide', rules: [rule({ maxTokens: 3 })] },
        { source: 'default/narrow', rules: [rule({ match: { paths: ['/expensive'] }, maxTokens: 1 })] },
      ],
      { now: clock.now },
    );
    assert.deepEqual(limiter.check(get('/expensive')), { allowed: true, rules: 2 });
    assert.deepEqual(limiter.check(get('/expensive')), { allowed: false, retryAfterSeconds: 1, source: 'default/narrow', rule: 0, per: 'workload' });
    // The rejected request took nothing from the wide bucket: two tokens left there.
    assert.equal(limiter.check(get('/cheap')).allowed, true);
    assert.equal(limiter.check(get('/cheap')).allowed, true);
    assert.equal(limiter.check(get('/cheap')).allowed, false);
  });

  void it('per caller: one bucket per identity; callers without identity share one', () => {
    const clock = new FakeClock(0);
    const limiter = new LocalRateLimiter([{ source: 'default/api', rules: [rule({ per: 'caller', maxTokens: 1 })] }], { now: clock.now });
    const alice = 'spiffe://td/ns/default/sa/alice';
    const bob = 'spiffe://td/ns/default/sa/bob';
    assert.equal(limiter.check(get('/', { caller: alice })).allowed, true);
    assert.deepEqual(limiter.check(get('/', { caller: alice })), { allowed: false, retryAfterSeconds: 1, source: 'default/api', rule: 0, per: 'caller' });
    assert.equal(limiter.check(get('/', { caller: bob })).allowed, true);
    assert.equal(limiter.check(get('/')).allowed, true);
    assert.equal(limiter.check(get('/')).allowed, false, 'anonymous callers share a bucket');
    assert.equal(limiter.callerBucketCount, 3);
  });

  void it('caller buckets are bounded, least recently used evicted', () => {
    const clock = new FakeClock(0);
    const limiter = new LocalRateLimiter([{ source: 'default/api', rules: [rule({ per: 'caller', maxTokens: 1 })] }], { now: clock.now, maxCallerBuckets: 2 });
    assert.equal(limiter.check(get('/', { caller: 'a' })).allowed, true);
    assert.equal(limiter.check(get('/', { caller: 'b' })).allowed, true);
    assert.equal(limiter.check(get('/', { caller: 'a' })).allowed, false, 'a is now the most recently used');
    assert.equal(limiter.check(get('/', { caller: 'c' })).allowed, true, 'c evicts b');
    assert.equal(limiter.callerBucketCount, 2);
    assert.equal(limiter.check(get('/', { caller: 'a' })).allowed, false, 'a kept its empty bucket');
    assert.equal(limiter.check(get('/', { caller: 'b' })).allowed, true, 'b starts over');
  });

  void it('an update keeps the buckets of unchanged rules and resets changed ones', () => {
    const clock = new FakeClock(0);
    const limits = [{ source: 'default/api', rules: [rule({ maxTokens: 1 })] }];
    const limiter = new LocalRateLimiter(limits, { now: clock.now });
    assert.equal(limiter.check(get()).allowed, true);
    limiter.update([...limits]);
    assert.equal(limiter.check(get()).allowed, false);
    limiter.update([{ source: 'default/api', rules: [rule({ maxTokens: 2 })] }]);
    assert.equal(limiter.check(get()).allowed, true);
    limiter.update(undefined);
    assert.equal(limiter.enabled, false);
    assert.deepEqual(limiter.check(get()), { allowed: true, rules: 0 });
  });
});
