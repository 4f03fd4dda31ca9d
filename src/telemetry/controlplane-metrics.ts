/**
 * The control plane's metrics (port 15014). Where istiod has a metric for the same thing the name,
 * type, labels and buckets are istiod's (istio/istio `pilot/pkg/xds/monitoring.go`,
 * `pilot/pkg/xds/statusgen`/`monitoring` for rejects, `security/pkg/server/ca/monitoring.go`,
 * `galley` validation), so Istio's control-plane dashboard reads Trellis. What istiod has no
 * metric for is `trellis_*`. One Registry per instance, never the global one.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Exposition } from './istio-metrics.js';

/** istiod's `pilot_xds_push_time` buckets, seconds. */
export const PUSH_TIME_BUCKETS: readonly number[] = [0.01, 0.1, 1, 3, 5, 10, 20, 30];
/** istiod's `pilot_proxy_convergence_time` buckets, seconds. */
export const CONVERGENCE_BUCKETS: readonly number[] = [0.1, 0.5, 1, 3, 5, 10, 20, 30];
/** Certificate TTLs in seconds: 5 min … 30 days; SVIDs default to 1 h, CA certificates last longer. */
export const CERT_TTL_BUCKETS: readonly number[] = [300, 900, 1800, 3600, 7200, 21600, 43200, 86400, 604800, 2592000];

/** Resource type of a push; Trellis pushes whole snapshots plus the identity material. */
export type PushType = string;

export interface ValidationSubject {
  /** API group, e.g. `security.istio.io`. */
  readonly group: string;
  readonly version: string;
  /** Lower-case plural resource, e.g. `authorizationpolicies` (as in Kubernetes admission). */
  readonly resource: string;
}

export class ControlPlaneMetrics {
  readonly registry = new Registry();

  private readonly connected: Gauge<'version'>;
  private readonly pushes: Counter<'type'>;
  private readonly pushTime: Histogram<'type'>;
  private readonly convergence: Histogram;
  private readonly rejects: Counter<'type'>;
  private readonly validationPassed: Counter<'group' | 'version' | 'resource'>;
  private readonly validationFailed: Counter<'group' | 'version' | 'resource' | 'reason'>;
  private readonly csrs: Counter;
  private readonly issued: Counter;
  private readonly signErrors: Counter<'error'>;
  private readonly authnFailures: Counter;
  private readonly ttl: Histogram;
  private readonly rootExpiry: Gauge;
  private readonly revocations: Counter<'action'>;
  private readonly revoked: Gauge;
  private readonly configVersion: Gauge<'version'>;
  private readonly configChanges: Counter<'outcome'>;
  private currentVersion: string | undefined;
  private readonly connectedByVersion = new Map<string, number>();

