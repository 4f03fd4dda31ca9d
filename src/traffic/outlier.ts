/**
 * Passive outlier detection per endpoint, as Envoy does it with the settings Istio gives it
 * (DestinationRule `outlierDetection`):
 *
 * - Counters per endpoint. An upstream response: 5xx increments `consecutive 5xx`; 502/503/504
 *   also increment `consecutive gateway errors` (another 5xx resets that one); anything else
 *   resets both. Locally originated failures count as Envoy maps them: a connect failure or a
 *   reset as 503, a timeout as 504 — unless `splitExternalLocalOriginErrors` is set, in which
 *   case they only feed a separate `consecutive local-origin failures` counter and a response
 *   resets it.
 * - Reaching a threshold ejects the endpoint at once (not at the next interval), if ejecting
 *   it keeps the ejected share within `maxEjectionPercent` (Envoy ≥ 1.28 counts the endpoint
 *   being ejected: with the default 10 %, fewer than 10 endpoints means none is ejected).
 *   The counter resets either way.
 * - Ejection lasts `baseEjectionTime × k`, where k grows by one per ejection (capped so the
 *   time stays within Envoy's `max_ejection_time`, 300 s, which Istio does not set) and shrinks
 *   by one at every interval sweep that finds the endpoint healthy.
 * - Every `interval` a sweep returns endpoints whose time is up (their counters reset). Sweeps
 *   run lazily, at the interval boundaries that passed, whenever the detector is used.
 * - `minHealthPercent` is Envoy's panic threshold (Istio sets it, default 0): when the healthy
 *   share falls below it, ejections are ignored and every endpoint is eligible.
 *
 * Defaults where the snapshot leaves a field out, as Envoy applies them to Istio's config:
 * consecutive5xxErrors 5 (0 disables), consecutiveGatewayErrors disabled, and with
 * splitExternalLocalOriginErrors, consecutiveLocalOriginFailures 5.
 */
import type { OutlierDetectionSnapshot } from '../mesh/snapshot.js';
import type { Clock } from './random.js';

/** Envoy's default `max_ejection_time`. */
export const MAX_EJECTION_TIME_MS = 300_000;
const DEFAULT_CONSECUTIVE_5XX = 5;
const DEFAULT_CONSECUTIVE_LOCAL_ORIGIN = 5;

/** What happened to one request on one endpoint, as the data plane reports it. */
export type OutlierOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'connect-failure' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'timeout' };

export type EjectionReason = 'consecutive-5xx' | 'consecutive-gateway-errors' | 'consecutive-local-origin-failures';

/** Returned by `report` when the outcome triggered detection. */
export type OutlierEvent =
  | { readonly kind: 'ejected'; readonly endpoint: string; readonly reason: EjectionReason; readonly untilMs: number; readonly ejections: number }
  | { readonly kind: 'ejection-skipped'; readonly endpoint: string; readonly reason: EjectionReason; readonly why: 'max-ejection-percent' };

export interface EndpointHealth {
  readonly endpoint: string;
  readonly ejected: boolean;
  /** When an ejected endpoint becomes eligible again (at the first sweep at or after this time). */
  readonly ejectedUntilMs?: number;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayErrors: number;
  readonly consecutiveLocalOriginFailures: number;
  /** Ejection time multiplier (k above). */
  readonly backoff: number;
  readonly timesEjected: number;
}

export interface Eligibility {
  /** True when the endpoint may take traffic. */
  readonly eligible: (key: string) => boolean;
  /** Healthy share below `minHealthPercent`: ejections are ignored. */
  readonly panic: boolean;
  readonly healthy: number;
  readonly total: number;
}

interface Monitor {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
  ejected: boolean;
  ejectedAt: number;
  backoff: number;
  timesEjected: number;
}

const ALL_ELIGIBLE = (): boolean => true;

export class OutlierDetector {
  private config: OutlierDetectionSnapshot | undefined;
  private readonly now: Clock;
  private readonly monitors = new Map<string, Monitor>();
  private nextSweep: number;
  private ejectedCount = 0;

  constructor(config: OutlierDetectionSnapshot | undefined, endpoints: readonly string[], options: { now: Clock }) {
    this.config = config;
    this.now = options.now;
    this.nextSweep = this.now() + this.intervalMs();
    this.setEndpoints(endpoints);
  }

