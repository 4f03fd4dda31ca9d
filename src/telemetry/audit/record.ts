/**
 * What the audit log says. Three kinds of event: an authorization decision (every denial, allows
 * as sampled), a certificate event (issued, refused, revoked, revocation lifted) and a
 * configuration event (who changed what, which version). Records are plain JSON: sinks
 * serialize them as they are, after {@link redactRecord}.
 */
import type { AuthzDecision } from '../../policy/authorizer.js';
import { redactHeaders } from './redact.js';

export interface AuditPeer {
  /** SPIFFE ID from the verified peer certificate; absent for plaintext callers. */
  readonly principal?: string;
  readonly address?: string;
  readonly port?: number;
}

export interface DryRunOutcome {
  readonly policy: string;
  readonly rule: number;
  readonly effect: 'would allow' | 'would deny';
}

export interface AuthzAuditRecord {
  readonly kind: 'authz';
  /** RFC 3339 with milliseconds, UTC. */
  readonly time: string;
  readonly decision: 'ALLOW' | 'DENY';
  /** `namespace/name` of the deciding policy; null when a default decided. */
  readonly policy: string | null;
  readonly rule: number | null;
  readonly action: string | null;
  readonly reason: string;
  readonly dryRun: readonly DryRunOutcome[];
  /** The outcome had the dry-run policies been enforced too. */
  readonly dryRunDecision?: 'ALLOW' | 'DENY';
  /** AUDIT policies that matched (Istio's AUDIT action). */
  readonly auditPolicies?: readonly string[];
  readonly source: AuditPeer;
  /** `iss/sub` of the verified request JWT. */
  readonly requestPrincipal?: string;
  readonly destination: { readonly workload: string; readonly namespace: string; readonly principal?: string; readonly port?: number };
  /** Absent for L4 (TCP) decisions. */
  readonly request?: {
    readonly method?: string;
    readonly host?: string;
    readonly path?: string;
    readonly protocol?: string;
    /** Only when configured; credential headers are always redacted. */
    readonly headers?: Readonly<Record<string, string>>;
  };
  /** `mutual_tls` when the peer presented a verified mesh certificate, else `none`. */
  readonly mtls: 'mutual_tls' | 'none';
  /** The port's PeerAuthentication mode when the decision was made. */
  readonly mtlsMode?: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  /** The step that decided: mtls, request (target refused), authentication (JWT) or authorization. */
  readonly stage?: 'mtls' | 'request' | 'authentication' | 'authorization';
  readonly requestId?: string;
  readonly traceId?: string;
  /** Set by the control plane: the SPIFFE ID of the proxy that reported the record, as its mTLS connection proved it. */
  readonly reporter?: string;
}

/** Certificate and CA events, as the CA's own log (<ca>/audit.log) names them. */
export type CertificateEvent =
  | 'issued'
  | 'refused'
  | 'revoked'
  | 'revocation-lifted'
  | 'token-created'
  | 'ca-initialized'
  | 'rotation-started'
  | 'rotation-activated'
  | 'root-removed';

export interface CertificateAuditRecord {
  readonly kind: 'certificate';
  readonly time: string;
  readonly event: CertificateEvent;
  /** Who asked: an operator (`cli:<user>`), a proven workload identity, or `system`. */
  readonly actor?: string;
  readonly identity?: string;
  readonly serial?: string;
  readonly notAfter?: string;
  readonly reason?: string;
  /** Revocation of an identity: the serials it revoked. Rotation: the root's fingerprint. */
  readonly serials?: readonly string[];
  readonly root?: string;
}

/** What one accepted config version changed, as `Kind namespace/name` resource IDs. */
export interface ConfigChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly modified: readonly string[];
}

export interface ConfigAuditRecord {
  readonly kind: 'config';
  readonly time: string;
  /**
   * `changed`: the store accepted a new version; `refused`: the store refused a change (the
   * previous version stays live); `applied`/`rejected`: a proxy ACKed or NACKed a version.
   */
  readonly event: 'changed' | 'refused' | 'applied' | 'rejected';
  readonly actor?: string;
  readonly resource?: { readonly kind: string; readonly namespace?: string; readonly name: string };
  readonly operation?: 'create' | 'update' | 'delete';
  readonly version: string;
  readonly previousVersion?: string;
  /** For applied/rejected: the proxy's identity. */
  readonly proxy?: string;
  /** For applied/rejected: the workload (`namespace/name`) and resource type. */
  readonly workload?: string;
  readonly type?: string;
  readonly reason?: string;
  /** For `changed`: every resource added, removed or modified by this version. */
  readonly changes?: ConfigChanges;
  /** For `refused`: the validation errors, `file:line:col: message`. */
  readonly errors?: readonly string[];
}

export type AuditRecord = AuthzAuditRecord | CertificateAuditRecord | ConfigAuditRecord;
export type AuditKind = AuditRecord['kind'];

/** What the data plane knows about a request beyond the decision itself. */
export interface AuthzAuditContext {
  readonly time?: Date;
  readonly source: AuditPeer;
  readonly requestPrincipal?: string;
  readonly destination: AuthzAuditRecord['destination'];
  readonly request?: AuthzAuditRecord['request'];
  readonly mtls: boolean;
  readonly mtlsMode?: AuthzAuditRecord['mtlsMode'];
  readonly stage?: AuthzAuditRecord['stage'];
  readonly requestId?: string;
  readonly traceId?: string;
}

/** The audit record of one authorization decision. */
export function authzAuditRecord(decision: AuthzDecision, context: AuthzAuditContext): AuthzAuditRecord {
  const record: AuthzAuditRecord = {
    kind: 'authz',
    time: (context.time ?? new Date()).toISOString(),
    decision: decision.decision,
    policy: decision.policy,
    rule: decision.rule,
    action: decision.action,
    reason: decision.reason,
    dryRun: decision.dryRun.map((d) => ({ policy: d.policy, rule: d.rule, effect: d.effect })),
    ...(decision.dryRunDecision === undefined ? {} : { dryRunDecision: decision.dryRunDecision }),
    ...(decision.audit.length === 0 ? {} : { auditPolicies: decision.audit.map((a) => a.policy) }),
    source: context.source,
    ...(context.requestPrincipal === undefined ? {} : { requestPrincipal: context.requestPrincipal }),
    destination: context.destination,
    ...(context.request === undefined ? {} : { request: context.request }),
    mtls: context.mtls ? 'mutual_tls' : 'none',
    ...(context.mtlsMode === undefined ? {} : { mtlsMode: context.mtlsMode }),
    ...(context.stage === undefined ? {} : { stage: context.stage }),
    ...(context.requestId === undefined ? {} : { requestId: context.requestId }),
    ...(context.traceId === undefined ? {} : { traceId: context.traceId }),
  };
  return redactRecord(record);
}

/** The record with credential headers masked; sinks call it again so no path skips it. */
export function redactRecord<R extends AuditRecord>(record: R): R {
  if (record.kind !== 'authz' || record.request?.headers === undefined) return record;
  return { ...record, request: { ...record.request, headers: redactHeaders(record.request.headers) } };
}

/** One JSON line, redacted. */
export function serializeRecord(record: AuditRecord): string {
  return JSON.stringify(redactRecord(record));
}

export function isDenial(record: AuditRecord): boolean {
  return record.kind === 'authz' && record.decision === 'DENY';
}
