/**
 * The HTTP/2 downstream adapter on a real loopback connection: responses without a body end the
 * stream with their HEADERS frame, so a gRPC local reply (fault abort, denial, no route) is a
 * proper Trailers-Only response and the caller sees its grpc-status.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connectionInfo } from '../../src/dataplane/connection.js';
import { createHttp2Server } from '../../src/dataplane/l7/downstream.js';
import { localReply } from '../../src/dataplane/l7/local-reply.js';
import { abortResponse } from '../../src/traffic/fault.js';

describe('HTTP/2 downstream responses', () => {
  let listener: net.Server;
  let port: number;
  const downstream = createHttp2Server({
    handler: (request) => {
      if (request.path === '/abort') {
        const abort = abortResponse({ grpcStatus: 14 });
        return Promise.resolve({ status: abort.status, headers: abort.headers, body: Buffer.from(abort.body) });
      }
      if (request.path === '/denied') return Promise.resolve(localReply(request, 403, 'RBAC: access denied'));
      return Promise.resolve({ status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from('hello') });
    },
  });

  before(async () => {
    listener = net.createServer((socket) => downstream.accept(socket, connectionInfo(socket)));
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    port = (listener.address() as net.AddressInfo).port;
  });
  after(async () => {
    downstream.close();
    await new Promise((resolve) => listener.close(resolve));
  });

  async function call(path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<{ headers: http2.IncomingHttpHeaders; endStream: boolean; body: string }> {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request({ ':path': path, ...headers });
      stream.end();
      const [responseHeaders, flags] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders, number];
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (body += chunk));
      await once(stream, 'close');
      return { headers: responseHeaders, endStream: (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0, body };
    } finally {
      session.close();
    }
  }

  it('sends a gRPC fault abort as Trailers-Only (grpc-status in the HEADERS frame that ends the stream)', async () => {
    const reply = await call('/abort', { 'content-type': 'application/grpc' });
    assert.equal(reply.headers[':status'], 200);
    assert.equal(reply.headers['grpc-status'], '14');
    assert.equal(reply.endStream, true);
  });

  it('sends a gRPC local reply as Trailers-Only', async () => {
    const reply = await call('/denied', { 'content-type': 'application/grpc' });
    assert.equal(reply.headers['grpc-status'], '7');
    assert.equal(reply.endStream, true);
  });

  it('still sends bodies after the headers', async () => {
    const reply = await call('/ok');
    assert.equal(reply.endStream, false);
    assert.equal(reply.body, 'hello');
  });
});
