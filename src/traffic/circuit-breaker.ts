/**
 * A cluster's circuit breakers (DestinationRule `connectionPool`), as accounting the data plane
 * consults before it sends: Envoy's resource counters, with Istio's defaults (every limit
 * 2^32−1, i.e. unlimited, unless the DestinationRule sets it).
 *
 * - `http2MaxRequests` (Envoy's max_requests, despite the name for every protocol): requests
 *   in flight to the cluster. At the limit a new request overflows at once.
 * - `tcp.maxConnections` with `http1MaxPendingRequests`, for HTTP/1.1 upstreams, where every
 *   request in flight holds a connection: with `maxConnections` requests in flight, a new one
 *   waits for a connection in the pending queue, and overflows when the queue already holds
 *   `http1MaxPendingRequests`. On multiplexed (HTTP/2) upstreams requests share connections,
 *   so only `http2MaxRequests` limits them (the pool keeps one connection per endpoint).
 * - `maxRetries`: retries in flight to the cluster (see RetryState, which holds a slot from
 *   the decision to retry until that retry's outcome).
 *
 * An overflow is answered 503 with the response flag UO. A retry that overflows is simply not
 * made (the original outcome goes downstream, no UO), as in Envoy.
 *
 * Waiting requests are tickets: when a request finishes, the oldest pending ticket is started
 * and its callback runs synchronously — no timers here; the data plane cancels a ticket whose
 * request gave up (downstream gone, timeout).
 */
import type { ConnectionPoolSnapshot } from '../mesh/snapshot.js';
import type { RetryBudget } from './retry.js';

export const UNLIMITED = 2 ** 32 - 1;

export type OverflowReason = 'max-requests' | 'max-pending-requests';

/** A request admitted to the cluster; call `release` exactly once when it ends. */
export interface RequestSlot {
  release(): void;
}

export type Admission =
  | { readonly kind: 'started'; readonly slot: RequestSlot }
  /** Waiting for a connection; `onStart` will be called with the slot, unless cancelled first. */
  | { readonly kind: 'queued'; cancel(): void }
  | { readonly kind: 'overflow'; readonly reason: OverflowReason; readonly responseFlag: 'UO' };

type Limits = Required<Pick<ConnectionPoolSnapshot, 'maxConnections' | 'http1MaxPendingRequests' | 'http2MaxRequests' | 'maxRetries'>>;

interface Pending {
  readonly onStart: (slot: RequestSlot) => void;
  cancelled: boolean;
}

export class CircuitBreaker implements RetryBudget {
  private limits: Limits;
  private multiplexed: boolean;
  private active = 0;
  private retries = 0;
  private readonly queue: Pending[] = [];
  private pendingCount = 0;
  /** Overflow counters, for stats. */
  readonly overflows = { requests: 0, pending: 0, retries: 0 };

  constructor(pool: ConnectionPoolSnapshot, options: { multiplexed: boolean }) {
    this.limits = limitsOf(pool);
    this.multiplexed = options.multiplexed;
  }

  /** New limits (a snapshot version): counters carry over; newly allowed pending requests start. */
  update(pool: ConnectionPoolSnapshot, options?: { multiplexed: boolean }): void {
    this.limits = limitsOf(pool);
    if (options !== undefined) this.multiplexed = options.multiplexed;
    this.drain();
  }

  get stats(): { active: number; pending: number; retries: number } {
    return { active: this.active, pending: this.pendingCount, retries: this.retries };
  }

  /**
   * Asks to send a request. `onStart` is used only if the request has to wait (HTTP/1.1 at
   * `maxConnections`): it is called with the slot once a connection frees up.
   */
  admit(onStart: (slot: RequestSlot) => void): Admission {
    if (this.active >= this.limits.http2MaxRequests) {
      this.overflows.requests++;
      return { kind: 'overflow', reason: 'max-requests', responseFlag: 'UO' };
    }
    if (this.multiplexed || (this.active < this.limits.maxConnections && this.pendingCount === 0)) {
      return { kind: 'started', slot: this.take() };
    }
    if (this.pendingCount >= this.limits.http1MaxPendingRequests) {
      this.overflows.pending++;
      return { kind: 'overflow', reason: 'max-pending-requests', responseFlag: 'UO' };
    }
    const pending: Pending = { onStart, cancelled: false };
    this.queue.push(pending);
    this.pendingCount++;
    return {
      kind: 'queued',
      cancel: () => {
        if (pending.cancelled) return;
        pending.cancelled = true;
        this.pendingCount--;
      },
    };
  }

  /** Whether a request could start right now without waiting (for explanations and tests). */
  canStart(): boolean {
    return this.active < this.limits.http2MaxRequests && (this.multiplexed || (this.active < this.limits.maxConnections && this.pendingCount === 0));
  }

  tryAcquireRetry(): boolean {
    if (this.retries >= this.limits.maxRetries) {
      this.overflows.retries++;
      return false;
    }
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    if (this.retries > 0) this.retries--;
  }

  private take(): RequestSlot {
    this.active++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.active--;
        this.drain();
      },
    };
  }

  /** Starts queued requests while connections (and request slots) are free. */
  private drain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0] as Pending;
      if (head.cancelled) {
        this.queue.shift();
        continue;
      }
      const room = this.active < this.limits.http2MaxRequests && (this.multiplexed || this.active < this.limits.maxConnections);
      if (!room) return;
      this.queue.shift();
      this.pendingCount--;
      head.onStart(this.take());
    }
  }
}

function limitsOf(pool: ConnectionPoolSnapshot): Limits {
  const limit = (value: number | undefined): number => (value !== undefined && value > 0 ? value : UNLIMITED);
  return {
    maxConnections: limit(pool.maxConnections),
    http1MaxPendingRequests: limit(pool.http1MaxPendingRequests),
    http2MaxRequests: limit(pool.http2MaxRequests),
    maxRetries: limit(pool.maxRetries),
  };
}
