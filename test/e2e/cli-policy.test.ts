import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runTrellis } from '../helpers/cli.js';
import { jwksOf, makeKey, nowSeconds, type TestKey } from '../helpers/jwt.js';

/**
 * `trellis validate` and `trellis authz check` as a user runs them: the real binary on YAML
 * fixtures, checking exit codes and the JSON contract.
 */

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = (path: string): string => join(root, 'test/fixtures/policy', path);
const MESH = fixture('mesh');
const WEB = 'spiffe://cluster.local/ns/web/sa/frontend';

interface Decision {
  decision: string;
  policy: string | null;
  action: string | null;
  rule: number | null;
  dryRun: { policy: string; rule: number; action: string; effect: string }[];
  reason: string;
  mtlsMode: string;
  stage: string;
  audit: { policy: string; rule: number }[];
  requestPrincipal?: string;
  dryRunDecision?: string;
}

async function check(...args: string[]): Promise<Decision> {
  const result = await runTrellis(['authz', 'check', '-f', MESH, '-o', 'json', ...args]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Decision;
}

void describe('trellis validate', () => {
  void it('prints a summary and exits 0 for a valid set', async () => {
    const result = await runTrellis(['validate', '-f', MESH]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /config valid: 9 resources \(4 AuthorizationPolicy, 1 MeshConfig, 2 PeerAuthentication, 2 WorkloadEntry\), 1 warning/);
    assert.match(result.stdout, /defaultAuthorization DENY, pathNormalization MERGE_SLASHES/);
  });

  void it('prints every error with file:line:column and exits 1', async () => {
    const result = await runTrellis(['validate', '-f', fixture('invalid.yaml')]);
    assert.equal(result.code, 1);
    const lines = result.stdout.trim().split('\n');
    const file = fixture('invalid.yaml');
    assert.deepEqual(
      lines.slice(0, 5).map((l) => l.split(': error: ')[0]),
      [`${file}:10:9`, `${file}:11:20`, `${file}:14:17`, `${file}:16:12`, `${file}:26:11`],
    );
    assert.match(lines[0] ?? '', /AuthorizationPolicy shop\/broken: spec\.rules\[0\]\.from\[0\]\.source\.principal: unknown field "principal" \(did you mean "principals"\?\)/);
    assert.match(lines[4] ?? '', /PeerAuthentication shop\/typo: spec\.mtls\.mode: "STRCT" is not one of/);
    assert.equal(lines[5], 'config rejected: 5 errors in 1 file; nothing was applied');
  });

  void it('-o json lists errors, warnings and resources', async () => {
    const result = await runTrellis(['validate', '-f', fixture('invalid.yaml'), '-o', 'json']);
    assert.equal(result.code, 1);
    const json = JSON.parse(result.stdout) as { valid: boolean; errors: { line: number; column: number; path: string; code: string; resource: string }[] };
    assert.equal(json.valid, false);
    assert.deepEqual(json.errors[1], {
      severity: 'error',
      code: 'TRELLIS_CONFIG_INVALID_VALUE',
      file: fixture('invalid.yaml'),
      line: 11,
      column: 20,
      resource: 'AuthorizationPolicy shop/broken',
      path: 'spec.rules[0].from[0].source.ipBlocks[0]',
      message: 'bad IP address or CIDR range "10.0.0.0/33": prefix length "33" must be a number from 0 to 32',
    });
  });

  void it('accepts the example policies and the bookinfo config', async () => {
    for (const dir of ['examples/policies', 'examples/bookinfo/config']) {
      const result = await runTrellis(['validate', '-f', join(root, dir)]);
      assert.equal(result.code, 0, `${dir}: ${result.stdout}${result.stderr}`);
    }
  });

  void it('exits 2 without -f and 1 for a missing file', async () => {
    assert.equal((await runTrellis(['validate'])).code, 2);
    const missing = await runTrellis(['validate', '-f', join(root, 'no-such-dir')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /no such file or directory \[TRELLIS_CONFIG_FILE\]/);
  });
});

void describe('trellis authz check', () => {
  void it('allows what a policy allows, naming policy and rule', async () => {
    const d = await check('--to', 'shop/api-1', '--from', WEB, '--path', '/api/orders');
    assert.deepEqual([d.decision, d.policy, d.action, d.rule, d.mtlsMode, d.stage], ['ALLOW', 'shop/api-readers', 'ALLOW', 0, 'STRICT', 'authorization']);
    assert.deepEqual(d.dryRun, []);
  });

  void it('denies with the nearest rule and the failed field', async () => {
    const d = await check('--to', 'shop/api-1', '--from', WEB, '--path', '/orders');
    assert.deepEqual([d.decision, d.policy, d.action, d.rule], ['DENY', null, null, null]);
    assert.equal(d.reason, 'denied: no ALLOW policy matched; the nearest is shop/api-readers rule 0, where paths: "/orders" ≠ "/api/*"');
  });

  void it('a root-namespace DENY beats the ALLOW, also through //admin', async () => {
    const d = await check('--to', 'shop/api-1', '--from', WEB, '--path', '//admin');
    assert.deepEqual([d.decision, d.policy, d.action, d.rule], ['DENY', 'istio-system/deny-admin', 'DENY', 0]);
  });

  void it('reports dry-run policies and audit', async () => {
    const d = await check('--to', 'shop/api-1', '--from', WEB, '--path', '/api/debug/vars');
    assert.equal(d.decision, 'ALLOW');
    assert.deepEqual(d.dryRun, [{ policy: 'shop/block-debug', rule: 0, action: 'DENY', effect: 'would deny' }]);
    assert.equal(d.dryRunDecision, 'DENY');
    const write = await check('--to', 'shop/api-1', '--from', WEB, '--method', 'POST', '--path', '/api/orders');
    assert.deepEqual(write.audit, [{ policy: 'shop/audit-writes', rule: 0 }]);
  });

  void it('refuses plaintext on a STRICT port, and follows portLevelMtls', async () => {
    const strict = await check('--to', 'shop/api-1', '--path', '/api/x');
    assert.deepEqual([strict.decision, strict.stage, strict.mtlsMode], ['DENY', 'mtls', 'STRICT']);
    const metrics = await check('--to', 'shop/api-1', '--port', '9090', '--path', '/metrics');
    assert.deepEqual([metrics.mtlsMode, metrics.stage], ['PERMISSIVE', 'authorization']);
  });

  void it('applies defaultAuthorization DENY to a workload without ALLOW policies, also on TCP', async () => {
    const d = await check('--to', 'shop/legacy-1', '--from', WEB, '--tcp');
    assert.deepEqual([d.decision, d.policy], ['DENY', null]);
    assert.match(d.reason, /defaultAuthorization is DENY/);
  });

  void it('prints a sentence in text mode', async () => {
    const result = await runTrellis(['authz', 'check', '-f', MESH, '--to', 'shop/api-1', '--from', WEB, '--path', '/orders']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^DENY: GET \/orders → shop\/api-1 port 8080, from spiffe:\/\/cluster\.local\/ns\/web\/sa\/frontend\n {2}denied: no ALLOW policy matched/);
    assert.match(result.stdout, /mTLS mode on port 8080: STRICT/);
  });

  const usage: readonly [string, string[], RegExp][] = [
    ['no --to', [], /needs --to/],
    ['unknown workload', ['--to', 'shop/nope'], /no WorkloadEntry shop\/nope in the config \(known: shop\/api-1, shop\/legacy-1\)/],
    ['bad --to', ['--to', 'api-1'], /expected NAMESPACE\/WORKLOADENTRY/],
    ['bad --from', ['--to', 'shop/api-1', '--from', 'cluster.local/ns/web/sa/x'], /--from/],
    ['bad --source-ip', ['--to', 'shop/api-1', '--source-ip', '10.0.0'], /not an IPv4 or IPv6 address/],
    ['bad --port', ['--to', 'shop/api-1', '--port', '0'], /--port/],
    ['HTTP flags with --tcp', ['--to', 'shop/api-1', '--tcp', '--path', '/x'], /remove the HTTP flags --path/],
    ['bad --header', ['--to', 'shop/api-1', '--header', 'no colon'], /expected "Name: value"/],
  ];
  for (const [name, args, message] of usage) {
    void it(`exits 2 on invalid input: ${name}`, async () => {
      const result = await runTrellis(['authz', 'check', '-f', MESH, ...args]);
      assert.equal(result.code, 2, result.stdout);
      assert.match(result.stderr, message);
    });
  }

  void it('exits 2 on an invalid config, printing its errors', async () => {
    const result = await runTrellis(['authz', 'check', '-f', fixture('invalid.yaml'), '--to', 'shop/api-1']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /invalid\.yaml:10:9: error/);
    assert.match(result.stderr, /the config is invalid \(5 errors\): nothing was evaluated/);
  });
});

void describe('trellis authz check --jwt', () => {
  let dir: string;
  let key: TestKey;
  const ISS = 'https://issuer.example';

  before(async () => {
    key = await makeKey('ES256', 'k1');
    dir = mkdtempSync(join(tmpdir(), 'trellis-jwt-'));
    writeFileSync(
      join(dir, 'config.yaml'),
      `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-1, namespace: shop}
spec: {address: 10.0.0.9, labels: {app: api}, ports: {http: 8080}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec:
  jwtRules:
  - issuer: ${ISS}
    audiences: [shop]
    jwks: '${JSON.stringify(jwksOf(key))}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: users-only, namespace: shop}
spec:
  rules:
  - from:
    - source: {requestPrincipals: ["${ISS}/*"]}
`,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const token = (extra: Record<string, unknown> = {}): Promise<string> => key.sign({ iss: ISS, sub: 'alice', aud: 'shop', exp: nowSeconds() + 600, ...extra });
  const run = async (...args: string[]): Promise<Decision> => {
    const result = await runTrellis(['authz', 'check', '-f', dir, '--to', 'shop/api-1', '-o', 'json', ...args]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Decision;
  };

  void it('a valid token: ALLOW with the request principal', async () => {
    const d = await run('--jwt', await token());
    assert.deepEqual([d.decision, d.requestPrincipal], ['ALLOW', `${ISS}/alice`]);
  });

  void it('an expired token: DENY at authentication (401)', async () => {
    const d = await run('--jwt', await token({ exp: nowSeconds() - 3600 }));
    assert.deepEqual([d.decision, d.stage], ['DENY', 'authentication']);
    assert.match(d.reason, /invalid JWT \(expired\)/);
  });

  void it('no token: DENY by authorization, with the reason', async () => {
    const d = await run();
    assert.deepEqual([d.decision, d.stage], ['DENY', 'authorization']);
    assert.match(d.reason, /requestPrincipals: no verified JWT/);
  });
});