  get enabled(): boolean {
    return this.config !== undefined;
  }

  /** New settings (a new snapshot version). Ejections in progress keep their end time. */
  updateConfig(config: OutlierDetectionSnapshot | undefined): void {
    this.catchUp();
    const oldInterval = this.intervalMs();
    this.config = config;
    if (config === undefined) {
      for (const monitor of this.monitors.values()) resetMonitor(monitor);
      this.ejectedCount = 0;
    }
    if (this.intervalMs() !== oldInterval) this.nextSweep = this.now() + this.intervalMs();
  }

  /** The endpoint set changed: new endpoints start healthy, removed ones are forgotten. */
  setEndpoints(endpoints: readonly string[]): void {
    this.catchUp();
    const keep = new Set(endpoints);
    for (const [key, monitor] of this.monitors) {
      if (keep.has(key)) continue;
      if (monitor.ejected) this.ejectedCount--;
      this.monitors.delete(key);
    }
    for (const key of endpoints) if (!this.monitors.has(key)) this.monitors.set(key, freshMonitor());
  }

  /** Counts one outcome; returns what detection did, if anything. */
  report(endpoint: string, outcome: OutlierOutcome): OutlierEvent | undefined {
    this.catchUp();
    const config = this.config;
    const monitor = this.monitors.get(endpoint);
    if (config === undefined || monitor === undefined) return undefined;
    if (config.splitExternalLocalOriginErrors === true) {
      if (outcome.kind !== 'response') {
        monitor.consecutiveLocal++;
        const threshold = config.consecutiveLocalOriginFailures ?? DEFAULT_CONSECUTIVE_LOCAL_ORIGIN;
        if (threshold > 0 && monitor.consecutiveLocal === threshold) {
          const event = this.detect(endpoint, monitor, 'consecutive-local-origin-failures');
          if (event !== undefined) monitor.consecutiveLocal = 0;
          return event;
        }
        return undefined;
      }
      monitor.consecutiveLocal = 0;
      return this.countStatus(endpoint, monitor, outcome.status);
    }
    return this.countStatus(endpoint, monitor, statusOf(outcome));
  }

  private countStatus(endpoint: string, monitor: Monitor, status: number): OutlierEvent | undefined {
    const config = this.config as OutlierDetectionSnapshot;
    if (status < 500 || status > 599) {
      monitor.consecutive5xx = 0;
      monitor.consecutiveGateway = 0;
      return undefined;
    }
    let event: OutlierEvent | undefined;
    if (status === 502 || status === 503 || status === 504) {
      monitor.consecutiveGateway++;
      const threshold = config.consecutiveGatewayErrors ?? 0;
      if (threshold > 0 && monitor.consecutiveGateway === threshold) {
        event = this.detect(endpoint, monitor, 'consecutive-gateway-errors');
        if (event !== undefined) monitor.consecutiveGateway = 0;
      }
    } else {
      monitor.consecutiveGateway = 0;
    }
    monitor.consecutive5xx++;
    const threshold = config.consecutive5xxErrors ?? DEFAULT_CONSECUTIVE_5XX;
    if (threshold > 0 && monitor.consecutive5xx === threshold) {
      const second = this.detect(endpoint, monitor, 'consecutive-5xx');
      if (second !== undefined) monitor.consecutive5xx = 0;
      event ??= second;
    }
    return event;
  }

  /** An endpoint reached a threshold: eject it if the cap allows. Undefined if already ejected. */
  private detect(endpoint: string, monitor: Monitor, reason: EjectionReason): OutlierEvent | undefined {
    if (monitor.ejected) return undefined;
    const config = this.config as OutlierDetectionSnapshot;
    const total = this.monitors.size;
    const maxPercent = Math.min(100, config.maxEjectionPercent);
    if ((100 * (this.ejectedCount + 1)) / total > maxPercent) {
      return { kind: 'ejection-skipped', endpoint, reason, why: 'max-ejection-percent' };
    }
    const base = config.baseEjectionTimeMs;
    const max = Math.max(MAX_EJECTION_TIME_MS, base);
    monitor.ejected = true;
    monitor.ejectedAt = this.now();
    monitor.timesEjected++;
    if (monitor.backoff * base < max + base) monitor.backoff++;
    this.ejectedCount++;
    return { kind: 'ejected', endpoint, reason, untilMs: monitor.ejectedAt + this.ejectionTime(monitor), ejections: monitor.timesEjected };
  }

