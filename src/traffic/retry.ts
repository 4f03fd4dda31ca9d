/**
 * Retries with Istio's translation of `HTTPRetry` and Envoy's retry state machine.
 *
 * Istio (pilot's retry translation):
 * - No `retries` on a route: the default policy — 2 retries on
 *   `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`, and retries
 *   avoid the endpoints already tried (Envoy's `previous_hosts` predicate, 5 host-selection
 *   attempts) unless the destination uses consistent hashing. The retriable status code list is
 *   empty: Istio 1.24 stopped retrying 503 by default (a 503 may come from an application that
 *   did act on a non-idempotent request; the compatibility flag is gone since 1.26), so by
 *   default only connect failures, refused streams and gRPC UNAVAILABLE/CANCELLED are retried.
 * - `attempts` is the number of *retries* (Envoy's `num_retries`), so a request is tried at most
 *   attempts + 1 times; `attempts: 0` disables retries.
 * - `retryOn` replaces the default conditions. Items that are HTTP status codes become
 *   retriable status codes (and `retriable-status-codes` is added).
 *
 * Envoy, for each attempt's outcome:
 * - A response carrying `x-envoy-ratelimited` is retried only under `envoy-ratelimited`.
 * - `5xx`: any 5xx response, and any reset / connect failure / per-try timeout.
 * - `gateway-error`: 502, 503, 504, and likewise any reset / connect failure / timeout.
 * - `reset`: no response at all (reset, connect failure, per-try timeout).
 * - `reset-before-request`: a reset before the request headers were sent.
 * - `connect-failure`, `refused-stream` (HTTP/2 REFUSED_STREAM): just those.
 * - `retriable-4xx`: 409. `retriable-status-codes`: the listed codes.
 * - gRPC names (`cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`,
 *   `unavailable`) look at `grpc-status` in the response headers (a Trailers-Only response).
 *   Envoy cannot retry once a response has been forwarded, so a status from trailers only
 *   counts if the caller still holds the whole response.
 * - An overflow (the cluster's circuit breaker rejected the request) is never retried.
 * - `retriable-headers` and `http3-post-connect-failure` are accepted and never match (Istio
 *   has no field for retriable headers; there is no HTTP/3 here).
 * - Then: retries left? (else "limit exceeded"); the cluster's `maxRetries` circuit breaker
 *   (else "overflow", and the original outcome goes downstream); the request body must have
 *   been buffered (Envoy cannot replay a body it did not keep).
 * - Backoff before retry N (1-based): a uniform draw in [0, min((2^N − 1) × base, max)),
 *   base 25 ms by default (Istio's `retries.backoff`), max 10 × base.
 *
 * The overall route timeout covers every attempt and backoff; `attemptTimeoutMs` gives the
 * time one attempt may take.
 */
import { GRPC_CONDITIONS, isRetryStatusCode } from '../api/retry-conditions.js';
import type { HttpRetrySnapshot } from '../mesh/snapshot.js';
import type { Random } from './random.js';

/** Envoy's default base interval. */
export const DEFAULT_BACKOFF_BASE_MS = 25;

/** Istio's default retry policy (applies to every HTTP route without `retries`). */
export const ISTIO_DEFAULT_RETRY: Readonly<HttpRetrySnapshot> = Object.freeze({
  attempts: 2,
  retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
  retriableStatusCodes: [],
  backoffBaseMs: DEFAULT_BACKOFF_BASE_MS,
});

// The condition names live in src/api so validation checks the same list.
export { GRPC_CONDITIONS, HTTP_CONDITIONS, isRetryCondition } from '../api/retry-conditions.js';

/** What one attempt ended with, as the data plane observed it. */
export type AttemptOutcome =
  | {
      readonly kind: 'response';
      readonly status: number;
      /** `grpc-status` of a Trailers-Only response (or of trailers the caller still holds). */
      readonly grpcStatus?: number;
      /** The response carried `x-envoy-ratelimited`. */
      readonly rateLimited?: boolean;
    }
  | { readonly kind: 'connect-failure' }
  /** The stream or connection was reset; `beforeRequest`: before the request headers were sent. */
  | { readonly kind: 'reset'; readonly beforeRequest?: boolean }
  | { readonly kind: 'refused-stream' }
  | { readonly kind: 'per-try-timeout' }
  /** Rejected by this proxy's circuit breaker: never retried. */
  | { readonly kind: 'overflow' };

