/**
 * The hot-path side of every log sink: `push` only appends to a bounded in-memory queue and never
 * waits or throws; a drain loop started on a later tick hands batches to the sink's `deliver`.
 * When the queue is full the new item is dropped and counted, so a slow or dead receiver costs
 * log records, never request latency.
 */

export interface QueueStats {
  /** Items waiting, including the batch being delivered. */
  readonly buffered: number;
  readonly delivered: number;
  /** Refused because the queue was full (or the sink closed). */
  readonly dropped: number;
  /** Handed to `deliver`, which gave up on them. */
  readonly failed: number;
}

export interface BatchingQueueOptions<T> {
  /** Most items held at once; beyond it new items are dropped. */
  readonly capacity: number;
  readonly maxBatch: number;
  /** Delivers one batch; rejecting counts the batch as failed (the sink did its own retrying). */
  readonly deliver: (batch: T[]) => Promise<void>;
  /** Told about failed batches so the owner can log them; must not throw. */
  readonly onError?: (err: unknown, lost: number) => void;
}

export class BatchingQueue<T> {
  private readonly items: T[] = [];
  private inFlight = 0;
  private draining = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private delivered = 0;
  private dropped = 0;
  private failed = 0;

  constructor(private readonly options: BatchingQueueOptions<T>) {
    if (!(options.capacity >= 1) || !(options.maxBatch >= 1)) throw new RangeError('capacity and maxBatch must be at least 1');
  }

  /** Never blocks: queues the item or counts it as dropped. Returns whether it was queued. */
  push(item: T): boolean {
    if (this.closed || this.items.length + this.inFlight >= this.options.capacity) {
      this.dropped++;
      return false;
    }
    this.items.push(item);
    if (!this.draining) {
      this.draining = true;
      // A later tick: the caller's request finishes before any I/O work starts.
      setImmediate(() => void this.drain());
    }
    return true;
  }

  stats(): QueueStats {
    return { buffered: this.items.length + this.inFlight, delivered: this.delivered, dropped: this.dropped, failed: this.failed };
  }

  /** Resolves once everything pushed so far was delivered or given up. */
  flush(): Promise<void> {
    if (!this.draining && this.items.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses further items (they count as dropped) and flushes the rest. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private async drain(): Promise<void> {
    try {
      while (this.items.length > 0) {
        const batch = this.items.splice(0, this.options.maxBatch);
        this.inFlight = batch.length;
        try {
          await this.options.deliver(batch);
          this.delivered += batch.length;
        } catch (err) {
          this.failed += batch.length;
          try {
            this.options.onError?.(err, batch.length);
          } catch {
            // A broken error handler must not stop the drain loop.
          }
        } finally {
          this.inFlight = 0;
        }
      }
    } finally {
      this.draining = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
