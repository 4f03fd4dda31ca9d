/**
 * Audit records as JSON lines on a stream (stdout by default), for containers whose log
 * collector reads stdout. Honors the stream's backpressure instead of growing its buffer.
 */
import type { Writable } from 'node:stream';
import { writeWithBackpressure } from '../stream-write.js';
import { serializeRecord, type AuditRecord } from './record.js';
import { QueuedSink, type QueuedSinkOptions } from './sink.js';

export interface StreamSinkOptions extends QueuedSinkOptions {
  readonly stream?: Writable;
}

export class StreamSink extends QueuedSink {
  private readonly stream: Writable;

  constructor(options: StreamSinkOptions = {}) {
    super(options);
    this.stream = options.stream ?? process.stdout;
    // A closed reader (EPIPE) fails the deliveries, counted in stats(); it must not crash the proxy.
    this.stream.on('error', () => {});
  }

  protected async deliver(batch: readonly AuditRecord[]): Promise<void> {
    await writeWithBackpressure(this.stream, batch.map((r) => `${serializeRecord(r)}\n`).join(''));
  }

  /** stdout is not ours to close. */
  protected async release(): Promise<void> {}
}
