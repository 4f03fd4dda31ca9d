/**
 * Holding a request body so it can be sent again (retries) or copied (mirrors). Bodies up to a
 * limit are read whole; a bigger one streams through once, exactly as it arrives, and the
 * request is then neither retried nor mirrored (as Envoy does when a body outgrows its buffer).
 */
import { PassThrough, Readable } from 'node:stream';

/** Envoy-like per-request buffer for retries and mirrors. */
export const REPLAY_LIMIT_BYTES = 64 * 1024;

export type HeldBody =
  | { replayable: true; data: Buffer }
  /** Not replayable: `stream` yields everything read so far, then the rest of the body. */
  | { replayable: false; stream: Readable };

export function holdBody(body: Readable, limit = REPLAY_LIMIT_BYTES): Promise<HeldBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= limit) return;
      // Too big to hold: hand on what was read, then the rest, in order.
      cleanup();
      body.pause();
      const rest = new PassThrough();
      for (const held of chunks) rest.write(held);
      body.pipe(rest);
      body.once('error', (err) => rest.destroy(err));
      resolve({ replayable: false, stream: rest });
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ replayable: true, data: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) });
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  });
}

/** A fresh stream over held bytes, one per attempt. */
export function replay(data: Buffer): Readable {
  return Readable.from(data.length > 0 ? [data] : []);
}
