/**
 * Load balancing for one cluster, with Envoy's algorithms as Istio configures them:
 *
 * - ROUND_ROBIN: rotation from a random starting point (Envoy randomizes the start so that
 *   proxies restarted together do not hit the same endpoint first); with unequal endpoint
 *   weights, smooth weighted round robin (each endpoint's share equals its weight, interleaved).
 * - LEAST_REQUEST: power of two choices — two random endpoints (drawn independently, so they
 *   may be the same), the one with fewer active requests wins, the first on a tie. With
 *   unequal weights the candidates are drawn by weight and compared by active/weight.
 * - RANDOM: uniform (by weight when weights differ).
 * - consistentHash: a ring hash (Envoy's RING_HASH). Each endpoint gets
 *   ⌈minimumRingSize × its share of the weight⌉ points (capped at 8M in all), hashed from
 *   `address:port_i`; a request's key hashes to a point and goes to the next endpoint point
 *   clockwise. Adding or removing an endpoint only moves the keys of the ring arcs it gains or
 *   loses. Keys: a header, a cookie, the source IP or a query parameter. Without a key the
 *   choice is random (Envoy uses a random hash).
 * - PASSTHROUGH: no choice; the caller connects to the original destination.
 *
 * The instance keeps its state (rotation cursor, active-request counts, the ring) across
 * requests and accepts endpoint-set changes without losing it for endpoints that stay.
 *
 * Health: `pick` takes an `eligible` predicate (outlier detection's healthy set after the panic
 * rule). The ring is built from all endpoints and ineligible points are skipped, which keeps
 * every other key in place while an endpoint is ejected.
 *
 * Retries: `exclude` lists endpoints already tried; like Envoy's `previous_hosts` predicate with
 * Istio's 5 host-selection attempts, the choice is redone up to 5 times to avoid them, and the
 * last choice stands if all attempts hit excluded endpoints. Consistent hashing ignores it
 * (Istio does not configure the predicate for hashed clusters: a key keeps its endpoint).
 */
import type { EndpointSnapshot, LoadBalancerSnapshot } from '../mesh/snapshot.js';
import { hash32, hashHex64 } from './hash.js';
import { randomInt, type Random } from './random.js';
import { cookieValue, parseQuery, queryOf, type RequestView } from './request.js';

/** Envoy's cap on the ring size. */
export const MAX_RING_SIZE = 8 * 1024 * 1024;
/** Istio's default `minimumRingSize`. */
export const DEFAULT_MIN_RING_SIZE = 1024;
/** Istio's `HostSelectionRetryMaxAttempts`. */
export const HOST_SELECTION_ATTEMPTS = 5;

export interface LbEndpoint {
  readonly endpoint: EndpointSnapshot;
  /** `address:port`: identity for counters, rings, outlier detection and `exclude`. */
  readonly key: string;
  /** The port to connect to (the endpoint's port for the cluster's service port). */
  readonly port: number;
  readonly weight: number;
}

/** What the hash policies read, beyond the request's headers and path. */
export interface PickContext {
  request?: Pick<RequestView, 'headers' | 'path'>;
  /** The downstream client's IP (for `useSourceIp`). */
  sourceIp?: string;
  /**
   * Identifies the downstream connection (Envoy: its remote + local address), the seed of a
   * generated hash cookie, so concurrent requests of one connection get the same cookie.
   */
  connectionId?: string;
  /** Endpoint keys that may be chosen (healthy, after the panic rule); absent: all. */
  eligible?: (key: string) => boolean;
  /** Endpoint keys already tried by this request (retries). */
  exclude?: ReadonlySet<string>;
}

export type LbPick =
  | {
      readonly kind: 'endpoint';
      readonly target: LbEndpoint;
      /** `Set-Cookie` value to add to the response: a hash cookie was generated for this request. */
      readonly setCookie?: string;
      /** For explanations: `round robin`, `hash of header x-user`, … */
      readonly how: string;
    }
  | { readonly kind: 'passthrough' }
  | { readonly kind: 'none'; readonly reason: 'no endpoints' | 'no eligible endpoints' };

/** The cluster endpoints as the balancer sees them: `defaultPort` serves endpoints without the named port. */
export function lbEndpoints(endpoints: readonly EndpointSnapshot[], targetPortName: string, defaultPort: number): LbEndpoint[] {
  return endpoints.map((endpoint) => {
    const port = endpoint.ports[targetPortName] ?? defaultPort;
    return { endpoint, key: `${endpoint.address}:${port}`, port, weight: endpoint.weight !== undefined && endpoint.weight > 0 ? endpoint.weight : 1 };
  });
}

