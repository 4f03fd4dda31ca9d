import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoadBalancerSnapshot } from '../../../src/mesh/snapshot.js';
import { buildRing, ClusterLoadBalancer, lbEndpoints, setCookieValue, type LbPick, type PickContext } from '../../../src/traffic/load-balancer.js';
import { seededRandom } from '../../../src/traffic/random.js';
import { headerMap } from '../../../src/traffic/request.js';
import { draws, endpoint } from './fixtures.js';

const FOUR = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'].map((a) => endpoint(a));

function balancer(policy: LoadBalancerSnapshot, endpoints = FOUR, random = seededRandom(1)): ClusterLoadBalancer {
  return new ClusterLoadBalancer(policy, lbEndpoints(endpoints, 'http', 9080), { random });
}

function key(pick: LbPick): string {
  assert.equal(pick.kind, 'endpoint');
  return pick.kind === 'endpoint' ? pick.target.key : '';
}

function tally(lb: ClusterLoadBalancer, n: number, context: () => PickContext = () => ({})): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const k = key(lb.pick(context()));
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

const hashByHeader: LoadBalancerSnapshot = { consistentHash: { httpHeaderName: 'x-user' }, minimumRingSize: 1024 };
const userRequest = (user: string): PickContext => ({ request: { headers: headerMap([['x-user', user]]), path: '/' } });

void describe('round robin', () => {
  void it('rotates from a random start', () => {
    const lb = balancer({ simple: 'ROUND_ROBIN' }, FOUR, draws(0.5));
    const order = Array.from({ length: 6 }, () => key(lb.pick()));
    // The start is draw × 2^31 mod 4; then strict rotation.
    const start = order[0] as string;
    const index = FOUR.findIndex((e) => `${e.address}:9080` === start);
    assert.deepEqual(
      order,
      Array.from({ length: 6 }, (_, i) => `${(FOUR[(index + i) % 4] as { address: string }).address}:9080`),
    );
  });

  void it('weighted endpoints get their share, interleaved (smooth weighted round robin)', () => {
    const lb = balancer({ simple: 'ROUND_ROBIN' }, [endpoint('a', 1, { weight: 5 }), endpoint('b', 1, { weight: 1 }), endpoint('c', 1, { weight: 1 })]);
    const picks = Array.from({ length: 7 }, () => key(lb.pick()));
    assert.deepEqual(picks, ['a:1', 'a:1', 'b:1', 'a:1', 'c:1', 'a:1', 'a:1']);
  });

  void it('skips ineligible endpoints and keeps its state across endpoint changes', () => {
    const lb = balancer({ simple: 'ROUND_ROBIN' });
    const counts = tally(lb, 30, () => ({ eligible: (k) => k !== '10.0.0.2:9080' }));
    assert.deepEqual(Object.keys(counts).sort(), ['10.0.0.1:9080', '10.0.0.3:9080', '10.0.0.4:9080']);
    assert.deepEqual(Object.values(counts), [10, 10, 10]);
    lb.update(lbEndpoints(FOUR.slice(0, 2), 'http', 9080));
    assert.deepEqual(tally(lb, 4), { '10.0.0.1:9080': 2, '10.0.0.2:9080': 2 });
  });

  void it('nothing eligible, no endpoints, passthrough', () => {
    assert.deepEqual(balancer({ simple: 'ROUND_ROBIN' }).pick({ eligible: () => false }), { kind: 'none', reason: 'no eligible endpoints' });
    assert.deepEqual(balancer({ simple: 'ROUND_ROBIN' }, []).pick(), { kind: 'none', reason: 'no endpoints' });
    assert.deepEqual(balancer({ simple: 'PASSTHROUGH' }).pick(), { kind: 'passthrough' });
  });

  void it('retries avoid endpoints already tried: round robin walks past them', () => {
    const lb = balancer({ simple: 'ROUND_ROBIN' });
    const exclude = new Set(['10.0.0.1:9080', '10.0.0.2:9080', '10.0.0.3:9080']);
    for (let i = 0; i < 20; i++) assert.equal(key(lb.pick({ exclude })), '10.0.0.4:9080');
  });

  void it('retries avoid endpoints already tried: 5 selections at most, then the last stands', () => {
    const lb = balancer({ simple: 'RANDOM' }, FOUR, seededRandom(9));
    const exclude = new Set(['10.0.0.1:9080', '10.0.0.2:9080', '10.0.0.3:9080']);
    // Each selection hits an excluded endpoint 3 times in 4: (3/4)^5 ≈ 24 % of picks stay excluded.
    const counts = tally(lb, 1000, () => ({ exclude }));
    assert.deepEqual(counts, { '10.0.0.1:9080': 91, '10.0.0.2:9080': 71, '10.0.0.3:9080': 87, '10.0.0.4:9080': 751 });
    assert.equal(lb.pick({ exclude: new Set(FOUR.map((e) => `${e.address}:9080`)) }).kind, 'endpoint');
  });
});