export interface CompiledRetryPolicy {
  /** Retries allowed after the first attempt (Istio's `attempts`). */
  readonly retries: number;
  readonly conditions: ReadonlySet<string>;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly grpcStatuses: ReadonlySet<number>;
  readonly perTryTimeoutMs?: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Retries avoid endpoints already tried (Envoy's previous_hosts predicate). */
  readonly avoidPreviousHosts: boolean;
}

/**
 * A route's retry policy. `retries` absent → Istio's default policy; `attempts: 0` → none
 * (undefined). `consistentHash`: the destination cluster hashes (then Istio does not avoid
 * previous hosts unless `retryIgnorePreviousHosts` says so explicitly).
 */
export function compileRetryPolicy(retries: HttpRetrySnapshot | undefined, options: { consistentHash?: boolean } = {}): CompiledRetryPolicy | undefined {
  const policy = retries ?? ISTIO_DEFAULT_RETRY;
  if (policy.attempts <= 0) return undefined;
  const conditions = new Set<string>();
  const codes = new Set<number>(policy.retriableStatusCodes);
  for (const raw of policy.retryOn) {
    const item = raw.trim();
    if (item === '') continue;
    if (isRetryStatusCode(item)) {
      codes.add(Number(item));
      conditions.add('retriable-status-codes');
    } else {
      conditions.add(item);
    }
  }
  const grpcStatuses = new Set<number>();
  for (const name of conditions) if (Object.hasOwn(GRPC_CONDITIONS, name)) grpcStatuses.add(GRPC_CONDITIONS[name] as number);
  const base = policy.backoffBaseMs > 0 ? policy.backoffBaseMs : DEFAULT_BACKOFF_BASE_MS;
  return {
    retries: policy.attempts,
    conditions,
    retriableStatusCodes: codes,
    grpcStatuses,
    ...(policy.perTryTimeoutMs !== undefined && policy.perTryTimeoutMs > 0 ? { perTryTimeoutMs: policy.perTryTimeoutMs } : {}),
    backoffBaseMs: base,
    backoffMaxMs: base * 10,
    avoidPreviousHosts: policy.retryIgnorePreviousHosts ?? options.consistentHash !== true,
  };
}

/**
 * The retry condition an outcome satisfies under a policy, e.g. `5xx`, `retriable-status-codes
 * (503)`, `unavailable (grpc-status 14)`; undefined when the outcome is not retriable.
 */
export function retryCondition(policy: CompiledRetryPolicy, outcome: AttemptOutcome): string | undefined {
  const on = policy.conditions;
  switch (outcome.kind) {
    case 'overflow':
      return undefined;
    case 'response': {
      if (outcome.rateLimited === true) return on.has('envoy-ratelimited') ? 'envoy-ratelimited' : undefined;
      const status = outcome.status;
      if (on.has('5xx') && status >= 500 && status <= 599) return '5xx';
      if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return 'gateway-error';
      if (on.has('retriable-4xx') && status === 409) return 'retriable-4xx';
      if (on.has('retriable-status-codes') && policy.retriableStatusCodes.has(status)) return `retriable-status-codes (${status})`;
      if (outcome.grpcStatus !== undefined && policy.grpcStatuses.has(outcome.grpcStatus)) {
        const name = Object.keys(GRPC_CONDITIONS).find((n) => GRPC_CONDITIONS[n] === outcome.grpcStatus && on.has(n));
        return `${name ?? 'grpc'} (grpc-status ${outcome.grpcStatus})`;
      }
      return undefined;
    }
    default: {
      // No response: a reset of some kind (Envoy counts connect failures, refused streams and
      // per-try timeouts as resets).
      if (on.has('reset')) return 'reset';
      if (on.has('reset-before-request') && (outcome.kind === 'connect-failure' || (outcome.kind === 'reset' && outcome.beforeRequest === true))) {
        return 'reset-before-request';
      }
      if (on.has('5xx')) return '5xx';
      if (on.has('gateway-error')) return 'gateway-error';
      if (on.has('refused-stream') && outcome.kind === 'refused-stream') return 'refused-stream';
      if (on.has('connect-failure') && outcome.kind === 'connect-failure') return 'connect-failure';
      return undefined;
    }
  }
}

/** Backoff before retry `retryNumber` (1 for the first retry): full jitter, capped. */
export function retryBackoffMs(retryNumber: number, baseMs: number, maxMs: number, random: Random): number {
  const n = Math.max(1, Math.min(retryNumber, 30));
  const upper = Math.min((2 ** n - 1) * baseMs, maxMs);
  return Math.floor(random() * upper);
}

export type RetryDecision =
  | {
      readonly retry: true;
      /** Wait this long, then send attempt number `attempt` (2 for the first retry). */
      readonly backoffMs: number;
      readonly attempt: number;
      readonly condition: string;
    }
  | {
      readonly retry: false;
      readonly reason: 'not-retriable' | 'no-policy' | 'limit-exceeded' | 'overflow' | 'body-not-buffered';
      /** The condition that would have retried, when one did. */
      readonly condition?: string;
    };

/** The `maxRetries` side of the cluster's circuit breaker (see circuit-breaker.ts). */
export interface RetryBudget {
  /** Takes a retry slot, or returns false if the cluster is at `maxRetries`. */
  tryAcquireRetry(): boolean;
  releaseRetry(): void;
}

/**
 * One request's retry state: attempts so far, retries left, the endpoints tried, and the retry
 * slot it holds in the cluster's breaker (from the decision to retry until the outcome of that
 * retry is known, as Envoy holds it).
 */
export class RetryState {
  readonly policy: CompiledRetryPolicy | undefined;
  private readonly random: Random;
  private readonly budget: RetryBudget | undefined;
  private retriesLeft: number;
  private attempts = 1;
  private holdingSlot = false;
  /** Endpoint keys tried so far (for `PickContext.exclude`). */
  readonly tried = new Set<string>();

