/**
 * The one interface every audit sink implements. `write` is called on the request path, so it
 * only queues (see BatchingQueue); delivery happens on later ticks, in batches.
 */
import { BatchingQueue, type QueueStats } from '../batching-queue.js';
import type { AuditRecord } from './record.js';

export interface AuditSink {
  /** Queues the record; never blocks, never throws. A full buffer drops it and counts the drop. */
  write(record: AuditRecord): void;
  /** Resolves once every record written so far was delivered or given up. */
  flush(): Promise<void>;
  /** Flushes, then releases files and sockets. Later writes are dropped and counted. */
  close(): Promise<void>;
  stats(): QueueStats;
}

export interface QueuedSinkOptions {
  /** Records held in memory at most (default 10 000). */
  readonly bufferSize?: number;
  /** Records per delivery (default 100). */
  readonly maxBatch?: number;
  /** Told about deliveries that failed for good (e.g. to log them); must not throw. */
  readonly onError?: (err: unknown, lost: number) => void;
}

export const DEFAULT_BUFFER_SIZE = 10_000;
export const DEFAULT_MAX_BATCH = 100;

/** A sink that delivers batches from a bounded queue; subclasses say how a batch is written. */
export abstract class QueuedSink implements AuditSink {
  private readonly queue: BatchingQueue<AuditRecord>;

  protected constructor(options: QueuedSinkOptions = {}) {
    this.queue = new BatchingQueue<AuditRecord>({
      capacity: options.bufferSize ?? DEFAULT_BUFFER_SIZE,
      maxBatch: options.maxBatch ?? DEFAULT_MAX_BATCH,
      deliver: (batch) => this.deliver(batch),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    });
  }

  write(record: AuditRecord): void {
    this.queue.push(record);
  }

  flush(): Promise<void> {
    return this.queue.flush();
  }

  async close(): Promise<void> {
    if (this.queue.isClosed) return;
    await this.queue.close();
    await this.release();
  }

  stats(): QueueStats {
    return this.queue.stats();
  }

  protected abstract deliver(batch: readonly AuditRecord[]): Promise<void>;
  /** Frees files and sockets after the last delivery. */
  protected abstract release(): Promise<void>;
}