  private ejectionTime(monitor: Monitor): number {
    const config = this.config as OutlierDetectionSnapshot;
    const base = config.baseEjectionTimeMs;
    return Math.min(base * monitor.backoff, Math.max(MAX_EJECTION_TIME_MS, base));
  }

  isEjected(endpoint: string): boolean {
    this.catchUp();
    return this.monitors.get(endpoint)?.ejected === true;
  }

  /** Which endpoints may take traffic now, with the panic rule applied. */
  eligibility(): Eligibility {
    this.catchUp();
    const total = this.monitors.size;
    const healthy = total - this.ejectedCount;
    if (this.config === undefined || this.ejectedCount === 0) return { eligible: ALL_ELIGIBLE, panic: false, healthy, total };
    const threshold = this.config.minHealthPercent;
    const panic = total > 0 && threshold > 0 && (100 * healthy) / total < threshold;
    if (panic) return { eligible: ALL_ELIGIBLE, panic: true, healthy, total };
    return { eligible: (key) => this.monitors.get(key)?.ejected !== true, panic: false, healthy, total };
  }

  /** The current healthy (not ejected) endpoints, for admin output and explanations. */
  healthyEndpoints(): string[] {
    this.catchUp();
    return [...this.monitors].filter(([, m]) => !m.ejected).map(([key]) => key);
  }

  status(): EndpointHealth[] {
    this.catchUp();
    return [...this.monitors].map(([endpoint, m]) => ({
      endpoint,
      ejected: m.ejected,
      ...(m.ejected ? { ejectedUntilMs: m.ejectedAt + this.ejectionTime(m) } : {}),
      consecutive5xx: m.consecutive5xx,
      consecutiveGatewayErrors: m.consecutiveGateway,
      consecutiveLocalOriginFailures: m.consecutiveLocal,
      backoff: m.backoff,
      timesEjected: m.timesEjected,
    }));
  }

  private intervalMs(): number {
    const interval = this.config?.intervalMs ?? 10_000;
    return interval > 0 ? interval : 10_000;
  }

  /** Runs the interval sweeps whose time has come. */
  private catchUp(): void {
    const now = this.now();
    if (now < this.nextSweep) return;
    const interval = this.intervalMs();
    if (this.config === undefined) {
      this.nextSweep = now - ((now - this.nextSweep) % interval) + interval;
      return;
    }
    let budget = 100_000;
    while (this.nextSweep <= now) {
      const sweepAt = this.nextSweep;
      this.nextSweep += interval;
      const changed = this.sweep(sweepAt);
      // Nothing left that a sweep could change: jump to the first boundary after now.
      if ((!changed && this.quiescent()) || --budget === 0) {
        if (this.nextSweep <= now) this.nextSweep = now - ((now - this.nextSweep) % interval) + interval;
        break;
      }
    }
  }

  private sweep(at: number): boolean {
    let changed = false;
    for (const monitor of this.monitors.values()) {
      if (!monitor.ejected) {
        if (monitor.backoff > 0) {
          monitor.backoff--;
          changed = true;
        }
        continue;
      }
      if (at - monitor.ejectedAt >= this.ejectionTime(monitor)) {
        monitor.ejected = false;
        monitor.consecutive5xx = 0;
        monitor.consecutiveGateway = 0;
        this.ejectedCount--;
        changed = true;
      }
    }
    return changed;
  }

  private quiescent(): boolean {
    if (this.ejectedCount > 0) return false;
    for (const monitor of this.monitors.values()) if (monitor.backoff > 0) return false;
    return true;
  }
}

function statusOf(outcome: OutlierOutcome): number {
  switch (outcome.kind) {
    case 'response':
      return outcome.status;
    case 'connect-failure':
    case 'reset':
      return 503;
    case 'timeout':
      return 504;
  }
}

function freshMonitor(): Monitor {
  return { consecutive5xx: 0, consecutiveGateway: 0, consecutiveLocal: 0, ejected: false, ejectedAt: 0, backoff: 0, timesEjected: 0 };
}

function resetMonitor(monitor: Monitor): void {
  Object.assign(monitor, freshMonitor());
}
