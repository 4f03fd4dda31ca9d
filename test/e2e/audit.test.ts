/**
 * The audit log as an operator sees it: a control plane and real proxies as processes; denials
 * and allows (per MeshConfig `audit.allows`, changed live), dry-run and AUDIT policies, mTLS
 * state, certificate and config events, all collected at the control plane (<state>/audit.log
 * and the admin API's stream, read by `trellis audit tail`), and a proxy's own syslog (UDP) and
 * webhook sinks. No credential ever reaches a record.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { AuditRecord, AuthzAuditRecord, CertificateAuditRecord, ConfigAuditRecord } from '../../src/telemetry/audit/index.js';
import { runTrellis } from '../helpers/cli.js';
import { freePorts, httpRequest, MeshProcesses, type StartedWorkload, waitFor } from '../helpers/mesh-process.js';

const ISSUER = 'https://issuer.test';
const SECRETS = ['SECRET-AUTHZ-VALUE', 'SECRET-COOKIE-VALUE', 'SECRET-QUERY-TOKEN', 'SECRET-API-KEY'];

function meshConfig(allows: string): string {
  return `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec:
  audit: {allows: ${allows}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`;
}

const SERVICES = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
`;

function workloads(webPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: 127.0.0.1, serviceAccount: client}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-v1, namespace: default}
spec:
  address: 127.0.0.1
  serviceAccount: web
  labels: {app: web}
  ports: {http: ${webPort}}
`;
}

const POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-allow, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/public/*", "/admin"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-deny-admin, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: web-deny-secret-dry
  namespace: default
  annotations: {istio.io/dry-run: "true"}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/public/secret"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-audit-sensitive, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: AUDIT
  rules:
  - to: [{operation: {paths: ["/public/sensitive"]}}]
`;

/** Waits for the first record that matches, re-reading the control plane's audit.log. */
async function findRecord<R extends AuditRecord>(mesh: MeshProcesses, match: (record: AuditRecord) => boolean, what: string, timeoutMs = 15_000): Promise<R> {
  let found: AuditRecord | undefined;
  await waitFor(() => {
    found = auditLog(mesh).find(match);
    return found !== undefined;
  }, timeoutMs, what);
  return found as R;
}

