import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { JwksCache, fetchJwks } from '../../src/dataplane/jwks.js';
import { isTrellisError } from '../../src/api/errors.js';
import { verifyRequestJwt, type JwtResult, type JwtRule } from '../../src/policy/jwt.js';
import { certificatesToPem, x509 } from '../../src/identity/x509.js';
import { jwksOf, makeKey, nowSeconds, type TestKey } from '../helpers/jwt.js';
import { makeLeaf, makeRoot } from '../helpers/pki.js';

const ISS = 'https://issuer.example';

/** A loopback JWKS server whose answer the test changes at will; counts requests. */
class JwksServer {
  requests = 0;
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end('{}');
  readonly server: http.Server | https.Server;

  constructor(tls?: { key: string; cert: string }) {
    const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.requests++;
      this.handler(req, res);
    };
    this.server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  }

  serve(body: unknown, status = 200): void {
    this.handler = (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `${this.server instanceof https.Server ? 'https' : 'http'}://127.0.0.1:${port}/jwks.json`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds();
  return { iss: ISS, sub: 'alice', aud: 'shop', exp: now + 600, ...extra };
}

function bearer(token: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${token}` } };
}

function reasonOf(result: JwtResult): string {
  return result.status === 'invalid' ? result.reason : result.status;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isTrellisError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

let rsa: TestKey;
let ec: TestKey;

before(async () => {
  [rsa, ec] = await Promise.all([makeKey('RS256', 'rsa-1'), makeKey('ES256', 'ec-1')]);
});

describe('JwksCache over http', () => {
  const server = new JwksServer();
  let uri = '';
  let rule: JwtRule;
  before(async () => {
    uri = await server.start();
    rule = { issuer: ISS, audiences: ['shop'], jwksUri: uri };
  });
  after(() => server.stop());

  it('fetches once, caches, and verifies tokens', async () => {
    server.requests = 0;
    server.serve(jwksOf(rsa));
    const provider = new JwksCache();
    assert.equal((await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider })).status, 'valid');
    assert.equal((await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider })).status, 'valid');
    assert.equal(server.requests, 1);
  });

  it('picks up a rotated key through a refresh on the unknown kid, at most once per cool-down', async () => {
    server.requests = 0;
    server.serve(jwksOf(rsa));
    let clock = 1_000_000;
    const provider = new JwksCache({ now: () => clock, refreshCooldownMs: 30_000 });
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider })), 'valid');
    assert.equal(server.requests, 1);

    // The issuer rotates: the JWKS now also serves ec-1, and tokens start using it.
    server.serve(jwksOf(rsa, ec));
    clock += 1_000;
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await ec.sign(claims())), { provider })), 'valid');
    assert.equal(server.requests, 2);

    // Another unknown kid within the cool-down does not reach the server.
    clock += 1_000;
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await rsa.sign(claims(), { kid: 'rsa-9' })), { provider })), 'unknown_kid');
    assert.equal(server.requests, 2);

    // After the cool-down it does, once.
    clock += 30_000;
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await rsa.sign(claims(), { kid: 'rsa-9' })), { provider })), 'unknown_kid');
    assert.equal(server.requests, 3);
  });

  it('drops a removed key after the TTL', async () => {
    server.requests = 0;
    server.serve(jwksOf(rsa, ec));
    let clock = 5_000_000;
    const provider = new JwksCache({ now: () => clock, ttlMs: 60_000 });
    const token = await ec.sign(claims());
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(token), { provider })), 'valid');
    server.serve(jwksOf(rsa));
    clock += 59_000;
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(token), { provider })), 'valid');
    clock += 2_000;
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(token), { provider })), 'unknown_kid');
    // The expired set is fetched again, then the unknown kid forces one more refresh (the
    // cool-down limits forced refreshes only).
    assert.equal(server.requests, 3);
  });

  it('shares one fetch between concurrent callers', async () => {
    server.requests = 0;
    server.handler = (_req, res) => {
      setTimeout(() => res.end(JSON.stringify(jwksOf(rsa))), 50);
    };
    const provider = new JwksCache();
    const sets = await Promise.all(Array.from({ length: 10 }, () => provider.getKeySet(rule, { forceRefresh: false })));
    assert.equal(server.requests, 1);
    assert.ok(sets.every((set) => set === sets[0]));
  });

  it('fails closed on errors, and keeps failing fast for the retry interval', async () => {
    server.requests = 0;
    server.serve({ error: 'boom' }, 500);
    let clock = 0;
    const provider = new JwksCache({ now: () => clock, retryAfterFailureMs: 5_000 });
    await rejectsWith(provider.getKeySet(rule, { forceRefresh: false }), 'TRELLIS_JWKS_FETCH_FAILED');
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider })), 'jwks_unavailable');
    assert.equal(server.requests, 1);
    server.serve(jwksOf(rsa));
    clock += 5_000;
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider })), 'valid');
    assert.equal(server.requests, 2);
  });

  it('keeps the last good key set for a bounded time while refreshes fail', async () => {
    server.serve(jwksOf(rsa));
    let clock = 0;
    const provider = new JwksCache({ now: () => clock, ttlMs: 60_000, maxStaleMs: 60_000, retryAfterFailureMs: 0 });
    const token = await rsa.sign(claims());
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(token), { provider })), 'valid');
    server.serve('unavailable', 503);
    clock = 90_000; // past the TTL, within TTL + maxStale
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(token), { provider })), 'valid');
    clock = 121_000; // past TTL + maxStale
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(token), { provider })), 'jwks_unavailable');
  });

  it('times out a server that never answers (rule timeout) and fails closed', async () => {
    server.handler = () => {
      // never answers
    };
    const provider = new JwksCache();
    const started = Date.now();
    await rejectsWith(provider.getKeySet({ ...rule, timeout: '200ms' }, { forceRefresh: false }), 'TRELLIS_JWKS_TIMEOUT');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 3_000, `timed out after ${elapsed} ms`);
    const again = new JwksCache({ timeoutMs: 200 });
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider: again })), 'jwks_unavailable');
  });

  it('times out a server that stalls in the middle of the body', async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys": [');
    };
    await rejectsWith(fetchJwks(uri, { timeoutMs: 200 }), 'TRELLIS_JWKS_TIMEOUT');
  });

  const bad: [string, () => void, string][] = [
    ['HTTP 404', () => server.serve('not found', 404), 'TRELLIS_JWKS_FETCH_FAILED'],
    ['a redirect (not followed)', () => {
      server.handler = (_req, res) => {
        res.writeHead(302, { location: 'http://127.0.0.1:1/evil.json' });
        res.end();
      };
    }, 'TRELLIS_JWKS_FETCH_FAILED'],
    ['not JSON', () => server.serve('<html>', 200), 'TRELLIS_JWKS_INVALID'],
    ['not a key set', () => server.serve({ kty: 'RSA' }), 'TRELLIS_JWKS_INVALID'],
    ['an empty key set', () => server.serve({ keys: [] }), 'TRELLIS_JWKS_INVALID'],
    ['a key without kty', () => server.serve({ keys: [{ kid: 'x' }] }), 'TRELLIS_JWKS_INVALID'],
    ['private key material', () => server.serve({ keys: [{ ...rsa.publicJwk, d: 'AAAA' }] }), 'TRELLIS_JWKS_INVALID'],
    ['a symmetric key', () => server.serve({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }), 'TRELLIS_JWKS_INVALID'],
    ['a declared size over the bound', () => server.serve({ keys: [rsa.publicJwk], pad: 'x'.repeat(2_000) }), 'TRELLIS_JWKS_TOO_LARGE'],
    ['a streamed body over the bound', () => {
      server.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"pad": "${'x'.repeat(1_500)}`);
        res.end(`${'x'.repeat(1_500)}"}`);
      };
    }, 'TRELLIS_JWKS_TOO_LARGE'],
  ];
  for (const [name, setup, code] of bad) {
    it(`rejects ${name} (${code}) and the token fails as jwks_unavailable`, async () => {
      setup();
      await rejectsWith(fetchJwks(uri, { maxBytes: 2_000 }), code);
      const provider = new JwksCache({ maxBytes: 2_000 });
      assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider })), 'jwks_unavailable');
    });
  }

  it('reports a refused connection and an unsupported scheme', async () => {
    const closed = new JwksServer();
    const closedUri = await closed.start();
    await closed.stop();
    await rejectsWith(fetchJwks(closedUri), 'TRELLIS_JWKS_FETCH_FAILED');
    await rejectsWith(fetchJwks('ftp://127.0.0.1/jwks.json'), 'TRELLIS_JWKS_FETCH_FAILED');
    await rejectsWith(fetchJwks('not a uri'), 'TRELLIS_JWKS_FETCH_FAILED');
    await rejectsWith(new JwksCache().getKeySet({ issuer: ISS }, { forceRefresh: false }), 'TRELLIS_JWKS_FETCH_FAILED');
  });
});

