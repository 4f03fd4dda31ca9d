/**
 * The CA keeps its own audit log (<ca>/audit.log, one JSON event per line, written synchronously
 * by whoever uses the CA: the control plane when it issues SVIDs, the CLI when an operator
 * creates a token, revokes or rotates). The control plane follows that file and hands each new
 * event to the mesh's audit pipeline as a certificate record, so CA events from every process
 * land in the same stream, format and sinks as the authorization decisions.
 *
 * Following starts at the file's current end: history stays in the file itself.
 */
import { open, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { errorMessage } from '../api/errors.js';
import type { IdentityAuditEvent } from '../identity/audit.js';
import type { CertificateAuditRecord, CertificateEvent } from '../telemetry/audit/record.js';

const EVENTS: Record<IdentityAuditEvent['type'], CertificateEvent> = {
  'ca.initialized': 'ca-initialized',
  'token.created': 'token-created',
  'svid.issued': 'issued',
  'svid.refused': 'refused',
  'revocation.added': 'revoked',
  'revocation.lifted': 'revocation-lifted',
  'rotation.started': 'rotation-started',
  'rotation.activated': 'rotation-activated',
  'rotation.root-removed': 'root-removed',
};

/** One line of <ca>/audit.log as a certificate audit record; undefined for anything else. */
export function certificateRecordOf(line: string): CertificateAuditRecord | undefined {
  let event: Partial<IdentityAuditEvent>;
  try {
    event = JSON.parse(line) as Partial<IdentityAuditEvent>;
  } catch {
    return undefined;
  }
  const kind = typeof event.type === 'string' ? EVENTS[event.type] : undefined;
  if (kind === undefined || typeof event.time !== 'string') return undefined;
  const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  const reason = [str(event.reason), str(event['message'])].filter((p) => p !== undefined).join(': ');
  const serials = Array.isArray(event['serials']) ? (event['serials'] as unknown[]).filter((s): s is string => typeof s === 'string') : undefined;
  const optional = {
    actor: str(event.actor),
    identity: str(event.identity),
    serial: str(event.serial),
    notAfter: str(event['notAfter']) ?? str(event['expiresAt']),
    reason: reason === '' ? undefined : reason,
    root: str(event['root']),
  };
  return {
    kind: 'certificate',
    time: event.time,
    event: kind,
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
    ...(serials === undefined ? {} : { serials }),
  } as CertificateAuditRecord;
}

export class CaAuditFollower {
  private offset = 0;
  private partial = '';
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly path: string,
    private readonly onRecord: (record: CertificateAuditRecord) => void,
    private readonly logger: Logger,
    private readonly intervalMs = 250,
  ) {}

  async start(): Promise<void> {
    this.offset = (await stat(this.path).catch(() => undefined))?.size ?? 0;
    this.timer = setInterval(() => {
      this.reading ??= this.read().finally(() => (this.reading = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Reads what was appended so far (also called by the timer). */
  async poll(): Promise<void> {
    await this.reading;
    await this.read();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.reading;
    // Events written just before the stop still reach the audit log.
    await this.read();
  }

  private async read(): Promise<void> {
    try {
      const size = (await stat(this.path).catch(() => undefined))?.size;
      if (size === undefined) return;
      // Replaced or truncated: start over at its beginning.
      if (size < this.offset) {
        this.offset = 0;
        this.partial = '';
      }
      if (size === this.offset) return;
      const handle = await open(this.path, 'r');
      try {
        const buffer = Buffer.alloc(size - this.offset);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
        this.offset += bytesRead;
        const text = this.partial + buffer.subarray(0, bytesRead).toString('utf8');
        const lines = text.split('\n');
        this.partial = lines.pop() ?? '';
        for (const line of lines) {
          const record = line.trim() === '' ? undefined : certificateRecordOf(line);
          if (record) this.onRecord(record);
        }
      } finally {
        await handle.close();
      }
    } catch (err) {
      this.logger.warn({ event: 'audit.ca-follow-failed', path: this.path, err: errorMessage(err) }, 'cannot read the CA audit log');
    }
  }
}
