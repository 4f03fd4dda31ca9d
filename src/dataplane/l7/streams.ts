/**
 * Body forwarding on the hot path. `stream.pipeline` costs an AbortController (and a
 * DOMException with a stack) per call in Node 20 — measurable per request — so bodies are piped
 * with explicit error handling instead: an error on either side tears down the other.
 */
import type { Readable, Writable } from 'node:stream';

/** Pipes `source` into `sink`; resolves when the sink finished, rejects when either side failed. */
export function forward(source: Readable, sink: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err?: Error): void => {
      if (settled) return;
      settled = true;
      if (err) {
        source.destroy();
        sink.destroy(err);
        reject(err);
      } else {
        resolve();
      }
    };
    source.once('error', (err: Error) => done(err));
    sink.once('error', (err: Error) => done(err));
    sink.once('finish', () => done());
    // A sink closed before it finished (the peer went away) ends the source too.
    sink.once('close', () => done(sink.writableFinished ? undefined : new Error('the destination closed before the body was written')));
    source.pipe(sink);
  });
}

/** Writes a whole buffer and ends the sink. */
export function writeAll(sink: Writable, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    sink.once('error', reject);
    sink.end(data.length > 0 ? data : undefined, () => resolve());
  });
}
