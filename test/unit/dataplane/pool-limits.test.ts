import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { ExternalUpstream } from '../../../src/dataplane/external-upstream.js';
import { limitIdleSession } from '../../../src/dataplane/l7/pool-limits.js';
import type { L7Request, L7Response } from '../../../src/dataplane/l7/types.js';
import { Http2SessionPool, sendHttp2 } from '../../../src/dataplane/l7/upstream.js';

function request(): L7Request {
  return {
    method: 'GET',
    authority: 'upstream',
    path: '/',
    scheme: 'http',
    headers: [],
    body: Readable.from([]),
    protocol: 'HTTP/1.1',
    connection: {} as L7Request['connection'],
    signal: new AbortController().signal,
    context: { responseFlags: [] },
  };
}

async function drain(response: L7Response): Promise<void> {
  if (Buffer.isBuffer(response.body)) return;
  for await (const chunk of response.body) void chunk;
}

describe('connection pool limits', () => {
  it('retires an HTTP/1.1 connection after maxRequestsPerConnection requests', async () => {
    const sockets = new Set<net.Socket>();
    const server = http.createServer((req, res) => {
      sockets.add(req.socket);
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const upstream = new ExternalUpstream();
    try {
      const { port } = server.address() as net.AddressInfo;
      for (let i = 0; i < 6; i++) await drain(await upstream.sendHttp(request(), { host: '127.0.0.1', port, tls: 'DISABLE', limits: { maxRequestsPerConnection: 2 } }));
      assert.equal(sockets.size, 3);
      // Without the limit, one keep-alive connection carries them all.
      sockets.clear();
      for (let i = 0; i < 4; i++) await drain(await upstream.sendHttp(request(), { host: '127.0.0.1', port, tls: 'DISABLE' }));
      assert.equal(sockets.size, 1);
    } finally {
      upstream.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('retires an HTTP/2 session after that many streams, and closes idle sessions', async () => {
    const sessions = new Set<http2.ServerHttp2Session>();
    const server = http2.createServer();
    server.on('stream', (stream) => {
      sessions.add(stream.session as http2.ServerHttp2Session);
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const pool = new Http2SessionPool();
    let idleClosed = 0;
    const connect = (): http2.ClientHttp2Session => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      limitIdleSession(session, { idleTimeoutMs: 50 });
      session.once('close', () => (idleClosed += 1));
      return session;
    };
    try {
      for (let i = 0; i < 5; i++) await drain(await sendHttp2(request(), pool.get('k', connect, 2), 'http'));
      assert.equal(sessions.size, 3);
      // Every session closes: the retired ones after their streams, the last one when idle.
      await new Promise<void>((resolve) => {
        const check = setInterval(() => idleClosed === 3 && (clearInterval(check), resolve()), 10);
      });
    } finally {
      pool.closeAll();
      for (const session of sessions) session.destroy();
      server.close();
    }
  });
});