void describe('random', () => {
  void it('uniform over 8,000 picks with a seeded generator (exact counts)', () => {
    assert.deepEqual(tally(balancer({ simple: 'RANDOM' }, FOUR, seededRandom(5)), 8000), {
      '10.0.0.1:9080': 2023,
      '10.0.0.2:9080': 1977,
      '10.0.0.3:9080': 1967,
      '10.0.0.4:9080': 2033,
    });
  });
});

void describe('least request (power of two choices)', () => {
  void it('of the two drawn endpoints, the one with fewer active requests wins; the first on a tie', () => {
    const lb = balancer({ simple: 'LEAST_REQUEST' }, FOUR, draws(0.1, 0.6));
    // Draws pick endpoint 0 and endpoint 2.
    lb.requestStarted('10.0.0.1:9080');
    assert.equal(key(lb.pick()), '10.0.0.3:9080');
    lb.requestStarted('10.0.0.3:9080');
    lb.requestStarted('10.0.0.3:9080');
    assert.equal(key(balancerWith(lb, draws(0.1, 0.6))), '10.0.0.1:9080');
    lb.requestFinished('10.0.0.3:9080');
    assert.equal(lb.activeRequests('10.0.0.3:9080'), 1);
    assert.equal(key(balancerWith(lb, draws(0.1, 0.6))), '10.0.0.1:9080', 'tie → first');
  });

  void it('steers load away from a busy endpoint', () => {
    const lb = balancer({ simple: 'LEAST_REQUEST' }, FOUR, seededRandom(11));
    for (let i = 0; i < 10; i++) lb.requestStarted('10.0.0.1:9080');
    const counts = tally(lb, 4000);
    // The busy endpoint only wins when both draws land on it: 1/16 of the time.
    assert.deepEqual(counts, { '10.0.0.1:9080': 236, '10.0.0.2:9080': 1263, '10.0.0.3:9080': 1266, '10.0.0.4:9080': 1235 });
  });

  void it('counts are forgotten for endpoints that leave', () => {
    const lb = balancer({ simple: 'LEAST_REQUEST' });
    lb.requestStarted('10.0.0.4:9080');
    lb.update(lbEndpoints(FOUR.slice(0, 3), 'http', 9080));
    assert.equal(lb.activeRequests('10.0.0.4:9080'), 0);
  });
});

/** Picks once from `lb` with a different draw sequence (same state). */
function balancerWith(lb: ClusterLoadBalancer, random: () => number): LbPick {
  const clone = new ClusterLoadBalancer({ simple: 'LEAST_REQUEST' }, lb.endpoints, { random });
  for (const e of lb.endpoints) for (let i = 0; i < lb.activeRequests(e.key); i++) clone.requestStarted(e.key);
  return clone.pick();
}

