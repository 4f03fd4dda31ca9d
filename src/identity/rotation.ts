/**
 * Keeps a workload's SVID fresh. Renews at half life (with jitter, so a fleet started together
 * does not renew together), keeps the current certificate while the CA is unreachable, retries
 * with capped exponential backoff, and tells listeners about each new certificate so TLS
 * contexts can switch without dropping connections.
 */
import { EventEmitter } from 'node:events';
import { errorMessage } from '../api/errors.js';
import type { TrustBundle } from './bundle.js';
import type { SpiffeId } from './spiffe-id.js';
import { type Svid, svidFromPem } from './svid.js';
import { createKeyAndCsr } from './workload-key.js';

/** Sends a CSR to the CA (over whatever channel) and returns the signed chain and the bundle. */
export type CsrSigner = (csrPem: string, id: SpiffeId) => Promise<{ chainPem: string; bundle: TrustBundle }>;

export interface RotatorOptions {
  id: SpiffeId;
  sign: CsrSigner;
  /** Fraction of the lifetime after which to renew (default 0.5: half life). */
  renewAt?: number;
  /** Random spread around the renewal time, as a fraction of the lifetime (default 0.1). */
  jitter?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface RotatorEvents {
  rotated: [svid: Svid, bundle: TrustBundle];
  /** A renewal attempt failed; the current SVID stays in use. */
  renewalFailed: [error: Error, attempt: number, retryInMs: number];
}

/** setTimeout cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class SvidRotator extends EventEmitter<RotatorEvents> {
  private readonly options: Required<Omit<RotatorOptions, 'id' | 'sign'>> & Pick<RotatorOptions, 'id' | 'sign'>;
  private svid: Svid | undefined;
  private trust: TrustBundle | undefined;
  /** When the current SVID arrived: certificates are backdated, so the lifetime counts from here. */
  private obtainedAt = 0;
  private renewalAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;

  constructor(options: RotatorOptions) {
    super();
    this.options = {
      renewAt: 0.5,
      jitter: 0.1,
      minBackoffMs: 1_000,
      maxBackoffMs: 60_000,
      now: Date.now,
      random: Math.random,
      ...options,
    };
  }

  get current(): Svid {
    if (!this.svid) throw new Error('SvidRotator: no SVID yet; await start() first');
    return this.svid;
  }

  get bundle(): TrustBundle {
    if (!this.trust) throw new Error('SvidRotator: no bundle yet; await start() first');
    return this.trust;
  }

  /** Uses `initial` if given (a restart with a still-valid SVID), else fetches one now. */
  async start(initial?: { svid: Svid; bundle: TrustBundle }): Promise<Svid> {
    if (initial && initial.svid.notAfter.getTime() > this.options.now()) {
      this.svid = initial.svid;
      this.trust = initial.bundle;
      this.obtainedAt = initial.svid.notBefore.getTime();
      this.schedule(this.renewalDelay(initial.svid));
    } else {
      await this.renew();
    }
    return this.current;
  }

  /** Renews now; on failure keeps the current SVID and schedules a retry. Throws only without any SVID. */
  async renewNow(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    try {
      await this.renew();
    } catch (err) {
      if (!this.svid) throw err;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async renew(): Promise<void> {
    try {
      const { keyPem, csrPem } = await createKeyAndCsr(this.options.id);
      const { chainPem, bundle } = await this.options.sign(csrPem, this.options.id);
      const svid = svidFromPem(keyPem, chainPem);
      if (!svid.id.equals(this.options.id)) throw new Error(`the CA returned a certificate for ${svid.id.toString()}, expected ${this.options.id.toString()}`);
      if (this.stopped) return;
      this.svid = svid;
      this.trust = bundle;
      this.obtainedAt = this.options.now();
      this.failures = 0;
      this.schedule(this.renewalDelay(svid));
      this.emit('rotated', svid, bundle);
    } catch (err) {
      this.failures += 1;
      const error = err instanceof Error ? err : new Error(errorMessage(err));
      const retryInMs = this.backoff();
      if (!this.stopped) this.schedule(retryInMs);
      this.emit('renewalFailed', error, this.failures, retryInMs);
      if (!this.svid) throw error;
    }
  }

  /** When the next renewal is scheduled (epoch ms), for status output. */
  get nextRenewalAt(): number | undefined {
    return this.renewalAt;
  }

  private renewalDelay(svid: Svid): number {
    const start = Math.max(svid.notBefore.getTime(), this.obtainedAt);
    const lifetime = svid.notAfter.getTime() - start;
    const spread = (this.options.random() * 2 - 1) * this.options.jitter;
    const at = start + lifetime * Math.min(0.9, Math.max(0.1, this.options.renewAt + spread));
    return Math.max(0, at - this.options.now());
  }

  /** Full-jitter exponential backoff, but never past the current certificate's expiry. */
  private backoff(): number {
    const ceiling = Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** Math.min(this.failures - 1, 20));
    let delay = this.options.minBackoffMs / 2 + this.options.random() * (ceiling - this.options.minBackoffMs / 2);
    if (this.svid) {
      const untilExpiry = this.svid.notAfter.getTime() - this.options.now();
      if (untilExpiry > 0) delay = Math.min(delay, Math.max(this.options.minBackoffMs / 2, untilExpiry / 2));
    }
    return delay;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.renewalAt = this.options.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.renew().catch(() => {
        // Reported through 'renewalFailed'; the retry is already scheduled.
      });
    }, Math.min(delayMs, MAX_TIMER_MS));
    // A library timer must not keep the process alive on its own.
    this.timer.unref();
  }
}