interface Strategy {
  /** One choice among `targets` (non-empty), or undefined when nothing is eligible. */
  choose(targets: readonly LbEndpoint[], context: PickContext, attempt: number): Choice | undefined;
  update(targets: readonly LbEndpoint[]): void;
  /** False for consistent hashing: retries keep the key's endpoint. */
  readonly honoursExclude: boolean;
}

interface Choice {
  target: LbEndpoint;
  setCookie?: string;
  how: string;
}

export class ClusterLoadBalancer {
  private policy: LoadBalancerSnapshot;
  private targets: LbEndpoint[] = [];
  private strategy: Strategy;
  private readonly random: Random;
  private readonly active = new Map<string, number>();

  constructor(policy: LoadBalancerSnapshot, endpoints: readonly LbEndpoint[], options: { random: Random }) {
    this.policy = policy;
    this.random = options.random;
    this.targets = [...endpoints];
    this.strategy = this.makeStrategy(policy);
    this.strategy.update(this.targets);
  }

  /** Replace the endpoint set (and, if given, the policy); state of remaining endpoints is kept. */
  update(endpoints: readonly LbEndpoint[], policy?: LoadBalancerSnapshot): void {
    this.targets = [...endpoints];
    if (policy !== undefined && JSON.stringify(policy) !== JSON.stringify(this.policy)) {
      this.policy = policy;
      this.strategy = this.makeStrategy(policy);
    }
    this.strategy.update(this.targets);
    const keys = new Set(this.targets.map((t) => t.key));
    for (const key of this.active.keys()) if (!keys.has(key)) this.active.delete(key);
  }

  get endpoints(): readonly LbEndpoint[] {
    return this.targets;
  }

  /** LEAST_REQUEST input: the caller reports each request it starts and finishes on an endpoint. */
  requestStarted(key: string): void {
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
  }

  requestFinished(key: string): void {
    const count = (this.active.get(key) ?? 0) - 1;
    if (count > 0) this.active.set(key, count);
    else this.active.delete(key);
  }

  activeRequests(key: string): number {
    return this.active.get(key) ?? 0;
  }

  pick(context: PickContext = {}): LbPick {
    if ('simple' in this.policy && this.policy.simple === 'PASSTHROUGH') return { kind: 'passthrough' };
    if (this.targets.length === 0) return { kind: 'none', reason: 'no endpoints' };
    const exclude = this.strategy.honoursExclude ? context.exclude : undefined;
    const attempts = exclude === undefined || exclude.size === 0 ? 1 : HOST_SELECTION_ATTEMPTS;
    let last: Choice | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const choice = this.strategy.choose(this.targets, context, attempt);
      if (choice === undefined) return { kind: 'none', reason: 'no eligible endpoints' };
      last = choice;
      if (exclude === undefined || !exclude.has(choice.target.key)) break;
    }
    const choice = last as Choice;
    return { kind: 'endpoint', target: choice.target, how: choice.how, ...(choice.setCookie === undefined ? {} : { setCookie: choice.setCookie }) };
  }

  private makeStrategy(policy: LoadBalancerSnapshot): Strategy {
    if ('consistentHash' in policy) return new RingHash(policy, this.random);
    switch (policy.simple) {
      case 'ROUND_ROBIN':
      case 'PASSTHROUGH':
        return new RoundRobin(this.random);
      case 'RANDOM':
        return new RandomChoice(this.random);
      case 'LEAST_REQUEST':
        return new LeastRequest(this.random, (key) => this.activeRequests(key));
    }
  }
}

function allowed(context: PickContext, target: LbEndpoint): boolean {
  return context.eligible === undefined || context.eligible(target.key);
}

function eligibleOf(targets: readonly LbEndpoint[], context: PickContext): readonly LbEndpoint[] {
  if (context.eligible === undefined) return targets;
  return targets.filter((t) => allowed(context, t));
}

function equalWeights(targets: readonly LbEndpoint[]): boolean {
  const first = targets[0]?.weight;
  return targets.every((t) => t.weight === first);
}

class RoundRobin implements Strategy {
  readonly honoursExclude = true;
  private cursor: number;
  private weighted = false;
  /** Smooth weighted round robin state, per endpoint key. */
  private readonly current = new Map<string, number>();

  constructor(random: Random) {
    this.cursor = Math.floor(random() * 0x7fffffff);
  }

  update(targets: readonly LbEndpoint[]): void {
    this.weighted = !equalWeights(targets);
    const keys = new Set(targets.map((t) => t.key));
    for (const key of this.current.keys()) if (!keys.has(key)) this.current.delete(key);
  }

