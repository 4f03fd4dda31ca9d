/**
 * Local rate limiting (Trellis `RateLimit`, compiled into RateLimitSnapshot): token buckets
 * like Envoy's local rate limit filter — a bucket starts full with `maxTokens`, gets
 * `tokensPerFill` more at every `fillInterval` (never above `maxTokens`), and each request
 * takes one token. Refills are computed lazily from the injected clock: no timers.
 *
 * A request is checked against every rule it matches (paths with Istio's string and template
 * patterns on the path without query, methods exactly, destination ports); it passes only if
 * every matched bucket has a token, and then takes one from each (all or nothing, so a
 * rejected request costs nothing). Buckets are per workload (one per rule) or per caller
 * identity (one per rule and caller, at most `maxCallerBuckets` in all, least recently used
 * evicted — an evicted caller starts again with a full bucket). Requests without a peer
 * identity share one caller bucket per rule.
 */
import type { RateLimitSnapshot } from '../mesh/snapshot.js';
import { compilePathMatcher, type PathMatcher } from '../policy/path-match.js';
import type { Clock } from './random.js';
import { pathOnly } from './request.js';

export interface TokenBucketConfig {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

export class TokenBucket {
  private readonly config: TokenBucketConfig;
  private tokens: number;
  private lastFill: number;

  constructor(config: TokenBucketConfig, now: number) {
    this.config = config;
    this.tokens = config.maxTokens;
    this.lastFill = now;
  }

  private refill(now: number): void {
    const { maxTokens, tokensPerFill, fillIntervalMs } = this.config;
    if (now < this.lastFill) {
      this.lastFill = now; // the clock went back: restart the interval, keep the tokens
      return;
    }
    if (fillIntervalMs <= 0) {
      this.tokens = maxTokens;
      this.lastFill = now;
      return;
    }
    const fills = Math.floor((now - this.lastFill) / fillIntervalMs);
    if (fills <= 0) return;
    this.tokens = Math.min(maxTokens, this.tokens + fills * tokensPerFill);
    this.lastFill += fills * fillIntervalMs;
  }

  /** Tokens available now. */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** Takes `count` tokens if there are that many. */
  tryTake(now: number, count = 1): boolean {
    this.refill(now);
    if (this.tokens < count) return false;
    this.tokens -= count;
    return true;
  }

  /** Milliseconds until the next fill adds tokens (0 if a token is available now). */
  msUntilToken(now: number): number {
    this.refill(now);
    if (this.tokens >= 1) return 0;
    if (this.config.tokensPerFill <= 0) return Infinity;
    return Math.max(0, this.lastFill + this.config.fillIntervalMs - now);
  }
}

export interface RateLimitRequest {
  /** Path as received (the query is ignored), normalized like authorization's. */
  path: string;
  method: string;
  /** The workload port the request arrived on. */
  port: number;
  /** The caller's identity (SPIFFE ID / principal); absent for plaintext callers. */
  caller?: string;
}

export type RateLimitDecision =
  | { readonly allowed: true; readonly rules: number }
  | {
      readonly allowed: false;
      /** For `retry-after`: whole seconds until the bucket refills, at least 1. */
      readonly retryAfterSeconds: number;
      /** `namespace/name` of the RateLimit. */
      readonly source: string;
      /** Index of the rule in that RateLimit's `rules`. */
      readonly rule: number;
      readonly per: 'workload' | 'caller';
    };

interface CompiledRule {
  readonly id: string;
  readonly source: string;
  readonly index: number;
  readonly per: 'workload' | 'caller';
  readonly config: TokenBucketConfig;
  readonly paths?: PathMatcher;
  readonly methods?: ReadonlySet<string>;
  readonly ports?: ReadonlySet<number>;
}

export const DEFAULT_MAX_CALLER_BUCKETS = 10_000;
const NO_CALLER = '(no peer identity)';

export class LocalRateLimiter {
  private rules: CompiledRule[] = [];
  private readonly now: Clock;
  private readonly maxCallerBuckets: number;
  private readonly workloadBuckets = new Map<string, TokenBucket>();
  /** Insertion order = least recently used first. */
  private readonly callerBuckets = new Map<string, TokenBucket>();

