/**
 * The server name (SNI) of a TLS ClientHello, read from the first bytes of a connection the
 * app encrypts itself, so VirtualService `tls` routes can match `sniHosts`. The bytes are put
 * back: the upstream receives the handshake untouched.
 */
import type { Duplex } from 'node:stream';

/** A ClientHello fits one TLS record (at most 16 KiB of payload plus the 5-byte header). */
const MAX_RECORD = 5 + 16_384;

export type SniParse = { readonly complete: false } | { readonly complete: true; readonly sni: string | undefined };

/** Parses a TLS handshake record holding a ClientHello; incomplete until the whole record is there. */
export function parseClientHelloSni(data: Buffer): SniParse {
  if (data.length < 5) return { complete: false };
  if (data[0] !== 0x16) return { complete: true, sni: undefined };
  const recordLength = data.readUInt16BE(3);
  if (data.length < 5 + recordLength) return { complete: false };
  const record = data.subarray(5, 5 + recordLength);
  return { complete: true, sni: sniFromHandshake(record) };
}

function sniFromHandshake(hello: Buffer): string | undefined {
  // Handshake header: type 1 (ClientHello), 3-byte length; then version (2), random (32).
  if (hello.length < 4 || hello[0] !== 0x01) return undefined;
  let at = 4 + 2 + 32;
  const skip = (lengthBytes: 1 | 2): boolean => {
    if (at + lengthBytes > hello.length) return false;
    const length = lengthBytes === 1 ? (hello[at] as number) : hello.readUInt16BE(at);
    at += lengthBytes + length;
    return at <= hello.length;
  };
  // session id, cipher suites, compression methods
  if (!skip(1) || !skip(2) || !skip(1)) return undefined;
  if (at + 2 > hello.length) return undefined;
  const extensionsEnd = Math.min(hello.length, at + 2 + hello.readUInt16BE(at));
  at += 2;
  while (at + 4 <= extensionsEnd) {
    const type = hello.readUInt16BE(at);
    const length = hello.readUInt16BE(at + 2);
    const body = hello.subarray(at + 4, at + 4 + length);
    at += 4 + length;
    if (type !== 0x0000) continue;
    // server_name: list length (2), then entries of type (1), length (2), name; type 0 is host_name.
    let entry = 2;
    while (entry + 3 <= body.length) {
      const nameType = body[entry] as number;
      const nameLength = body.readUInt16BE(entry + 1);
      const name = body.subarray(entry + 3, entry + 3 + nameLength);
      if (nameType === 0 && name.length === nameLength) return name.toString('ascii').toLowerCase();
      entry += 3 + nameLength;
    }
    return undefined;
  }
  return undefined;
}

/** Reads the ClientHello's SNI from `socket` and puts the bytes back; undefined when there is none. */
export function readClientHelloSni(socket: Duplex, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const finish = (sni: string | undefined): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (chunks.length > 0) socket.unshift(Buffer.concat(chunks));
      resolve(sni);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      const data = Buffer.concat(chunks);
      const parsed = parseClientHelloSni(data);
      if (parsed.complete) finish(parsed.sni);
      else if (data.length >= MAX_RECORD) finish(undefined);
    };
    const onEnd = (): void => finish(undefined);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.resume();
  });
}