  constructor() {
    const registers = [this.registry];
    this.connected = new Gauge({ name: 'pilot_xds', help: 'Proxies connected to this control plane, by proxy version.', labelNames: ['version'], registers });
    this.pushes = new Counter({ name: 'pilot_xds_pushes', help: 'Pushes by resource type; <type>_senderr counts failed sends.', labelNames: ['type'], registers });
    this.pushTime = new Histogram({
      name: 'pilot_xds_push_time',
      help: 'Seconds to build and send one push, by resource type.',
      labelNames: ['type'],
      buckets: [...PUSH_TIME_BUCKETS],
      registers,
    });
    this.convergence = new Histogram({
      name: 'pilot_proxy_convergence_time',
      help: 'Seconds from a configuration change until a proxy acknowledged it.',
      buckets: [...CONVERGENCE_BUCKETS],
      registers,
    });
    this.rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'Pushes the proxies rejected (NACK), by resource type.', labelNames: ['type'], registers });
    this.validationPassed = new Counter({ name: 'galley_validation_passed', help: 'Resources that passed validation.', labelNames: ['group', 'version', 'resource'], registers });
    this.validationFailed = new Counter({
      name: 'galley_validation_failed',
      help: 'Resources that failed validation, by reason (the TRELLIS_… error code).',
      labelNames: ['group', 'version', 'resource', 'reason'],
      registers,
    });
    this.csrs = new Counter({ name: 'citadel_server_csr_count', help: 'Certificate signing requests received.', registers });
    this.issued = new Counter({ name: 'citadel_server_success_cert_issuance_count', help: 'Certificates issued.', registers });
    this.signErrors = new Counter({ name: 'citadel_server_csr_sign_err_count', help: 'Signing requests refused or failed, by error.', labelNames: ['error'], registers });
    this.authnFailures = new Counter({ name: 'citadel_server_authentication_failure_count', help: 'Signing requests whose caller could not be authenticated.', registers });
    this.ttl = new Histogram({ name: 'trellis_ca_issued_certificate_ttl_seconds', help: 'Lifetime of issued certificates in seconds.', buckets: [...CERT_TTL_BUCKETS], registers });
    this.rootExpiry = new Gauge({ name: 'citadel_server_root_cert_expiry_timestamp', help: 'Unix time, in seconds, at which the root certificate expires.', registers });
    this.revocations = new Counter({ name: 'trellis_ca_revocations_total', help: 'Revocations added and lifted.', labelNames: ['action'], registers });
    this.revoked = new Gauge({ name: 'trellis_ca_revoked_certificates', help: 'Entries currently on the revocation list.', registers });
    this.configChanges = new Counter({
      name: 'trellis_config_changes_total',
      help: 'Changed configuration sets the store loaded, by outcome (accepted: went live; refused: invalid, the previous set stays live).',
      labelNames: ['outcome'],
      registers,
    });
    this.configVersion = new Gauge({ name: 'trellis_config_version_info', help: 'The configuration version the control plane serves (value 1).', labelNames: ['version'], registers });
  }

  proxyConnected(version = 'unknown'): void {
    this.adjustConnected(version, 1);
  }

  proxyDisconnected(version = 'unknown'): void {
    this.adjustConnected(version, -1);
  }

  recordPush(type: PushType, seconds: number): void {
    this.pushes.inc({ type });
    this.pushTime.observe({ type }, seconds);
  }

  /** istiod counts failed sends in the same family under `<type>_senderr`. */
  recordPushSendError(type: PushType): void {
    this.pushes.inc({ type: `${type}_senderr` });
  }

  recordConvergence(seconds: number): void {
    this.convergence.observe(seconds);
  }

  recordNack(type: PushType): void {
    this.rejects.inc({ type });
  }

  recordValidationPassed(subject: ValidationSubject): void {
    this.validationPassed.inc({ ...subject });
  }

  recordValidationFailed(subject: ValidationSubject, reason: string): void {
    this.validationFailed.inc({ ...subject, reason });
  }

  recordCsr(): void {
    this.csrs.inc();
  }

  recordCertificateIssued(ttlSeconds: number): void {
    this.issued.inc();
    this.ttl.observe(ttlSeconds);
  }

  /** `error` is a short machine value (`csr_invalid`, `identity_not_proven`, `revoked`, …). */
  recordSignError(error: string): void {
    this.signErrors.inc({ error });
  }

  recordAuthenticationFailure(): void {
    this.authnFailures.inc();
  }

  setRootExpiry(notAfter: Date): void {
    this.rootExpiry.set(notAfter.getTime() / 1000);
  }

  recordRevocation(action: 'added' | 'lifted', listSize: number): void {
    this.revocations.inc({ action });
    this.revoked.set(listSize);
  }

  recordConfigChange(outcome: 'accepted' | 'refused'): void {
    this.configChanges.inc({ outcome });
  }

  setConfigVersion(version: string): void {
    if (this.currentVersion !== undefined && this.currentVersion !== version) this.configVersion.remove({ version: this.currentVersion });
    this.currentVersion = version;
    this.configVersion.set({ version }, 1);
  }

  async exposition(): Promise<Exposition> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private adjustConnected(version: string, delta: number): void {
    const next = Math.max(0, (this.connectedByVersion.get(version) ?? 0) + delta);
    this.connectedByVersion.set(version, next);
    this.connected.set({ version }, next);
  }
}