void describe('consistent hashing (ring hash)', () => {
  const users = Array.from({ length: 1000 }, (_, i) => `user${i}`);

  void it('the same key always goes to the same endpoint, and keys spread', () => {
    const lb = balancer(hashByHeader);
    const first = new Map(users.map((u) => [u, key(lb.pick(userRequest(u)))]));
    for (const u of users) assert.equal(key(lb.pick(userRequest(u))), first.get(u));
    const counts: Record<string, number> = {};
    for (const k of first.values()) counts[k] = (counts[k] ?? 0) + 1;
    assert.deepEqual(counts, { '10.0.0.1:9080': 240, '10.0.0.2:9080': 261, '10.0.0.3:9080': 280, '10.0.0.4:9080': 219 });
  });

  void it('stickiness is the same in another proxy (another instance, another random)', () => {
    const a = balancer(hashByHeader, FOUR, seededRandom(1));
    const b = balancer(hashByHeader, [...FOUR].reverse(), seededRandom(99));
    for (const u of users) assert.equal(key(a.pick(userRequest(u))), key(b.pick(userRequest(u))));
  });

  void it('adding an endpoint moves a limited share of keys, most to the new one', () => {
    const lb = balancer(hashByHeader);
    const before = new Map(users.map((u) => [u, key(lb.pick(userRequest(u)))]));
    lb.update(lbEndpoints([...FOUR, endpoint('10.0.0.5')], 'http', 9080));
    let moved = 0;
    let toNew = 0;
    for (const u of users) {
      const now = key(lb.pick(userRequest(u)));
      if (now !== before.get(u)) moved++;
      if (now !== before.get(u) && now === '10.0.0.5:9080') toNew++;
    }
    assert.equal(moved, 309);
    assert.equal(toNew, 198);
  });

  void it('removing an endpoint moves its keys and few others', () => {
    const lb = balancer(hashByHeader);
    const before = new Map(users.map((u) => [u, key(lb.pick(userRequest(u)))]));
    lb.update(lbEndpoints(FOUR.slice(0, 3), 'http', 9080));
    let movedOthers = 0;
    for (const u of users) {
      const now = key(lb.pick(userRequest(u)));
      if (before.get(u) === '10.0.0.4:9080') assert.notEqual(now, '10.0.0.4:9080');
      else if (now !== before.get(u)) movedOthers++;
    }
    assert.equal(movedOthers, 111);
  });

  void it('an ineligible (ejected) endpoint only moves its own keys', () => {
    const lb = balancer(hashByHeader);
    const before = new Map(users.map((u) => [u, key(lb.pick(userRequest(u)))]));
    for (const u of users) {
      const now = key(lb.pick({ ...userRequest(u), eligible: (k) => k !== '10.0.0.2:9080' }));
      if (before.get(u) === '10.0.0.2:9080') assert.notEqual(now, '10.0.0.2:9080');
      else assert.equal(now, before.get(u));
    }
  });

  void it('retries keep the key on its endpoint (Istio sets no previous-hosts predicate for hashing)', () => {
    const lb = balancer(hashByHeader);
    const home = key(lb.pick(userRequest('jason')));
    assert.equal(key(lb.pick({ ...userRequest('jason'), exclude: new Set([home]) })), home);
  });

  void it('without a key, the choice is random', () => {
    const lb = balancer(hashByHeader, FOUR, seededRandom(3));
    const counts = tally(lb, 400);
    assert.equal(Object.keys(counts).length, 4);
  });

  void it('ring size follows minimumRingSize and weights', () => {
    const even = buildRing(lbEndpoints(FOUR, 'http', 9080), 1024);
    assert.equal(even.hashes.length, 1024);
    const weighted = buildRing(lbEndpoints([endpoint('a', 1, { weight: 1 }), endpoint('b', 1, { weight: 3 })], 'http', 1), 1024);
    const owned = [0, 0];
    for (const owner of weighted.owners) owned[owner] = (owned[owner] ?? 0) + 1;
    assert.deepEqual(owned, [256, 768]);
    for (let i = 1; i < even.hashes.length; i++) assert.ok((even.hashes[i] as number) >= (even.hashes[i - 1] as number));
  });

  void it('hash keys: source IP and query parameter', () => {
    const byIp = balancer({ consistentHash: { useSourceIp: true }, minimumRingSize: 1024 });
    assert.equal(key(byIp.pick({ sourceIp: '192.0.2.7' })), key(byIp.pick({ sourceIp: '192.0.2.7' })));
    const byQuery = balancer({ consistentHash: { httpQueryParameterName: 'session' }, minimumRingSize: 1024 });
    const home = key(byQuery.pick({ request: { headers: new Map(), path: '/cart?session=abc&x=1' } }));
    for (let i = 0; i < 20; i++) assert.equal(key(byQuery.pick({ request: { headers: new Map(), path: `/other/${i}?session=abc` } })), home);
  });

  void it('cookie: an existing cookie is the key; absent with a ttl, a cookie is generated with Set-Cookie', () => {
    const lb = balancer({ consistentHash: { httpCookie: { name: 'sticky', path: '/', ttlMs: 3_600_000 } }, minimumRingSize: 1024 });
    const withCookie = lb.pick({ request: { headers: headerMap([['Cookie', 'a=1; sticky="abc"']]), path: '/' } });
    assert.ok(withCookie.kind === 'endpoint');
    assert.equal(withCookie.setCookie, undefined);
    assert.equal(key(withCookie), key(lb.pick({ request: { headers: headerMap([['cookie', 'sticky=abc']]), path: '/x' } })));

    const fresh = lb.pick({ request: { headers: new Map(), path: '/' }, connectionId: '10.1.1.1:5000->10.1.1.2:15001' });
    assert.ok(fresh.kind === 'endpoint');
    assert.match(fresh.setCookie ?? '', /^sticky="[0-9a-f]{16}"; Max-Age=3600; Path=\/; HttpOnly$/);
    // The browser sends the generated cookie back: same endpoint.
    const value = /"([0-9a-f]{16})"/.exec(fresh.setCookie ?? '')?.[1] ?? '';
    assert.equal(key(lb.pick({ request: { headers: headerMap([['cookie', `sticky=${value}`]]), path: '/' } })), key(fresh));
    // Same connection, same generated cookie.
    const again = lb.pick({ request: { headers: new Map(), path: '/' }, connectionId: '10.1.1.1:5000->10.1.1.2:15001' });
    assert.ok(again.kind === 'endpoint');
    assert.equal(again.setCookie, fresh.setCookie);

    const noTtl = balancer({ consistentHash: { httpCookie: { name: 'sticky' } }, minimumRingSize: 1024 });
    const none = noTtl.pick({ request: { headers: new Map(), path: '/' } });
    assert.ok(none.kind === 'endpoint');
    assert.equal(none.setCookie, undefined);
  });

  void it('Set-Cookie format: ttl 0 is a session cookie', () => {
    assert.equal(setCookieValue('s', 'v', undefined, 0), 's="v"; HttpOnly');
    assert.equal(setCookieValue('s', 'v', '/app', 90_500), 's="v"; Max-Age=90; Path=/app; HttpOnly');
  });

  void it('a policy change rebuilds the strategy', () => {
    const lb = balancer({ simple: 'ROUND_ROBIN' });
    lb.update(lbEndpoints(FOUR, 'http', 9080), hashByHeader);
    assert.equal(key(lb.pick(userRequest('x'))), key(lb.pick(userRequest('x'))));
    const pick = lb.pick(userRequest('x'));
    assert.ok(pick.kind === 'endpoint');
    assert.equal(pick.how, 'ring hash of header x-user');
  });
});
