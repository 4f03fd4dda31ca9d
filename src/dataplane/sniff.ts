/**
 * Protocol detection on the first bytes of a connection: a TLS ClientHello, an HTTP/2
 * connection preface (prior knowledge), an HTTP/1.x request line, or anything else (raw TCP).
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

export type Sniffed = 'tls' | 'h2' | 'http1' | 'tcp';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const HTTP1_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const LONGEST_METHOD = Math.max(...HTTP1_METHODS.map((method) => method.length)) + 1;

/** Bytes needed to decide in the worst case; fewer when the answer is clear earlier. */
export const SNIFF_BYTES = H2_PREFACE.length;

/** Classifies `data`, or returns undefined if more bytes are needed to tell. */
export function sniff(data: Buffer): Sniffed | undefined {
  if (data.length === 0) return undefined;
  // TLS record: handshake (22), version major 3.
  if (data[0] === 0x16) return data.length < 2 ? undefined : data[1] === 0x03 ? 'tls' : 'tcp';
  if (couldBePrefix(data, H2_PREFACE)) return data.length >= H2_PREFACE.length ? 'h2' : undefined;
  const head = data.subarray(0, LONGEST_METHOD).toString('latin1');
  for (const method of HTTP1_METHODS) {
    const token = `${method} `;
    if (head.startsWith(token)) return 'http1';
    if (token.startsWith(head)) return undefined;
  }
  return 'tcp';
}

function couldBePrefix(data: Buffer, expected: Buffer): boolean {
  const n = Math.min(data.length, expected.length);
  return data.subarray(0, n).equals(expected.subarray(0, n));
}

export type SniffResult = Sniffed | 'timeout' | 'closed';

/**
 * Reads from `socket` until `sniff` can classify the bytes (or `onlyFirstByte` is enough), then
 * puts every byte back so the next reader sees the stream untouched.
 */
export function sniffSocket(socket: Duplex, timeoutMs: number, onlyFirstByte = false): Promise<SniffResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const finish = (result: SniffResult): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      if (chunks.length > 0) socket.unshift(Buffer.concat(chunks));
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      const data = Buffer.concat(chunks);
      if (onlyFirstByte) {
        finish(data[0] === 0x16 ? 'tls' : 'tcp');
        return;
      }
      const kind = sniff(data);
      if (kind !== undefined) finish(kind);
      else if (data.length >= SNIFF_BYTES) finish('tcp');
    };
    const onEnd = (): void => finish(chunks.length > 0 ? 'tcp' : 'closed');
    const timer = setTimeout(() => finish(chunks.length > 0 ? 'tcp' : 'timeout'), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}

/**
 * A socket whose first bytes were read and put back (sniffSocket) must be read through its
 * JavaScript side: HTTP/2 sessions otherwise read the native handle directly and would miss the
 * bytes put back. This wraps it in a plain Duplex, which Node drives through its JS stream path.
 */
export function replayableSocket(socket: Socket): Duplex {
  const wrapper = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, encoding, callback) {
      socket.write(chunk, encoding, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!wrapper.push(chunk)) socket.pause();
  });
  socket.once('end', () => wrapper.push(null));
  socket.once('error', (err) => wrapper.destroy(err));
  socket.once('close', () => wrapper.destroy());
  // What the servers read for addresses and timeouts.
  Object.assign(wrapper, {
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    setNoDelay: () => wrapper,
    setKeepAlive: () => wrapper,
    setTimeout: (ms: number, cb?: () => void) => {
      socket.setTimeout(ms, cb);
      return wrapper;
    },
  });
  return wrapper;
}