  constructor(limits: readonly RateLimitSnapshot[] | undefined, options: { now: Clock; maxCallerBuckets?: number }) {
    this.now = options.now;
    this.maxCallerBuckets = Math.max(1, options.maxCallerBuckets ?? DEFAULT_MAX_CALLER_BUCKETS);
    this.update(limits);
  }

  /** New limits (a snapshot version). Buckets of rules whose settings did not change keep their tokens. */
  update(limits: readonly RateLimitSnapshot[] | undefined): void {
    this.rules = (limits ?? []).flatMap((limit) =>
      limit.rules.map((rule, index): CompiledRule => {
        const config = { maxTokens: rule.maxTokens, tokensPerFill: rule.tokensPerFill, fillIntervalMs: rule.fillIntervalMs };
        return {
          id: JSON.stringify([limit.source, index, rule]),
          source: limit.source,
          index,
          per: rule.per,
          config,
          ...(rule.match.paths !== undefined && rule.match.paths.length > 0 ? { paths: compilePathMatcher(rule.match.paths) } : {}),
          ...(rule.match.methods !== undefined && rule.match.methods.length > 0 ? { methods: new Set(rule.match.methods) } : {}),
          ...(rule.match.ports !== undefined && rule.match.ports.length > 0 ? { ports: new Set(rule.match.ports) } : {}),
        };
      }),
    );
    const ids = new Set(this.rules.map((r) => r.id));
    for (const id of this.workloadBuckets.keys()) if (!ids.has(id)) this.workloadBuckets.delete(id);
    for (const key of this.callerBuckets.keys()) if (!ids.has(key.slice(0, key.indexOf('\n')))) this.callerBuckets.delete(key);
  }

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /** Number of caller buckets held (bounded by maxCallerBuckets). */
  get callerBucketCount(): number {
    return this.callerBuckets.size;
  }

  check(request: RateLimitRequest): RateLimitDecision {
    if (this.rules.length === 0) return { allowed: true, rules: 0 };
    const now = this.now();
    const path = pathOnly(request.path);
    const matched: Array<[CompiledRule, TokenBucket]> = [];
    for (const rule of this.rules) {
      if (rule.ports !== undefined && !rule.ports.has(request.port)) continue;
      if (rule.methods !== undefined && !rule.methods.has(request.method)) continue;
      if (rule.paths !== undefined && !rule.paths.test(path)) continue;
      matched.push([rule, this.bucketFor(rule, request.caller, now)]);
    }
    for (const [rule, bucket] of matched) {
      if (bucket.available(now) < 1) {
        const wait = bucket.msUntilToken(now);
        return {
          allowed: false,
          retryAfterSeconds: Number.isFinite(wait) ? Math.max(1, Math.ceil(wait / 1000)) : 3600,
          source: rule.source,
          rule: rule.index,
          per: rule.per,
        };
      }
    }
    for (const [, bucket] of matched) bucket.tryTake(now);
    return { allowed: true, rules: matched.length };
  }

  private bucketFor(rule: CompiledRule, caller: string | undefined, now: number): TokenBucket {
    if (rule.per === 'workload') {
      let bucket = this.workloadBuckets.get(rule.id);
      if (bucket === undefined) {
        bucket = new TokenBucket(rule.config, now);
        this.workloadBuckets.set(rule.id, bucket);
      }
      return bucket;
    }
    const key = `${rule.id}\n${caller ?? NO_CALLER}`;
    let bucket = this.callerBuckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(rule.config, now);
      if (this.callerBuckets.size >= this.maxCallerBuckets) {
        const oldest = this.callerBuckets.keys().next().value;
        if (oldest !== undefined) this.callerBuckets.delete(oldest);
      }
    } else {
      this.callerBuckets.delete(key);
    }
    this.callerBuckets.set(key, bucket);
    return bucket;
  }
}
