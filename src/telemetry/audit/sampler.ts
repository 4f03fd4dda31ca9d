/**
 * Which authorization allows reach the audit log. Denials, certificate and configuration events
 * are always written: sampling only thins the high-volume, low-value stream of allows.
 */
import type { AllowSampling } from '../../api/audit-config.js';
import type { AuditRecord } from './record.js';

export type { AllowSampling } from '../../api/audit-config.js';

export class AuditSampler {
  readonly fraction: number;

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
    // Istio's AUDIT action: a matching AUDIT policy marks this request for the audit log.
    if (record.auditPolicies !== undefined && record.auditPolicies.length > 0) return true;
    if (this.fraction >= 1) return true;
    if (this.fraction <= 0) return false;
    return this.random() < this.fraction;
  }
}

export { parseAllowSampling } from '../../api/audit-config.js';
