import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyConfigSet } from '../../../src/api/config-set.js';
import type { AuthorizationPolicyResource } from '../../../src/api/resources.js';
import type { Operation, Rule, Source } from '../../../src/api/schemas/security.js';
import { policiesForWorkload } from '../../../src/policy/authz-policies.js';
import type { AuthzRequest, VerifiedJwt } from '../../../src/policy/authz-request.js';
import { buildAuthorizer } from '../../../src/policy/authorizer.js';

/**
 * The rule index is an optimization only: with it, every decision (and its policy, rule,
 * dry-run and audit results) must equal the decision of trying every rule. Checked on a few
 * thousand requests against hundreds of generated policies (deterministic seed).
 */

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const rand = random(42);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
const some = <T>(items: readonly T[], max = 3): T[] => Array.from({ length: 1 + Math.floor(rand() * max) }, () => pick(items));

const NAMESPACES = ['web', 'shop', 'ops', 'dev'];
const ACCOUNTS = ['frontend', 'batch', 'admin', 'cron'];
const PRINCIPALS = NAMESPACES.flatMap((ns) => ACCOUNTS.map((sa) => `cluster.local/ns/${ns}/sa/${sa}`));
const PRINCIPAL_PATTERNS = [...PRINCIPALS, 'cluster.local/ns/web/*', '*/sa/admin', '*'];
const PATHS = ['/api/orders', '/api/orders/7', '/api/users', '/admin', '/admin/x', '/health', '/files/a/b.txt', '/v1/x/items'];
const PATH_PATTERNS = ['/api/orders', '/api/*', '/admin*', '*.txt', '/health', '/files/{**}', '/v1/{*}/items', '/api/{*}'];
const METHODS = ['GET', 'POST', 'DELETE'];
const TENANTS = ['a', 'b', 'c'];

function source(): Source {
  switch (Math.floor(rand() * 5)) {
    case 0:
      return { principals: some(PRINCIPAL_PATTERNS) };
    case 1:
      return { namespaces: some(NAMESPACES) };
    case 2:
      return { serviceAccounts: some(NAMESPACES.flatMap((ns) => ACCOUNTS.map((sa) => `${ns}/${sa}`))) };
    case 3:
      return { ipBlocks: [pick(['10.0.0.0/8', '10.1.0.0/16', '192.168.0.0/16'])] };
    default:
      return { notPrincipals: some(PRINCIPALS), requestPrincipals: ['https://issuer.example/*'] };
  }
}

function operation(): Operation {
  const op: { paths?: string[]; methods?: string[]; ports?: string[]; notPaths?: string[] } = {};
  if (rand() < 0.8) op.paths = some(PATH_PATTERNS);
  if (rand() < 0.5) op.methods = some(METHODS, 2);
  if (rand() < 0.3) op.ports = [pick(['8080', '9090'])];
  if (rand() < 0.1) op.notPaths = ['/admin*'];
  if (Object.keys(op).length === 0) op.methods = ['GET'];
  return op;
}

function rule(): Rule {
  const r: { from?: { source: Source }[]; to?: { operation: Operation }[]; when?: Rule['when'] } = {};
  if (rand() < 0.8) r.from = Array.from({ length: 1 + Math.floor(rand() * 2) }, () => ({ source: source() }));
  if (rand() < 0.8) r.to = Array.from({ length: 1 + Math.floor(rand() * 2) }, () => ({ operation: operation() }));
  if (rand() < 0.4) r.when = [{ key: 'request.headers[x-tenant]', values: some(TENANTS, 2) }];
  if (rand() < 0.1) r.when = [...(r.when ?? []), { key: 'request.auth.claims[group]', values: ['admins'] }];
  return r;
}

function policies(count: number): AuthorizationPolicyResource[] {
  return Array.from({ length: count }, (_, i) => {
    const dryRun = rand() < 0.05;
    const roll = rand();
    const action = dryRun ? pick(['ALLOW', 'DENY'] as const) : roll < 0.04 ? 'DENY' : roll < 0.1 ? 'AUDIT' : 'ALLOW';
    // DENY rules stay narrow, or the generated sets would deny everything.
    const rules = action === 'DENY' ? [{ ...rule(), to: [{ operation: { paths: [pick(['/admin', '/admin/x'])] } }] }] : Array.from({ length: 1 + Math.floor(rand() * 2) }, rule);
    return {
      kind: 'AuthorizationPolicy',
      apiVersion: 'security.istio.io/v1',
      metadata: { name: `p-${String(i).padStart(4, '0')}`, namespace: 'shop', labels: {}, annotations: dryRun ? { 'istio.io/dry-run': 'true' } : {} },
      source: { file: 'gen.yaml', line: 1, column: 1 },
      spec: { action, rules },
    };
  });
}

function requestOf(): AuthzRequest {
  const jwt: VerifiedJwt | undefined =
    rand() < 0.3 ? { issuer: 'https://issuer.example', subject: 'u', principal: 'https://issuer.example/u', audiences: [], claims: { group: pick(['admins', 'users']) } } : undefined;
  const base = {
    ...(rand() < 0.9 ? { sourcePrincipal: pick(PRINCIPALS) } : {}),
    sourceIp: pick(['10.1.2.3', '10.9.9.9', '192.168.1.1', '172.16.0.1']),
    destinationIp: '10.0.0.9',
    destinationPort: pick([8080, 9090]),
  };
  if (rand() < 0.15) return base;
  const headers = new Map<string, string>();
  if (rand() < 0.7) headers.set('x-tenant', pick(TENANTS));
  return { ...base, http: { method: pick(METHODS), path: pick(PATHS), host: 'api', headers }, ...(jwt ? { jwt } : {}) };
}

void describe('rule index', () => {
  for (const count of [20, 300]) {
    void it(`gives the same decisions as trying every rule (${count} policies)`, () => {
      const set = policiesForWorkload({ ...emptyConfigSet(), authorizationPolicies: policies(count) }, { namespace: 'shop', labels: {} });
      const indexed = buildAuthorizer(set);
      const plain = buildAuthorizer(set, { indexRules: false });
      let allowed = 0;
      for (let i = 0; i < 1500; i++) {
        const request = requestOf();
        const a = indexed.evaluate(request);
        const b = plain.evaluate(request);
        const { reason: _ra, nearest: _na, ...aCore } = a;
        const { reason: _rb, nearest: _nb, ...bCore } = b;
        assert.deepEqual(aCore, bCore, JSON.stringify(request, (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v)));
        if (a.decision === 'ALLOW') allowed++;
        if (a.decision === 'DENY' && a.policy === null && count <= 20) assert.deepEqual(a.nearest, b.nearest, 'small sets explain exactly');
      }
      assert.ok(allowed > 30 && allowed < 1470, `the generated cases exercise both outcomes (${allowed} allowed)`);
    });
  }
});