  constructor(policy: CompiledRetryPolicy | undefined, options: { random: Random; budget?: RetryBudget }) {
    this.policy = policy;
    this.random = options.random;
    this.budget = options.budget;
    this.retriesLeft = policy?.retries ?? 0;
  }

  /** Attempts made so far, including the one in flight (x-envoy-attempt-count). */
  get attempt(): number {
    return this.attempts;
  }

  /** Endpoints to avoid on the next pick (empty when the policy keeps previous hosts). */
  get exclude(): ReadonlySet<string> {
    return this.policy?.avoidPreviousHosts === true ? this.tried : EMPTY;
  }

  /**
   * Decide after an attempt. `bodyBuffered`: the whole request body is held and can be sent
   * again (Envoy gives up retrying a request whose body outgrew its buffer). The route's
   * overall timeout is the caller's: it runs through backoffs and retries.
   */
  decide(outcome: AttemptOutcome, context: { bodyBuffered: boolean }): RetryDecision {
    this.releaseSlot();
    const policy = this.policy;
    if (policy === undefined) return { retry: false, reason: 'no-policy' };
    const condition = retryCondition(policy, outcome);
    if (condition === undefined) return { retry: false, reason: 'not-retriable' };
    if (this.retriesLeft <= 0) return { retry: false, reason: 'limit-exceeded', condition };
    this.retriesLeft--;
    if (!context.bodyBuffered) return { retry: false, reason: 'body-not-buffered', condition };
    if (this.budget !== undefined) {
      if (!this.budget.tryAcquireRetry()) return { retry: false, reason: 'overflow', condition };
      this.holdingSlot = true;
    }
    const backoffMs = retryBackoffMs(this.attempts, policy.backoffBaseMs, policy.backoffMaxMs, this.random);
    this.attempts++;
    return { retry: true, backoffMs, attempt: this.attempts, condition };
  }

  /** Records the endpoint an attempt went to (for previous-host avoidance). */
  triedEndpoint(key: string): void {
    this.tried.add(key);
  }

  /** The request is over: give back a retry slot still held. */
  finish(): void {
    this.releaseSlot();
  }

  private releaseSlot(): void {
    if (this.holdingSlot) {
      this.holdingSlot = false;
      this.budget?.releaseRetry();
    }
  }
}

const EMPTY: ReadonlySet<string> = new Set();

/**
 * How long the next attempt may run: the per-try timeout, bounded by what is left of the
 * overall timeout (Envoy: the route timeout includes all retries). Undefined: no limit.
 */
export function attemptTimeoutMs(policy: CompiledRetryPolicy | undefined, overallTimeoutMs: number | undefined, elapsedMs: number): number | undefined {
  const perTry = policy?.perTryTimeoutMs;
  const remaining = overallTimeoutMs !== undefined && overallTimeoutMs > 0 ? Math.max(0, overallTimeoutMs - elapsedMs) : undefined;
  if (perTry === undefined) return remaining;
  if (remaining === undefined) return perTry;
  return Math.min(perTry, remaining);
}
