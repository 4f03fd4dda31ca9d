/**
 * The proxy's audit log: every authorization decision of the inbound side (HTTP requests and
 * TCP connections) becomes an audit record — denials always, allows as configured (MeshConfig
 * `audit.allows`, pushed with the inbound snapshot, or the proxy's `--audit-allows`), and allows
 * that matched an AUDIT policy always. Records go to the control plane over the discovery
 * channel (one place to tail the whole mesh) and to any local sinks (`--audit`).
 *
 * Off the hot path: a decision only builds a small object and queues it; sinks deliver in
 * batches on later ticks, from bounded buffers that count what they drop.
 */
import type { Logger } from 'pino';
import type { AllowSampling, AuditSinkSpec } from '../api/audit-config.js';
import { describeAuditSink } from '../api/audit-config.js';
import { errorMessage } from '../api/errors.js';
import type { WorkloadSnapshot } from '../mesh/snapshot.js';
import type { InboundDecision } from '../policy/inbound.js';
import type { QueueStats } from '../telemetry/batching-queue.js';
import { AuditLog } from '../telemetry/audit/audit-log.js';
import { type AuditRecord, authzAuditRecord, type AuthzAuditContext } from '../telemetry/audit/record.js';
import { QueuedSink, type AuditSink } from '../telemetry/audit/sink.js';
import { createAuditSink } from '../telemetry/audit/sink-factory.js';
import type { ConnectionInfo } from './connection.js';
import { getHeader } from './headers.js';
import type { L7Request } from './l7/types.js';

/** MeshConfig's default: allows are not audited unless configured (or marked by an AUDIT policy). */
export const DEFAULT_AUDIT_ALLOWS: AllowSampling = 'none';

export interface ProxyAuditOptions {
  /** Local sinks besides the control plane (`--audit`). */
  readonly sinks: readonly AuditSinkSpec[];
  /** This proxy's own setting (`--audit-allows`); wins over the pushed MeshConfig value. */
  readonly allows?: AllowSampling;
  /** Sends a batch to the control plane; absent: records stay local. */
  readonly report?: (records: AuditRecord[]) => Promise<void>;
  /** The current workload and the pushed allow sampling, read per decision (they change live). */
  readonly workload: () => WorkloadSnapshot | undefined;
  readonly configuredAllows: () => AllowSampling | undefined;
  readonly log: Logger;
}

export class ProxyAudit {
  private readonly log: AuditLog;
  private readonly options: ProxyAuditOptions;
  private allows: AllowSampling;

  constructor(options: ProxyAuditOptions) {
    this.options = options;
    const onError = (what: string) => (err: unknown, lost: number) =>
      options.log.warn({ event: 'audit.delivery_failed', sink: what, lost, err: errorMessage(err) }, `audit records could not be delivered to ${what}`);
    const sinks: AuditSink[] = options.sinks.map((spec) => createAuditSink(spec, { onError: onError(describeAuditSink(spec)), appName: 'trellis-proxy' }));
    if (options.report) sinks.push(new ControlPlaneAuditSink(options.report, { onError: onError('the control plane') }));
    this.allows = this.effectiveAllows();
    this.log = new AuditLog({ sinks, allows: this.allows });
  }

  /** The inbound L7 layers' hook. */
  onRequest(request: L7Request, decision: InboundDecision): void {
    const queryAt = request.path.indexOf('?');
    this.record(decision, request.connection, {
      method: request.method,
      host: request.authority,
      // The query is left out: it may carry a token (access_token). The normalized path is what was authorized.
      path: decision.path ?? (queryAt === -1 ? request.path : request.path.slice(0, queryAt)),
      protocol: request.protocol,
    }, getHeader(request.headers, 'x-request-id'), traceIdOf(getHeader(request.headers, 'traceparent')), decision.requestPrincipal);
  }

  /** The TCP listener's hook: one decision per connection. */
  onConnection(connection: ConnectionInfo, decision: InboundDecision): void {
    this.record(decision, connection, undefined, undefined, undefined, undefined);
  }

