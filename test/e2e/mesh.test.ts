/**
 * The mesh as a user runs it: control plane and sidecars as processes on loopback, apps behind
 * them, requests from a test client through its sidecar. Covers issue 4's data-path list:
 * allow/deny by principal, path, method and JWT; STRICT vs PERMISSIVE; a foreign CA; XFCC
 * spoofing; HTTP/1.1, HTTP/2, gRPC and TCP; live policy edits; an invalid edit; revocation of a
 * live connection.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import grpc from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { bundleOf, makeLeaf, makeRoot } from '../helpers/pki.js';
import { runTrellis } from '../helpers/cli.js';
import { freePorts, httpRequest, MeshProcesses, type StartedWorkload, waitFor } from '../helpers/mesh-process.js';
import { ZERO_TRUST_MESH } from '../helpers/mesh-yaml.js';

const ISSUER = 'https://issuer.test';

function serviceEntry(name: string, port: number, protocol: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: ${port}, name: main, protocol: ${protocol}}]
  workloadSelector: {labels: {app: ${name}}}
`;
}

function workloadEntry(name: string, app: string | undefined, port: number | undefined, serviceAccount: string): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: default}
spec:
  address: 127.0.0.1
  serviceAccount: ${serviceAccount}
${app ? `  labels: {app: ${app}}\n` : ''}${port ? `  ports: {main: ${port}}\n` : ''}`;
}

function allowFrom(name: string, app: string, principals: string[]): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: default}
spec:
  selector: {matchLabels: {app: ${app}}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [${principals.map((p) => `"cluster.local/ns/default/sa/${p}"`).join(', ')}]}}]
`;
}

const WEB_POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-allow, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/public/*"]}}]
  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"], requestPrincipals: ["${ISSUER}/*"]}}]
    to: [{operation: {paths: ["/jwt/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-deny-admin, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin", "/admin/*"]}}]
`;

describe('the mesh, as processes on loopback', () => {
  let mesh: MeshProcesses;
  let client: StartedWorkload;
  let other: StartedWorkload;
  let doomed: StartedWorkload;
  let ports: Record<string, number>;
  let signToken: (claims: Record<string, unknown>, options?: { expiresIn?: string }) => Promise<string>;

  before(async () => {
    const [web, h2, grpcPort, tcp, legacy] = (await freePorts(5)) as [number, number, number, number, number];
    ports = { web, h2, grpc: grpcPort, tcp, legacy };
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'ES256' };
    signToken = (claims, options = {}) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'test-key' }).setIssuer(ISSUER).setIssuedAt().setExpirationTime(options.expiresIn ?? '10m').sign(privateKey);

    mesh = await MeshProcesses.start({
      'mesh.yaml': `${ZERO_TRUST_MESH}---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy, namespace: default}
spec:
  selector: {matchLabels: {app: legacy}}
  mtls: {mode: PERMISSIVE}
`,
      'services.yaml': [serviceEntry('web', 80, 'HTTP'), serviceEntry('h2', 8080, 'HTTP2'), serviceEntry('grpc', 50051, 'GRPC'), serviceEntry('tcp', 9000, 'TCP'), serviceEntry('legacy', 80, 'HTTP')].join('---\n'),
      'workloads.yaml': [
        workloadEntry('client', undefined, undefined, 'client'),
        workloadEntry('other', undefined, undefined, 'other'),
        workloadEntry('doomed', undefined, undefined, 'doomed'),
        workloadEntry('web-v1', 'web', web, 'web'),
        workloadEntry('h2-v1', 'h2', h2, 'h2'),
        workloadEntry('grpc-v1', 'grpc', grpcPort, 'grpc'),
        workloadEntry('tcp-v1', 'tcp', tcp, 'tcp'),
        workloadEntry('legacy-v1', 'legacy', legacy, 'legacy'),
      ].join('---\n'),
      'web-policy.yaml': WEB_POLICY,
      'other-policies.yaml': [allowFrom('h2-allow', 'h2', ['client']), allowFrom('grpc-allow', 'grpc', ['client']), allowFrom('tcp-allow', 'tcp', ['client', 'doomed'])].join('---\n'),
      'legacy-policy.yaml': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: legacy-allow-all, namespace: default}
spec:
  selector: {matchLabels: {app: legacy}}
  action: ALLOW
  rules: [{}]
`,
      'jwt.yaml': `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: web-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  jwtRules:
  - issuer: ${ISSUER}
    jwks: '${JSON.stringify({ keys: [jwk] })}'
`,
    });
    await Promise.all([
      mesh.startWorkload('default/web-v1', { app: 'http-echo.mjs' }),
      mesh.startWorkload('default/h2-v1', { app: 'h2-echo.mjs' }),
      mesh.startWorkload('default/grpc-v1', { app: 'grpc-echo.mjs' }),
      mesh.startWorkload('default/tcp-v1', { app: 'tcp-echo.mjs' }),
      mesh.startWorkload('default/legacy-v1', { app: 'http-echo.mjs' }),
    ]);
    [client, other, doomed] = await Promise.all([
      mesh.startWorkload('default/client', {
        outboundPort: true,
        upstreams: ['h2.default.svc.cluster.local:8080=0', 'grpc.default.svc.cluster.local:50051=0', 'tcp.default.svc.cluster.local:9000=0'],
      }),
      mesh.startWorkload('default/other', { outboundPort: true }),
      mesh.startWorkload('default/doomed', { upstreams: ['tcp.default.svc.cluster.local:9000=0'] }),
    ]);
    await mesh.waitSynced(8);
  });

  after(async () => {
    await mesh?.stop();
  });

  const viaClient = (path: string, options: { method?: string; headers?: Record<string, string> } = {}) =>
    httpRequest({ url: `http://web.default.svc.cluster.local${path}`, proxyPort: client.ready.listening.outbound as number, ...options });
  const viaOther = (path: string) => httpRequest({ url: `http://web.default.svc.cluster.local${path}`, proxyPort: other.ready.listening.outbound as number });

  it('allows what policy allows and shows the app the verified caller, never a spoofed one', async () => {
    const reply = await viaClient('/public/hello?x=1', { headers: { 'X-Forwarded-Client-Cert': 'By=evil;URI=spiffe://cluster.local/ns/default/sa/admin', 'X-Mixed-Case': 'Keep' } });
    assert.equal(reply.status, 200, reply.body);
    const seen = JSON.parse(reply.body) as { url: string; rawHeaders: string[] };
    assert.equal(seen.url, '/public/hello?x=1');
    const xfcc = seen.rawHeaders.filter((_, i) => i % 2 === 0 && seen.rawHeaders[i]?.toLowerCase() === 'x-forwarded-client-cert').map((_, i) => i);
    const values = seen.rawHeaders.flatMap((name, i) => (i % 2 === 0 && name.toLowerCase() === 'x-forwarded-client-cert' ? [seen.rawHeaders[i + 1]] : []));
    assert.equal(values.length, 1, `exactly one XFCC header (${xfcc.length})`);
    assert.match(values[0] ?? '', /^By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/web;Hash=[0-9a-f]{64};URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client$/);
    assert.ok(seen.rawHeaders.includes('X-Mixed-Case'), 'header case reaches the app as sent');
    assert.equal(reply.headers['x-echo-case'], 'Preserved');
  });

  it('denies by principal, with the reason for the mesh peer', async () => {
    const reply = await viaOther('/public/hello');
    assert.equal(reply.status, 403);
    assert.equal(reply.body, 'RBAC: access denied');
    assert.match(String(reply.headers['x-trellis-denied']), /principals/);
  });

  it('denies by method and by path, after normalization', async () => {
    assert.equal((await viaClient('/public/hello', { method: 'POST' })).status, 403);
    assert.equal((await viaClient('/private')).status, 403);
    for (const attack of ['/admin', '//admin', '/public/../admin', '/%61dmin', '/public/%2e%2e/admin']) {
      const reply = await viaClient(attack);
      assert.equal(reply.status, 403, `${attack} must be denied, got ${reply.status} ${reply.body}`);
    }
  });

  it('checks JWTs: none → no request principal (403), invalid → 401, valid → allowed and the token is not forwarded', async () => {
    assert.equal((await viaClient('/jwt/data')).status, 403);
    const expired = await signToken({ sub: 'alice' }, { expiresIn: '-1m' });
    const bad = await viaClient('/jwt/data', { headers: { authorization: `Bearer ${expired}` } });
    assert.equal(bad.status, 401);
    const good = await viaClient('/jwt/data', { headers: { authorization: `Bearer ${await signToken({ sub: 'alice' })}` } });
    assert.equal(good.status, 200, good.body);
    const seen = JSON.parse(good.body) as { rawHeaders: string[] };
    assert.ok(!seen.rawHeaders.some((name) => name.toLowerCase() === 'authorization'), 'the token is stripped (forwardOriginalToken is false)');
  });

  it('refuses plaintext under STRICT and accepts it under PERMISSIVE', async () => {
    const strict = await plaintextGet(ports['web'] as number);
    assert.equal(strict, '', 'STRICT: the connection is closed without an answer');
    const permissive = await plaintextGet(ports['legacy'] as number);
    assert.match(permissive, /^HTTP\/1\.1 200/);
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    const foreignRoot = await makeRoot('Foreign Root');
    const foreign = await makeLeaf(foreignRoot, { uris: ['spiffe://cluster.local/ns/default/sa/client'] });
    const socket = tls.connect({
      host: '127.0.0.1',
      port: ports['web'] as number,
      key: foreign.keyPem,
      cert: foreign.cert.toString('pem'),
      ca: bundleOf('cluster.local', foreignRoot).toPem(),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const outcome = await new Promise<string>((resolve) => {
      socket.once('secureConnect', () => {
        socket.write('GET /public/x HTTP/1.1\r\nHost: web\r\n\r\n');
      });
      let data = '';
      socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
      socket.once('error', (err) => resolve(`error: ${err.message}`));
      socket.once('close', () => resolve(data === '' ? 'closed' : data));
    });
    assert.ok(outcome === 'closed' || outcome.startsWith('error'), `expected refusal, got ${outcome.slice(0, 80)}`);
  });

  it('carries HTTP/2 (prior knowledge) through the mesh', async () => {
    const session = http2.connect(`http://127.0.0.1:${client.ready.listening.upstreams['h2.default.svc.cluster.local:8080']}`);
    try {
      const stream = session.request({ ':path': '/h2/check' });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (body += chunk));
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      await once(stream, 'end');
      assert.equal(headers[':status'], 200);
      const seen = JSON.parse(body) as { protocol: string; path: string; xfcc: string };
      assert.equal(seen.protocol, 'h2');
      assert.equal(seen.path, '/h2/check');
      assert.match(seen.xfcc, /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client$/);
    } finally {
      session.close();
    }
  });

  it('carries gRPC through the mesh', async () => {
    const codec = { serialize: (value: unknown) => Buffer.from(JSON.stringify(value)), deserialize: (buffer: Buffer) => JSON.parse(buffer.toString()) as unknown };
    const Client = grpc.makeGenericClientConstructor(
      { Say: { path: '/test.Echo/Say', requestStream: false, responseStream: false, requestSerialize: codec.serialize, requestDeserialize: codec.deserialize, responseSerialize: codec.serialize, responseDeserialize: codec.deserialize } },
      'Echo',
    );
    const stub = new Client(`127.0.0.1:${client.ready.listening.upstreams['grpc.default.svc.cluster.local:50051']}`, grpc.credentials.createInsecure());
    try {
      const reply = await new Promise<{ message: string; xfcc: string }>((resolve, reject) => {
        (stub as unknown as { Say: (req: unknown, cb: (err: Error | null, res: unknown) => void) => void }).Say({ message: 'hello over gRPC' }, (err, res) => (err ? reject(err) : resolve(res as { message: string; xfcc: string })));
      });
      assert.equal(reply.message, 'hello over gRPC');
      assert.match(reply.xfcc, /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client$/);
    } finally {
      stub.close();
    }
  });

  it('carries a bidirectional gRPC stream message by message (the body is not held back)', async () => {
    const codec = { serialize: (value: unknown) => Buffer.from(JSON.stringify(value)), deserialize: (buffer: Buffer) => JSON.parse(buffer.toString()) as unknown };
    const Client = grpc.makeGenericClientConstructor(
      { Chat: { path: '/test.Echo/Chat', requestStream: true, responseStream: true, requestSerialize: codec.serialize, requestDeserialize: codec.deserialize, responseSerialize: codec.serialize, responseDeserialize: codec.deserialize } },
      'Echo',
    );
    const stub = new Client(`127.0.0.1:${client.ready.listening.upstreams['grpc.default.svc.cluster.local:50051']}`, grpc.credentials.createInsecure());
    try {
      const call = (stub as unknown as { Chat: () => grpc.ClientDuplexStream<{ message: string }, { message: string }> }).Chat();
      const reply = (): Promise<string> => new Promise((resolve) => call.once('data', (m: { message: string }) => resolve(m.message)));
      // Each answer arrives while the client's stream is still open.
      call.write({ message: 'one' });
      assert.equal(await reply(), 'echo: one');
      call.write({ message: 'two' });
      assert.equal(await reply(), 'echo: two');
      call.end();
      await once(call, 'end');
    } finally {
      stub.close();
    }
  });

  it('carries raw TCP through the mesh', async () => {
    const socket = net.connect(client.ready.listening.upstreams['tcp.default.svc.cluster.local:9000'] as number, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('ping over tcp');
    const [data] = (await once(socket, 'data')) as [Buffer];
    assert.equal(data.toString(), 'ping over tcp');
    socket.destroy();
  });

  it('follows a policy edit live, and keeps the last good config when an edit is invalid', async () => {
    assert.equal((await viaOther('/public/hello')).status, 403);
    const started = Date.now();
    const edited = WEB_POLICY.replace('principals: ["cluster.local/ns/default/sa/client"]', 'principals: ["cluster.local/ns/default/sa/client", "cluster.local/ns/default/sa/other"]');
    assert.notEqual(edited, WEB_POLICY);
    mesh.writeConfig('web-policy.yaml', edited);
    await waitFor(async () => (await viaOther('/public/hello')).status === 200, 10_000, 'the edited policy to allow other');
    const elapsedMs = Date.now() - started;

    // An invalid edit: refused with its location, and the previous version stays enforced.
    mesh.writeConfig('web-policy.yaml', WEB_POLICY.replace('action: ALLOW', 'action: ALLOWW'));
    await waitFor(async () => (await runTrellis(['status', '--admin', mesh.admin])).code === 1, 10_000, 'status to report the invalid config');
    const status = await runTrellis(['status', '--admin', mesh.admin]);
    assert.match(status.stdout + status.stderr, /web-policy\.yaml:\d+:\d+/);
    assert.equal((await viaOther('/public/hello')).status, 200, 'the last good config is still live');
    assert.equal((await viaClient('/public/hello')).status, 200);

    mesh.writeConfig('web-policy.yaml', WEB_POLICY);
    await waitFor(async () => (await viaOther('/public/hello')).status === 403, 10_000, 'the restored policy');
    assert.ok(elapsedMs < 10_000, `the edit applied after ${elapsedMs} ms`);
  });

  it('closes a live connection when its identity is revoked', async () => {
    const socket = net.connect(doomed.ready.listening.upstreams['tcp.default.svc.cluster.local:9000'] as number, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('still here?');
    const [data] = (await once(socket, 'data')) as [Buffer];
    assert.equal(data.toString(), 'still here?');
    const closed = once(socket, 'close');
    const revoke = await runTrellis(['ca', 'revoke', '--dir', join(mesh.stateDir, 'ca'), '--identity', 'spiffe://cluster.local/ns/default/sa/doomed']);
    assert.equal(revoke.code, 0, revoke.stderr);
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the connection stayed open after the revocation')), 10_000))]);
    // The client of another identity keeps working.
    assert.equal((await viaClient('/public/hello')).status, 200);
  });
});

/** A plaintext HTTP/1.1 request straight to a sidecar's inbound port; '' when the sidecar closes without answering. */
function plaintextGet(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /public/x HTTP/1.1\r\nHost: legacy\r\nConnection: close\r\n\r\n'));
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('error', () => undefined);
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('close', () => resolve(data));
  });
}
