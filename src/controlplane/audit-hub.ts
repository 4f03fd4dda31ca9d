/**
 * The mesh's audit log, collected at the control plane: authorization records reported by the
 * proxies (Audit.Report), certificate events from the CA's log, and config events. Every record
 * goes to <state>/audit.log (always: denials are never recorded nowhere), to the sinks of
 * MeshConfig `audit.sinks` (rebuilt when they change), and to the admin API's audit stream,
 * which keeps the latest records in memory for `trellis audit tail --since`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { describeAuditSink, parseAuditSinkSpec } from '../api/audit-config.js';
import { parseDuration } from '../api/duration.js';
import { errorMessage } from '../api/errors.js';
import type { QueueStats } from '../telemetry/batching-queue.js';
import { FileSink } from '../telemetry/audit/file-sink.js';
import { type AuditRecord, redactRecord } from '../telemetry/audit/record.js';
import type { AuditSink } from '../telemetry/audit/sink.js';
import { createAuditSink } from '../telemetry/audit/sink-factory.js';
import { type AuditFilter, matchesAuditFilter } from '../telemetry/audit/text.js';

export const AUDIT_LOG_FILE = 'audit.log';
/** Records kept in memory for the admin API's backlog (`since`). */
export const AUDIT_MEMORY = 2_000;

export interface AuditHubOptions {
  stateDir: string;
  logger: Logger;
  /** <state>/audit.log rotation: size (default 50 MiB) and rotated files kept (default 5). */
  maxFileBytes?: number;
  keepFiles?: number;
  memory?: number;
}

export class AuditHub {
  private readonly file: FileSink;
  private extra: { key: string; sinks: { name: string; sink: AuditSink }[] } = { key: '[]', sinks: [] };
  private readonly recent: AuditRecord[] = [];
  private readonly subscribers = new Set<(record: AuditRecord) => void>();
  private readonly memory: number;
  private readonly logger: Logger;
  private closed = false;

  constructor(options: AuditHubOptions) {
    this.logger = options.logger;
    this.memory = options.memory ?? AUDIT_MEMORY;
    this.file = new FileSink({
      path: join(options.stateDir, AUDIT_LOG_FILE),
      maxBytes: options.maxFileBytes ?? 50 * 1024 * 1024,
      keep: options.keepFiles ?? 5,
      onError: this.onError(AUDIT_LOG_FILE),
    });
  }

  /** Never blocks: each sink queues the record. */
  record(record: AuditRecord): void {
    if (this.closed) return;
    const clean = redactRecord(record);
    this.recent.push(clean);
    if (this.recent.length > this.memory) this.recent.splice(0, this.recent.length - this.memory);
    this.file.write(clean);
    for (const { sink } of this.extra.sinks) sink.write(clean);
    for (const subscriber of this.subscribers) subscriber(clean);
  }

  /** MeshConfig `audit.sinks` (already validated): replaces the extra sinks when they changed. */
  configure(specs: readonly string[]): void {
    const key = JSON.stringify(specs);
    if (key === this.extra.key || this.closed) return;
    const previous = this.extra.sinks;
    const sinks: { name: string; sink: AuditSink }[] = [];
    for (const text of specs) {
      try {
        const spec = parseAuditSinkSpec(text);
        const name = describeAuditSink(spec);
        sinks.push({ name, sink: createAuditSink(spec, { onError: this.onError(name), appName: 'trellis' }) });
      } catch (err) {
        this.logger.error({ event: 'audit.sink-failed', err: errorMessage(err) }, 'cannot open an audit sink');
      }
    }
    this.extra = { key, sinks };
    this.logger.info({ event: 'audit.sinks', sinks: [AUDIT_LOG_FILE, ...sinks.map((s) => s.name)] }, 'audit sinks configured');
    // Records already queued on the old sinks are still delivered.
    void Promise.all(previous.map(({ sink }) => sink.close()));
  }