describe('JwksCache with file:// URIs (offline)', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-jwks-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads a key set from a local file', async () => {
    const path = join(dir, 'jwks.json');
    await writeFile(path, JSON.stringify(jwksOf(rsa, ec)));
    const rule: JwtRule = { issuer: ISS, jwksUri: pathToFileURL(path).href };
    const provider = new JwksCache();
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await ec.sign(claims())), { provider })), 'valid');
  });

  it('fails closed on a missing file, a directory, a file over the bound, or bad content', async () => {
    await rejectsWith(fetchJwks(pathToFileURL(join(dir, 'missing.json')).href), 'TRELLIS_JWKS_FETCH_FAILED');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await rejectsWith(fetchJwks(pathToFileURL(join(dir, 'sub')).href), 'TRELLIS_JWKS_FETCH_FAILED');
    const big = join(dir, 'big.json');
    await writeFile(big, JSON.stringify({ keys: [rsa.publicJwk], pad: 'x'.repeat(4_000) }));
    await rejectsWith(fetchJwks(pathToFileURL(big).href, { maxBytes: 1_000 }), 'TRELLIS_JWKS_TOO_LARGE');
    const garbage = join(dir, 'garbage.json');
    await writeFile(garbage, 'keys: []');
    await rejectsWith(fetchJwks(pathToFileURL(garbage).href), 'TRELLIS_JWKS_INVALID');
    const rule: JwtRule = { issuer: ISS, jwksUri: pathToFileURL(join(dir, 'missing.json')).href };
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider: new JwksCache() })), 'jwks_unavailable');
  });
});

describe('JwksCache over https', () => {
  let server: JwksServer;
  let uri = '';
  let caPem = '';
  before(async () => {
    const root = await makeRoot('JWKS Test Root');
    const leaf = await makeLeaf(root, {
      uris: [],
      extraExtensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
    });
    caPem = certificatesToPem([root.cert]);
    server = new JwksServer({ key: leaf.keyPem, cert: certificatesToPem([leaf.cert]) });
    uri = await server.start();
    server.serve(jwksOf(rsa));
  });
  after(() => server.stop());

  it('fetches from a server the configured CA vouches for', async () => {
    const provider = new JwksCache({ ca: caPem });
    const rule: JwtRule = { issuer: ISS, jwksUri: uri };
    assert.equal(reasonOf(await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider })), 'valid');
  });

  it('refuses a server certificate it cannot verify', async () => {
    await rejectsWith(fetchJwks(uri), 'TRELLIS_JWKS_FETCH_FAILED');
    await assert.rejects(fetchJwks(uri), /certificate/i);
  });
});
