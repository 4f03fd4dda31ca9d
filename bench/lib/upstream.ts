/**
 * The benchmark's upstream application: a tiny node:http server on 127.0.0.1 that answers every
 * GET with the same 1 KB body. `GET /whoami` instead returns the x-forwarded-client-cert header it
 * received, so the benchmark can check that requests really came through the mesh with the
 * client's identity. Prints `{"port":N}` on stdout once listening.
 *
 *   node dist/bench/lib/upstream.js [bodyBytes]
 */
import http from 'node:http';

const bytes = Number(process.argv[2] ?? 1024);
const body = Buffer.alloc(bytes, 'x');

const server = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  if (req.url === '/whoami') {
    const text = JSON.stringify({ xfcc: req.headers['x-forwarded-client-cert'] ?? null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
  res.end(body);
});
server.headersTimeout = 120_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
