import type { Writable } from 'node:stream';

/** Writes and, when the stream's buffer is full, waits for it to drain (or fail). */
export function writeWithBackpressure(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.destroyed || stream.writableEnded) {
      reject(new Error('the stream is closed'));
      return;
    }
    // The write callback reports errors too, so an EPIPE never becomes an unhandled 'error' event.
    let settled = false;
    const settle = (err?: Error | null): void => {
      if (settled) return;
      settled = true;
      stream.off('drain', onDrain);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => settle();
    if (stream.write(text, (err) => { if (err) settle(err); })) settle();
    else stream.once('drain', onDrain);
  });
}
