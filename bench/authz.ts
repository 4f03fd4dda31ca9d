/**
 * Authorization cost against 1,000 policies: the compile time of one workload's policy set,
 * and the median time of one decision for requests that match early, late, or not at all (then
 * the denial is explained too). Side by side: the indexed authorizer, and the same policies with
 * every rule tried in order (`indexRules: false`). Prints a table.
 *
 *   npm run bench            (or: npx tsc -p tsconfig.json && node dist/bench/authz.js)
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { emptyConfigSet } from '../src/api/config-set.js';
import type { AuthorizationPolicyResource } from '../src/api/resources.js';
import { policiesForWorkload, type WorkloadAuthzPolicies } from '../src/policy/authz-policies.js';
import type { AuthzRequest } from '../src/policy/authz-request.js';
import { buildAuthorizer } from '../src/policy/authorizer.js';

const POLICIES = 1000;
const workload = { namespace: 'shop', name: 'api-1', labels: { app: 'api' } };

/** 1,000 realistic ALLOW policies (principals, methods, paths, a header condition), plus 20 DENY policies. */
function policySet(): WorkloadAuthzPolicies {
  const policies: AuthorizationPolicyResource[] = [];
  const source = { file: 'bench.yaml', line: 1, column: 1 };
  for (let i = 0; i < POLICIES; i++) {
    const deny = i % 50 === 49;
    policies.push({
      kind: 'AuthorizationPolicy',
      apiVersion: 'security.istio.io/v1',
      metadata: { name: `p-${i}`, namespace: 'shop', labels: {}, annotations: {} },
      source,
      spec: {
        selector: { matchLabels: { app: 'api' } },
        ...(deny ? { action: 'DENY' as const } : {}),
        rules: [
          {
            from: [{ source: { principals: [`cluster.local/ns/team-${i}/sa/client`, `cluster.local/ns/team-${i}/sa/batch-*`] } }, { source: { ipBlocks: [`10.${i % 250}.0.0/16`] } }],
            to: [{ operation: { methods: ['GET', 'HEAD'], paths: [`/v1/resource-${i}/*`, `/v1/resource-${i}`] } }, { operation: { methods: ['POST'], paths: [`/v1/resource-${i}/{*}/items`] } }],
            when: [{ key: 'request.headers[x-tenant]', values: [`tenant-${i}`, 'shared'] }],
          },
        ],
      },
    });
  }
  return policiesForWorkload({ ...emptyConfigSet(), authorizationPolicies: policies }, workload);
}

function request(team: number, path: string, tenant = 'shared', http = true): AuthzRequest {
  const base = { sourcePrincipal: `cluster.local/ns/team-${team}/sa/client`, sourceIp: '192.168.7.7', destinationIp: '10.0.0.9', destinationPort: 8080 };
  return http ? { ...base, http: { method: 'GET', path, host: 'api.shop.svc', headers: new Map([['x-tenant', tenant]]) } } : base;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Median ns per decision over `rounds` rounds of `batch` decisions each. */
function measure(evaluate: () => unknown, rounds = 31, batch = 200): number {
  for (let i = 0; i < batch * 5; i++) evaluate(); // warm up the JIT
  const perRound: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    for (let i = 0; i < batch; i++) evaluate();
    perRound.push(((performance.now() - start) * 1e6) / batch);
  }
  return median(perRound);
}

const set = policySet();
const compileTimes: number[] = [];
let authorizer = buildAuthorizer(set);
for (let i = 0; i < 7; i++) {
  const start = performance.now();
  authorizer = buildAuthorizer(set);
  compileTimes.push(performance.now() - start);
}
const linear = buildAuthorizer(set, { indexRules: false });

const cases: [string, AuthzRequest, string][] = [
  ['ALLOW, first policy matches', request(0, '/v1/resource-0/7'), 'ALLOW'],
  ['ALLOW, policy #998 matches', request(998, '/v1/resource-998/7'), 'ALLOW'],
  ['DENY, a DENY policy matches', request(49, '/v1/resource-49/x'), 'DENY'],
  ['DENY, no rule matches (+ explanation)', request(5000, '/v2/unknown'), 'DENY'],
  ['TCP connection, nothing matches', request(5000, '', 'shared', false), 'DENY'],
];

const format = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);
const rows: string[][] = [['case', 'decision', 'indexed (median)', 'every rule tried', 'ratio']];
for (const [name, req, expected] of cases) {
  const decision = authorizer.evaluate(req);
  if (decision.decision !== expected) throw new Error(`${name}: expected ${expected}, got ${decision.decision} (${decision.reason})`);
  if (linear.evaluate(req).decision !== expected) throw new Error(`${name}: the unindexed authorizer disagrees`);
  const indexed = measure(() => authorizer.evaluate(req), 21, 100);
  const plain = measure(() => linear.evaluate(req), 7, 5);
  rows.push([name, decision.decision, format(indexed), format(plain), `${(plain / indexed).toFixed(0)}×`]);
}

const width = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
console.log(`authorization: ${POLICIES} policies (${set.policies.filter((p) => p.action === 'DENY').length} DENY) for one workload`);
console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} ×${cpus().length}, node ${process.version}`);
console.log(`compile (buildAuthorizer): median ${median(compileTimes).toFixed(1)} ms\n`);
for (const [index, row] of rows.entries()) {
  console.log(row.map((cell, col) => cell.padEnd(width[col] ?? 0)).join('  '));
  if (index === 0) console.log(width.map((w) => '-'.repeat(w)).join('  '));
}