  choose(targets: readonly LbEndpoint[], context: PickContext): Choice | undefined {
    if (this.weighted) return this.chooseWeighted(targets, context);
    const n = targets.length;
    for (let i = 0; i < n; i++) {
      const target = targets[(this.cursor + i) % n] as LbEndpoint;
      if (allowed(context, target)) {
        this.cursor = (this.cursor + i + 1) % n;
        return { target, how: 'round robin' };
      }
    }
    return undefined;
  }

  private chooseWeighted(targets: readonly LbEndpoint[], context: PickContext): Choice | undefined {
    let total = 0;
    let best: LbEndpoint | undefined;
    let bestValue = -Infinity;
    for (const target of targets) {
      if (!allowed(context, target)) continue;
      const value = (this.current.get(target.key) ?? 0) + target.weight;
      this.current.set(target.key, value);
      total += target.weight;
      if (value > bestValue) {
        bestValue = value;
        best = target;
      }
    }
    if (best === undefined) return undefined;
    this.current.set(best.key, bestValue - total);
    return { target: best, how: 'weighted round robin' };
  }
}

function weightedDraw(targets: readonly LbEndpoint[], random: Random): LbEndpoint {
  let total = 0;
  for (const t of targets) total += t.weight;
  let point = random() * total;
  for (const t of targets) {
    if (point < t.weight) return t;
    point -= t.weight;
  }
  return targets[targets.length - 1] as LbEndpoint;
}

class RandomChoice implements Strategy {
  readonly honoursExclude = true;
  private readonly random: Random;
  private weighted = false;

  constructor(random: Random) {
    this.random = random;
  }

  update(targets: readonly LbEndpoint[]): void {
    this.weighted = !equalWeights(targets);
  }

  choose(targets: readonly LbEndpoint[], context: PickContext): Choice | undefined {
    const pool = eligibleOf(targets, context);
    if (pool.length === 0) return undefined;
    const target = this.weighted ? weightedDraw(pool, this.random) : (pool[randomInt(this.random, pool.length)] as LbEndpoint);
    return { target, how: 'random' };
  }
}

class LeastRequest implements Strategy {
  readonly honoursExclude = true;
  private readonly random: Random;
  private readonly active: (key: string) => number;
  private weighted = false;

  constructor(random: Random, active: (key: string) => number) {
    this.random = random;
    this.active = active;
  }

  update(targets: readonly LbEndpoint[]): void {
    this.weighted = !equalWeights(targets);
  }

  choose(targets: readonly LbEndpoint[], context: PickContext): Choice | undefined {
    const pool = eligibleOf(targets, context);
    if (pool.length === 0) return undefined;
    const draw = (): LbEndpoint => (this.weighted ? weightedDraw(pool, this.random) : (pool[randomInt(this.random, pool.length)] as LbEndpoint));
    const first = draw();
    const second = draw();
    const load = (t: LbEndpoint): number => (this.weighted ? this.active(t.key) / t.weight : this.active(t.key));
    const target = load(second) < load(first) ? second : first;
    return { target, how: `least request (${this.active(first.key)} vs ${this.active(second.key)} active)` };
  }
}

/** The ring: sorted point hashes and, for each point, the index of its endpoint. */
export interface Ring {
  readonly hashes: Uint32Array;
  readonly owners: Uint32Array;
  readonly targets: readonly LbEndpoint[];
}

type HashPolicy = Extract<LoadBalancerSnapshot, { consistentHash: unknown }>;

class RingHash implements Strategy {
  readonly honoursExclude = false;
  private ring: Ring = { hashes: new Uint32Array(0), owners: new Uint32Array(0), targets: [] };
  private readonly policy: HashPolicy;
  private readonly random: Random;

  constructor(policy: HashPolicy, random: Random) {
    this.policy = policy;
    this.random = random;
  }

  update(targets: readonly LbEndpoint[]): void {
    this.ring = buildRing(targets, this.policy.minimumRingSize > 0 ? this.policy.minimumRingSize : DEFAULT_MIN_RING_SIZE);
  }

  choose(_targets: readonly LbEndpoint[], context: PickContext): Choice | undefined {
    const key = hashKeyOf(this.policy, context);
    const hash = key.value === undefined ? Math.floor(this.random() * 0x1_0000_0000) >>> 0 : hash32(key.value);
    const target = ringLookup(this.ring, hash, context);
    if (target === undefined) return undefined;
    return { target, how: key.value === undefined ? `ring hash, ${key.source} absent: random` : `ring hash of ${key.source}`, ...(key.setCookie === undefined ? {} : { setCookie: key.setCookie }) };
  }
}

