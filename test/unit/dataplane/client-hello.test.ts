import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { parseClientHelloSni, readClientHelloSni } from '../../../src/dataplane/client-hello.js';

/** The first bytes a real TLS client sends for `servername`, captured by a plain TCP server. */
async function clientHello(servername: string | undefined): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    const captured = new Promise<Buffer>((resolve) => {
      server.once('connection', (socket) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          const data = Buffer.concat(chunks);
          if (data.length >= 5 && data.length >= 5 + data.readUInt16BE(3)) {
            resolve(data);
            socket.destroy();
          }
        });
      });
    });
    const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) });
    client.on('error', () => undefined);
    const hello = await captured;
    client.destroy();
    return hello;
  } finally {
    server.close();
  }
}

describe('ClientHello SNI', () => {
  it('reads the server name of a real ClientHello, lower-cased', async () => {
    const hello = await clientHello('API.Example.com');
    assert.deepEqual(parseClientHelloSni(hello), { complete: true, sni: 'api.example.com' });
  });

  it('says incomplete until the whole record is there, and finds no name when none was sent', async () => {
    const hello = await clientHello('api.example.com');
    assert.deepEqual(parseClientHelloSni(hello.subarray(0, 40)), { complete: false });
    // Node sends no SNI for an IP address.
    assert.deepEqual(parseClientHelloSni(await clientHello(undefined)), { complete: true, sni: undefined });
    assert.deepEqual(parseClientHelloSni(Buffer.from('GET / HTTP/1.1\r\n\r\n')), { complete: true, sni: undefined });
  });

  it('puts every byte back for the next reader', async () => {
    const hello = await clientHello('db.example.com');
    const [left, right] = await socketPair();
    try {
      right.write(hello.subarray(0, 10));
      setTimeout(() => right.write(hello.subarray(10)), 20);
      assert.equal(await readClientHelloSni(left, 2_000), 'db.example.com');
      const replayed = new Promise<Buffer>((resolve) => left.once('data', resolve));
      left.resume();
      assert.ok((await replayed).equals(hello));
    } finally {
      left.destroy();
      right.destroy();
    }
  });
});

async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(port, '127.0.0.1');
  const left = await accepted;
  server.close();
  return [left, client];
}