  stats(): { allows: AllowSampling; sampledOut: number; sinks: QueueStats[] } {
    return { allows: this.allows, ...this.log.stats() };
  }

  flush(): Promise<void> {
    return this.log.flush();
  }

  close(): Promise<void> {
    return this.log.close();
  }

  private effectiveAllows(): AllowSampling {
    return this.options.allows ?? this.options.configuredAllows() ?? DEFAULT_AUDIT_ALLOWS;
  }

  private record(
    decision: InboundDecision,
    connection: ConnectionInfo,
    request: AuthzAuditContext['request'],
    requestId: string | undefined,
    traceId: string | undefined,
    requestPrincipal: string | undefined,
  ): void {
    try {
      const allows = this.effectiveAllows();
      if (allows !== this.allows) {
        this.allows = allows;
        this.log.setAllows(allows);
      }
      const workload = this.options.workload();
      const context: AuthzAuditContext = {
        source: {
          ...(connection.peer ? { principal: connection.peer.identity.toString() } : {}),
          address: connection.sourceIp,
          port: connection.sourcePort,
        },
        ...(requestPrincipal === undefined ? {} : { requestPrincipal }),
        destination: {
          workload: workload?.name ?? '',
          namespace: workload?.namespace ?? '',
          ...(workload ? { principal: workload.identity } : {}),
          port: connection.destPort,
        },
        ...(request === undefined ? {} : { request }),
        mtls: connection.peer !== undefined,
        mtlsMode: decision.mtlsMode,
        stage: decision.stage,
        ...(requestId === undefined ? {} : { requestId }),
        ...(traceId === undefined ? {} : { traceId }),
      };
      this.log.record(authzAuditRecord(decision, context));
    } catch (err) {
      // Auditing must never break a request; the proxy log still has every denial.
      this.options.log.warn({ event: 'audit.record_failed', err: errorMessage(err) }, 'could not build an audit record');
    }
  }
}

/** W3C traceparent `00-<trace id>-<span id>-<flags>` → the trace id. */
function traceIdOf(traceparent: string | undefined): string | undefined {
  const match = traceparent === undefined ? null : /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/.exec(traceparent.trim());
  return match?.[1];
}

/**
 * Records to the control plane, in batches over the proxy's mTLS channel. While the control
 * plane is away a batch is retried with backoff (records behind it wait in the bounded buffer,
 * and what does not fit is dropped and counted); after the last attempt the batch counts as failed.
 */
export class ControlPlaneAuditSink extends QueuedSink {
  private closing = false;
  /** Backoff waits in progress: close() ends them early. */
  private readonly waits = new Map<NodeJS.Timeout, () => void>();

  constructor(
    private readonly report: (records: AuditRecord[]) => Promise<void>,
    options: { onError?: (err: unknown, lost: number) => void; maxAttempts?: number; initialBackoffMs?: number } = {},
  ) {
    super({ maxBatch: 200, ...(options.onError ? { onError: options.onError } : {}) });
    this.maxAttempts = options.maxAttempts ?? 8;
    this.initialBackoffMs = options.initialBackoffMs ?? 250;
  }

  private readonly maxAttempts: number;
  private readonly initialBackoffMs: number;

  override async close(): Promise<void> {
    this.closing = true;
    for (const [timer, resolve] of this.waits) {
      clearTimeout(timer);
      resolve();
    }
    this.waits.clear();
    await super.close();
  }

  protected async deliver(batch: readonly AuditRecord[]): Promise<void> {
    let backoff = this.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.report([...batch]);
        return;
      } catch (err) {
        if (this.closing || attempt >= this.maxAttempts) throw err;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.waits.delete(timer);
            resolve();
          }, backoff * (0.8 + Math.random() * 0.4));
          this.waits.set(timer, resolve);
        });
        backoff = Math.min(5_000, backoff * 2);
      }
    }
  }

  protected async release(): Promise<void> {}
}