function auditLog(mesh: MeshProcesses): AuditRecord[] {
  let text = '';
  try {
    text = readFileSync(join(mesh.stateDir, 'audit.log'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as AuditRecord);
}

const isAuthz = (record: AuditRecord): record is AuthzAuditRecord => record.kind === 'authz';

describe('the audit log of a running mesh', () => {
  let mesh: MeshProcesses;
  let client: StartedWorkload;
  let web: StartedWorkload;
  let jwt: string;
  const syslog: string[] = [];
  const webhook: AuditRecord[][] = [];
  const tailOutputs: string[] = [];
  let udp: dgram.Socket;
  let siem: http.Server;

  before(async () => {
    udp = dgram.createSocket('udp4');
    udp.on('message', (message) => syslog.push(message.toString('utf8')));
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    siem = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        webhook.push(JSON.parse(body) as AuditRecord[]);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => siem.listen(0, '127.0.0.1', resolve));

    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    jwt = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISSUER).setIssuedAt().setExpirationTime('10m').sign(privateKey);

    const [webPort] = (await freePorts(1)) as [number];
    mesh = await MeshProcesses.start({
      'mesh.yaml': meshConfig('all'),
      'services.yaml': SERVICES,
      'workloads.yaml': workloads(webPort),
      'policies.yaml': POLICIES,
      'jwt.yaml': `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: web-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  jwtRules: [{issuer: "${ISSUER}", jwks: '${JSON.stringify({ keys: [jwk] })}'}]
`,
    });
    const udpPort = (udp.address() as AddressInfo).port;
    const siemPort = (siem.address() as AddressInfo).port;
    [web, client] = await Promise.all([
      mesh.startWorkload('default/web-v1', { app: 'http-echo.mjs', extraArgs: ['--audit', `syslog+udp://127.0.0.1:${udpPort}`, '--audit', `http://127.0.0.1:${siemPort}/siem`] }),
      mesh.startWorkload('default/client', { outboundPort: true }),
    ]);
    await mesh.waitSynced(2);
    // `trellis run` starts the app once its sidecar is ready: wait until it answers.
    await waitFor(async () => (await viaClient('/public/ready')).status === 200, 15_000, 'the web app');
  });

  after(async () => {
    await mesh?.stop();
    udp?.close();
    siem?.close();
  });

  const viaClient = (path: string, headers: Record<string, string> = {}) =>
    httpRequest({ url: `http://web.default.svc.cluster.local${path}`, proxyPort: client.ready.listening.outbound as number, headers });

  it('records a denial with every field: time, source principal and address, request principal, destination, method, host, path, policy and rule, mTLS', async () => {
    const started = Date.now();
    const reply = await viaClient(`/admin?api_key=SECRET-QUERY-TOKEN`, {
      authorization: `Bearer ${jwt}`,
      cookie: 'session=SECRET-COOKIE-VALUE',
      'x-api-key': 'SECRET-API-KEY',
      'x-request-id': 'audit-e2e-deny-1',
    });
    assert.equal(reply.status, 403, reply.body);
    const record = await findRecord<AuthzAuditRecord>(mesh, (r) => isAuthz(r) && r.requestId === 'audit-e2e-deny-1', 'the denial record');
    assert.equal(record.decision, 'DENY');
    assert.ok(Math.abs(Date.parse(record.time) - started) < 10_000, record.time);
    assert.equal(record.source.principal, 'spiffe://cluster.local/ns/default/sa/client');
    assert.equal(record.source.address, '127.0.0.1');
    assert.equal(record.requestPrincipal, `${ISSUER}/alice`);
    assert.deepEqual(record.destination, { workload: 'web-v1', namespace: 'default', principal: 'spiffe://cluster.local/ns/default/sa/web', port: web.ready.listening.inbound['http'] });
    assert.equal(record.request?.method, 'GET');
    assert.equal(record.request?.host, 'web.default.svc.cluster.local');
    assert.equal(record.request?.path, '/admin', 'the query (which may carry a token) is left out');
    assert.equal(record.policy, 'default/web-deny-admin');
    assert.equal(record.rule, 0);
    assert.equal(record.action, 'DENY');
    assert.match(record.reason, /web-deny-admin/);
    assert.equal(record.mtls, 'mutual_tls');
    assert.equal(record.mtlsMode, 'STRICT');
    assert.equal(record.stage, 'authorization');
    assert.deepEqual(record.dryRun, []);
    assert.equal(record.reporter, 'spiffe://cluster.local/ns/default/sa/web', 'the control plane stamps who reported it');
    const mode = statSync(join(mesh.stateDir, 'audit.log')).mode & 0o777;
    assert.equal(mode, 0o600);
  });

  it('records allows when MeshConfig says all, with dry-run outcomes', async () => {
    assert.equal((await viaClient('/public/secret', { 'x-request-id': 'audit-e2e-dry' })).status, 200);
    const record = await findRecord<AuthzAuditRecord>(mesh, (r) => isAuthz(r) && r.requestId === 'audit-e2e-dry', 'the dry-run allow');
    assert.equal(record.decision, 'ALLOW');
    assert.equal(record.policy, 'default/web-allow');
    assert.deepEqual(record.dryRun, [{ policy: 'default/web-deny-secret-dry', rule: 0, effect: 'would deny' }]);
    assert.equal(record.dryRunDecision, 'DENY');
  });

  it('follows a live change to audit.allows: none drops allows, AUDIT policies still mark theirs, denials stay; the change itself is audited', async () => {
    mesh.writeConfig('mesh.yaml', meshConfig('none'));
    const change = await findRecord<ConfigAuditRecord>(mesh, (r) => r.kind === 'config' && r.event === 'changed' && (r.changes?.modified ?? []).includes('MeshConfig mesh'), 'the config change record');
    assert.match(change.actor ?? '', /^files:/);
    assert.match(change.version, /^[0-9a-f]{16}$/);
    assert.ok(change.previousVersion);
    assert.deepEqual(change.changes, { added: [], removed: [], modified: ['MeshConfig mesh'] });
    await mesh.waitSynced(2);
    // Until the proxy applied it, allows may still be recorded: wait until an allow is not.
    let n = 0;
    await waitFor(async () => {
      const id = `audit-e2e-none-${++n}`;
      assert.equal((await viaClient('/public/quiet', { 'x-request-id': id })).status, 200);
      const barrier = `audit-e2e-barrier-${n}`;
      assert.equal((await viaClient('/admin', { 'x-request-id': barrier })).status, 403);
      // Records of one proxy arrive in order: once the later denial is in, the allow would be too.
      await findRecord(mesh, (r) => isAuthz(r) && r.requestId === barrier, 'the barrier denial');
      return !auditLog(mesh).some((r) => isAuthz(r) && r.requestId === id);
    }, 20_000, 'allows no longer audited');
    assert.equal((await viaClient('/public/sensitive', { 'x-request-id': 'audit-e2e-audit-policy' })).status, 200);
    const marked = await findRecord<AuthzAuditRecord>(mesh, (r) => isAuthz(r) && r.requestId === 'audit-e2e-audit-policy', 'the AUDIT-marked allow');
    assert.equal(marked.decision, 'ALLOW');
    assert.deepEqual(marked.auditPolicies, ['default/web-audit-sensitive']);
  });

  it('records a refused config change with its errors', async () => {
    mesh.writeConfig('broken.yaml', 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: broken, namespace: default}\nspec: {action: NOPE}\n');
    const refused = await findRecord<ConfigAuditRecord>(mesh, (r) => r.kind === 'config' && r.event === 'refused', 'the refusal record');
    assert.ok((refused.errors ?? []).some((e) => e.includes('broken.yaml')), JSON.stringify(refused.errors));
    assert.match(refused.reason ?? '', /stays live/);
  });

  it('records certificate issuance from the CA, and the join tokens the CLI created', async () => {
    const issued = await findRecord<CertificateAuditRecord>(mesh, (r) => r.kind === 'certificate' && r.event === 'issued' && r.identity === 'spiffe://cluster.local/ns/default/sa/web', 'the issuance record');
    assert.match(issued.serial ?? '', /^[0-9a-f]+$/);
    assert.ok(issued.notAfter);
    const token = await findRecord<CertificateAuditRecord>(mesh, (r) => r.kind === 'certificate' && r.event === 'token-created', 'the token record');
    assert.match(token.actor ?? '', /^cli:/);
  });

  it('trellis audit tail --denied prints the denial as a user sees it, and follows new ones', async () => {
    const past = await runTrellis(['audit', 'tail', '--denied', '--since', '5m', '--no-follow', '--state', mesh.stateDir]);
    assert.equal(past.code, 0, past.stderr);
    tailOutputs.push(past.stdout);
    const line = past.stdout.split('\n').find((l) => l.includes('/admin'));
    assert.ok(line, past.stdout);
    assert.match(line, /^\d{4}-\d\d-\d\dT\S+Z DENY {2}spiffe:\/\/cluster\.local\/ns\/default\/sa\/client → default\/web-v1 {2}GET web\.default\.svc\.cluster\.local \/admin {2}policy default\/web-deny-admin rule 0 {2}mTLS/);
    assert.ok(!past.stdout.includes(' ALLOW '), 'only denials');

    const json = await runTrellis(['audit', 'tail', '--workload', 'default/web-v1', '--since', '5m', '--no-follow', '-o', 'json', '--admin', mesh.admin]);
    assert.equal(json.code, 0, json.stderr);
    tailOutputs.push(json.stdout);
    const records = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    assert.ok(records.length > 0 && records.every((r) => isAuthz(r) && r.destination.workload === 'web-v1'));

    // Live: the tail waits for the next denial and stops after one (--count 1).
    let done = false;
    const follow = runTrellis(['audit', 'tail', '--denied', '--count', '1', '--state', mesh.stateDir], { timeoutMs: 30_000 }).finally(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    await waitFor(async () => {
      await viaClient('/admin', { 'x-request-id': 'audit-e2e-live' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      return done;
    }, 20_000, 'the live tail');
    const live = await follow;
    assert.equal(live.code, 0, live.stderr);
    tailOutputs.push(live.stdout);
    assert.equal(live.stdout.trim().split('\n').length, 1, live.stdout);
    assert.match(live.stdout, /DENY .* → default\/web-v1 .*\/admin/);
  });

  it("a proxy's own syslog (UDP, RFC 5424) and webhook sinks get its records", async () => {
    await waitFor(() => syslog.some((m) => m.includes('audit-e2e-deny-1')), 10_000, 'the syslog message');
    const message = syslog.find((m) => m.includes('audit-e2e-deny-1')) as string;
    // authpriv (10) * 8 + warning (4) = 84
    assert.match(message, /^<84>1 \S+ \S+ trellis-proxy \d+ authz \[trellis@32473 decision="DENY" policy="default\/web-deny-admin" rule="0" srcPrincipal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/client"/);
    await waitFor(() => webhook.flat().some((r) => isAuthz(r) && r.requestId === 'audit-e2e-deny-1'), 10_000, 'the webhook batch');
    const record = webhook.flat().find((r) => isAuthz(r) && r.requestId === 'audit-e2e-deny-1') as AuthzAuditRecord;
    assert.equal(record.decision, 'DENY');
    assert.equal(record.request?.path, '/admin');
  });

  it('no credential reaches any record: file, stream, syslog, webhook', () => {
    const everything = [
      readFileSync(join(mesh.stateDir, 'audit.log'), 'utf8'),
      ...tailOutputs,
      ...syslog,
      JSON.stringify(webhook),
    ].join('\n');
    assert.ok(everything.includes('audit-e2e-deny-1'), 'the records under test are there');
    for (const secret of [...SECRETS, jwt, jwt.split('.')[2] as string]) assert.ok(!everything.includes(secret), `a credential leaked: ${secret.slice(0, 12)}…`);
  });
});