  subscribe(listener: (record: AuditRecord) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  /** The records in memory that match, oldest first. */
  backlog(filter: AuditFilter): AuditRecord[] {
    return this.recent.filter((record) => matchesAuditFilter(record, filter));
  }

  stats(): { file: QueueStats; sinks: Record<string, QueueStats>; subscribers: number } {
    return { file: this.file.stats(), sinks: Object.fromEntries(this.extra.sinks.map(({ name, sink }) => [name, sink.stats()])), subscribers: this.subscribers.size };
  }

  async flush(): Promise<void> {
    await Promise.all([this.file.flush(), ...this.extra.sinks.map(({ sink }) => sink.flush())]);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
    await Promise.all([this.file.close(), ...this.extra.sinks.map(({ sink }) => sink.close())]);
  }

  /**
   * GET /audit — newline-delimited JSON records. Query: `denied=true`, `workload=ns/name`,
   * `kind=authz,config,certificate`, `since=10m|<RFC 3339>` (backlog from memory),
   * `follow=true` (keep the response open for new records), `count=N` (end after N records).
   */
  serve(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let filter: AuditFilter;
    let count: number | undefined;
    try {
      filter = parseFilter(url.searchParams);
      const countText = url.searchParams.get('count');
      if (countText !== null) {
        count = Number(countText);
        if (!Number.isInteger(count) || count < 1) throw new RangeError(`count "${countText}" must be a whole number ≥ 1`);
      }
    } catch (err) {
      const body = `${JSON.stringify({ error: errorMessage(err) })}\n`;
      res.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const follow = isTrue(url.searchParams.get('follow'));
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    if (req.method === 'HEAD') return void res.end();
    let sent = 0;
    let unsubscribe: (() => void) | undefined;
    const finish = (): void => {
      unsubscribe?.();
      unsubscribe = undefined;
      if (!res.writableEnded) res.end();
    };
    const send = (record: AuditRecord): void => {
      if (res.writableEnded) return;
      res.write(`${JSON.stringify(record)}\n`);
      sent++;
      if (count !== undefined && sent >= count) finish();
    };
    if (filter.since !== undefined) {
      for (const record of this.backlog(filter)) {
        send(record);
        if (res.writableEnded) return;
      }
    }
    if (!follow) return finish();
    const { since: _since, ...live } = filter;
    // A slow reader is cut off rather than buffering without bound.
    unsubscribe = this.subscribe((record) => {
      if (!matchesAuditFilter(record, live)) return;
      if (res.writableLength > 4 * 1024 * 1024) {
        this.logger.warn({ event: 'audit.stream-slow' }, 'an audit stream reader is too slow; closing its stream');
        res.destroy();
        return;
      }
      send(record);
    });
    res.on('close', () => {
      unsubscribe?.();
      unsubscribe = undefined;
    });
  }

  private onError(name: string): (err: unknown, lost: number) => void {
    return (err, lost) => this.logger.warn({ event: 'audit.delivery-failed', sink: name, lost, err: errorMessage(err) }, `audit records could not be delivered to ${name}`);
  }
}

function isTrue(value: string | null): boolean {
  return value === 'true' || value === '1' || value === '';
}

const KINDS = new Set(['authz', 'config', 'certificate']);

/** The query of GET /audit as a filter; `since` is a duration back from now or an RFC 3339 time. */
export function parseFilter(params: URLSearchParams, now = Date.now()): AuditFilter {
  const since = params.get('since');
  const workload = params.get('workload');
  const kinds = (params.get('kind') ?? '').split(',').map((k) => k.trim()).filter((k) => k !== '');
  for (const kind of kinds) if (!KINDS.has(kind)) throw new RangeError(`kind "${kind}": use authz, config or certificate`);
  if (workload !== null && !/^[^/\s]+\/[^/\s]+$/.test(workload)) throw new RangeError(`workload "${workload}": expected NAMESPACE/NAME`);
  let sinceMs: number | undefined;
  if (since !== null && since !== '') {
    if (/^\d{4}-\d{2}-\d{2}/.test(since)) {
      sinceMs = Date.parse(since);
      if (Number.isNaN(sinceMs)) throw new RangeError(`since "${since}": not an RFC 3339 time`);
    } else {
      try {
        sinceMs = now - parseDuration(since);
      } catch {
        throw new RangeError(`since "${since}": give a duration (10m, 1h) or an RFC 3339 time`);
      }
    }
  }
  return {
    ...(isTrue(params.get('denied')) && params.has('denied') ? { denied: true } : {}),
    ...(workload === null ? {} : { workload }),
    ...(kinds.length === 0 ? {} : { kinds: kinds as AuditFilter['kinds'] & string[] }),
    ...(sinceMs === undefined ? {} : { since: sinceMs }),
  };
}
