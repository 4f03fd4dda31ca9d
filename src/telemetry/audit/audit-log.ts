/**
 * The audit log as the data plane and control plane see it: one call per event, the sampler
 * decides whether an allow is kept, and every configured sink gets the record.
 */
import type { QueueStats } from '../batching-queue.js';
import type { AuditRecord } from './record.js';
import { AuditSampler, type AllowSampling } from './sampler.js';
import type { AuditSink } from './sink.js';

export interface AuditLogOptions {
  readonly sinks: readonly AuditSink[];
  /** Default `all`: every allow is written. Denials are always written. */
  readonly allows?: AllowSampling;
  readonly random?: () => number;
}

export class AuditLog {
  private sampler: AuditSampler;
  private readonly random: (() => number) | undefined;
  private readonly sinks: readonly AuditSink[];
  private sampledOut = 0;

  constructor(options: AuditLogOptions) {
    this.sinks = options.sinks;
    this.random = options.random;
    this.sampler = new AuditSampler(options.allows ?? 'all', options.random);
  }

  /** Changes which allows are written from now on (a pushed config, for example). */
  setAllows(allows: AllowSampling): void {
    this.sampler = new AuditSampler(allows, this.random);
  }

  /** Never blocks: the sampler decides, then each sink queues the record. */
  record(record: AuditRecord): void {
    if (!this.sampler.shouldWrite(record)) {
      this.sampledOut++;
      return;
    }
    for (const sink of this.sinks) sink.write(record);
  }

  async flush(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.flush()));
  }

  async close(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.close()));
  }

  stats(): { sampledOut: number; sinks: QueueStats[] } {
    return { sampledOut: this.sampledOut, sinks: this.sinks.map((s) => s.stats()) };
  }
}
