/**
 * Which authorization allows reach the audit log. Denials, certificate and configuration events
 * are always written: sampling only thins the high-volume, low-value stream of allows.
 */
import type { AuditRecord } from './record.js';

/** `all`, `none`, or the fraction of allows to keep (0…1). */
export type AllowSampling = 'all' | 'none' | number;

export class AuditSampler {
  private readonly fraction: number;

  constructor(
    sampling: AllowSampling,
    private readonly random: () => number = Math.random,
  ) {
    if (typeof sampling === 'number') {
      if (!Number.isFinite(sampling) || sampling < 0 || sampling > 1) throw new RangeError(`allow sampling must be between 0 and 1, got ${sampling}`);
      this.fraction = sampling;
    } else {
      this.fraction = sampling === 'all' ? 1 : 0;
    }
  }

  shouldWrite(record: AuditRecord): boolean {
    if (record.kind !== 'authz' || record.decision === 'DENY') return true;
    if (this.fraction >= 1) return true;
    if (this.fraction <= 0) return false;
    return this.random() < this.fraction;
  }
}

/** Parses `all`, `none`, `0.1` or `10%` as given in configuration. */
export function parseAllowSampling(text: string): AllowSampling {
  const trimmed = text.trim();
  if (trimmed === 'all' || trimmed === 'none') return trimmed;
  const percent = trimmed.endsWith('%');
  const value = Number(percent ? trimmed.slice(0, -1) : trimmed);
  const fraction = percent ? value / 100 : value;
  if (trimmed === '' || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
    throw new RangeError(`audit allow sampling must be "all", "none", a fraction 0…1 or a percentage, got "${text}"`);
  }
  return fraction;
}