/**
 * Ring points: each endpoint gets a share of the ring proportional to its weight, the smallest
 * share at least ⌈minimumRingSize × its weight fraction⌉ points (Envoy's sizing; at most 8M).
 * Note what this sizing implies: adding an (n+1)th endpoint moves the keys it takes over and
 * also those on the points the others give up as their share of a ring of about the same size
 * shrinks (≈ 30 % of keys when going from 4 to 5 endpoints); removing one moves its keys and
 * those the others' new points take.
 */
export function buildRing(targets: readonly LbEndpoint[], minimumRingSize: number): Ring {
  if (targets.length === 0) return { hashes: new Uint32Array(0), owners: new Uint32Array(0), targets };
  let total = 0;
  for (const t of targets) total += t.weight;
  let minShare = Infinity;
  for (const t of targets) minShare = Math.min(minShare, t.weight / total);
  const scale = Math.min(Math.ceil(minShare * Math.min(minimumRingSize, MAX_RING_SIZE)) / minShare, MAX_RING_SIZE);
  const counts: number[] = [];
  let target = 0;
  let current = 0;
  for (const t of targets) {
    target += (scale * t.weight) / total;
    const upTo = Math.round(target);
    counts.push(upTo - current);
    current = upTo;
  }
  // Sort (hash, owner) pairs packed into one float: hash × 2^20 + owner index (exact below 2^53).
  const packed = new Float64Array(current);
  let at = 0;
  targets.forEach((t, owner) => {
    const n = counts[owner] as number;
    for (let i = 0; i < n; i++) packed[at++] = hash32(`${t.key}_${i}`) * 1_048_576 + owner;
  });
  packed.sort();
  const hashes = new Uint32Array(current);
  const owners = new Uint32Array(current);
  for (let i = 0; i < current; i++) {
    const value = packed[i] as number;
    const owner = value % 1_048_576;
    owners[i] = owner;
    hashes[i] = (value - owner) / 1_048_576;
  }
  return { hashes, owners, targets };
}

/** The first point at or after `hash` (wrapping) whose endpoint is eligible. */
function ringLookup(ring: Ring, hash: number, context: PickContext): LbEndpoint | undefined {
  const n = ring.hashes.length;
  if (n === 0) return undefined;
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ring.hashes[mid] as number) < hash) lo = mid + 1;
    else hi = mid;
  }
  for (let i = 0; i < n; i++) {
    const target = ring.targets[ring.owners[(lo + i) % n] as number] as LbEndpoint;
    if (allowed(context, target)) return target;
  }
  return undefined;
}

/** The hash key a consistent-hash policy reads from a request (undefined: none available). */
export function hashKeyOf(policy: HashPolicy, context: PickContext): { value: string | undefined; source: string; setCookie?: string } {
  const hash = policy.consistentHash;
  if ('httpHeaderName' in hash) {
    const name = hash.httpHeaderName.toLowerCase();
    return { value: context.request?.headers.get(name), source: `header ${name}` };
  }
  if ('httpCookie' in hash) {
    const { name, path, ttlMs } = hash.httpCookie;
    const existing = cookieValue(context.request?.headers.get('cookie'), name);
    if (existing !== undefined && existing !== '') return { value: existing, source: `cookie ${name}` };
    if (ttlMs === undefined) return { value: undefined, source: `cookie ${name}` };
    // Envoy generates the cookie from the downstream connection's addresses, so every request
    // of that connection that races before the cookie is stored gets the same value.
    const value = hashHex64(context.connectionId ?? context.sourceIp ?? '');
    return { value, source: `generated cookie ${name}`, setCookie: setCookieValue(name, value, path, ttlMs) };
  }
  if ('useSourceIp' in hash) return { value: context.sourceIp, source: 'source IP' };
  const param = hash.httpQueryParameterName;
  const value = context.request === undefined ? undefined : parseQuery(queryOf(context.request.path)).get(param);
  return { value, source: `query parameter ${param}` };
}

/**
 * The `Set-Cookie` value Envoy sends for a generated hash cookie: the value quoted, `Max-Age`
 * in whole seconds unless the ttl is 0 (a session cookie), the path if configured, HttpOnly.
 */
export function setCookieValue(name: string, value: string, path: string | undefined, ttlMs: number): string {
  const seconds = Math.floor(ttlMs / 1000);
  let cookie = `${name}="${value}"`;
  if (seconds > 0) cookie += `; Max-Age=${seconds}`;
  if (path !== undefined && path !== '') cookie += `; Path=${path}`;
  return `${cookie}; HttpOnly`;
}
