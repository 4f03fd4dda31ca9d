/**
 * A request body that streams to the upstream as it arrives and is recorded on the side, up to
 * a limit, so a retry can send it again — Envoy's per-request buffer. Nothing waits for the
 * whole body: a streaming gRPC call that sends a little and waits for answers flows. A retry
 * gets the recorded bytes first, then whatever arrives later. A body that outgrows the limit is
 * sent once and never replayed (no retry, no mirror).
 */
import { PassThrough, Readable } from 'node:stream';

/** Envoy-like per-request buffer for retries and mirrors. */
export const REPLAY_LIMIT_BYTES = 64 * 1024;

export class RequestBody {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private error: Error | undefined;
  private attempts = 0;
  /** The stream of the current attempt; the chunks that arrive go there. */
  private current: PassThrough | undefined;
  private readonly settledPromise: Promise<boolean>;

  constructor(
    private readonly source: Readable,
    private readonly limit = REPLAY_LIMIT_BYTES,
  ) {
    let settle: (replayable: boolean) => void = () => undefined;
    this.settledPromise = new Promise((resolve) => (settle = resolve));
    if (source.readableEnded) {
      this.ended = true;
      settle(true);
      return;
    }
    source.on('data', (chunk: Buffer) => {
      this.size += chunk.length;
      if (this.size <= this.limit) this.chunks.push(chunk);
      else if (this.chunks.length > 0) {
        this.chunks.length = 0;
        settle(false);
      }
      const target = this.current;
      // Within the limit every chunk is kept anyway, so reading on is bounded; past it, the
      // attempt's pace (backpressure) decides.
      if (target && !target.write(chunk) && this.size > this.limit) {
        source.pause();
        target.once('drain', () => source.resume());
      }
    });
    source.once('end', () => {
      this.ended = true;
      this.current?.end();
      settle(this.size <= this.limit);
    });
    const fail = (err: Error): void => {
      if (this.ended || this.error) return;
      this.error = err;
      this.current?.destroy(err);
      settle(false);
    };
    source.once('error', fail);
    source.once('close', () => fail(new Error('the request body was cut short')));
  }

  /** Whether every byte so far is recorded, so another attempt can start from the beginning. */
  get replayable(): boolean {
    return this.error === undefined && this.size <= this.limit;
  }

  /** Resolves once the body has ended (true, if within the limit), failed or outgrown the limit. */
  settled(): Promise<boolean> {
    return this.settledPromise;
  }

  /**
   * The body for the next attempt: the first gets it live; a later one gets the recording and
   * then the rest as it arrives — or undefined when the body can no longer be replayed.
   */
  forAttempt(): Readable | undefined {
    this.attempts += 1;
    if (this.attempts > 1 && !this.replayable) return undefined;
    const stream = new PassThrough();
    for (const chunk of this.chunks) stream.write(chunk);
    if (this.ended) stream.end();
    else if (this.error) stream.destroy(this.error);
    this.current = stream;
    return stream;
  }

  /** The whole body, once `settled()` said it is replayable (for mirrors). */
  recording(): Buffer {
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
  }
}

/** A fresh stream over held bytes. */
export function replay(data: Buffer): Readable {
  return Readable.from(data.length > 0 ? [data] : []);
}
