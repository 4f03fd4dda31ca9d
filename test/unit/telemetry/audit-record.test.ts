import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuthzDecision } from '../../../src/policy/authorizer.js';
import {
  AuditLog,
  AuditSampler,
  authzAuditRecord,
  isCredentialHeader,
  parseAllowSampling,
  serializeRecord,
  type AuditRecord,
  type AuditSink,
} from '../../../src/telemetry/audit/index.js';

const DENY: AuthzDecision = {
  decision: 'DENY',
  policy: 'bookinfo/deny-admin',
  action: 'DENY',
  rule: 0,
  reason: 'DENY policy bookinfo/deny-admin rule 0 matched',
  dryRun: [{ policy: 'bookinfo/tighten', rule: 1, action: 'DENY', effect: 'would deny' }],
  dryRunDecision: 'DENY',
  audit: [],
};
const ALLOW: AuthzDecision = { decision: 'ALLOW', policy: 'bookinfo/allow', action: 'ALLOW', rule: 0, reason: 'allowed', dryRun: [], audit: [{ policy: 'bookinfo/audit-all', rule: 0 }] };

const PLAIN_ALLOW: AuthzDecision = { ...ALLOW, audit: [] };

function record(decision: AuthzDecision, headers?: Record<string, string>): AuditRecord {
  return authzAuditRecord(decision, {
    time: new Date('2025-01-02T03:04:05.678Z'),
    source: { principal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage', address: '10.0.0.7', port: 40112 },
    requestPrincipal: 'https://issuer.example/alice',
    destination: { workload: 'reviews-v1', namespace: 'bookinfo', principal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews', port: 9080 },
    request: { method: 'GET', host: 'reviews:9080', path: '/admin', protocol: 'HTTP/1.1', ...(headers ? { headers } : {}) },
    mtls: true,
    requestId: 'req-1',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  });
}

void describe('audit records', () => {
  void it('an authorization record holds the decision, the deciding policy and rule, dry-run outcomes and the mTLS state', () => {
    const parsed = JSON.parse(serializeRecord(record(DENY))) as Record<string, unknown>;
    assert.deepEqual(parsed, {
      kind: 'authz',
      time: '2025-01-02T03:04:05.678Z',
      decision: 'DENY',
      policy: 'bookinfo/deny-admin',
      rule: 0,
      action: 'DENY',
      reason: 'DENY policy bookinfo/deny-admin rule 0 matched',
      dryRun: [{ policy: 'bookinfo/tighten', rule: 1, effect: 'would deny' }],
      dryRunDecision: 'DENY',
      source: { principal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage', address: '10.0.0.7', port: 40112 },
      requestPrincipal: 'https://issuer.example/alice',
      destination: { workload: 'reviews-v1', namespace: 'bookinfo', principal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews', port: 9080 },
      request: { method: 'GET', host: 'reviews:9080', path: '/admin', protocol: 'HTTP/1.1' },
      mtls: 'mutual_tls',
      requestId: 'req-1',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    assert.deepEqual((JSON.parse(serializeRecord(record(ALLOW))) as { auditPolicies: string[] }).auditPolicies, ['bookinfo/audit-all']);
  });

  void it('credential headers are redacted, other headers kept', () => {
    const headers = {
      Authorization: 'Bearer eyJhbGciOi.secret.sig',
      cookie: 'session=abc',
      'Proxy-Authorization': 'Basic dXNlcjpwYXNz',
      'x-api-key': 'k-123',
      'x-my-service-token': 't-456',
      'x-client-secret': 's',
      'user-agent': 'curl/8',
      accept: '*/*',
    };
    const line = serializeRecord(record(DENY, headers));
    for (const secret of ['eyJhbGciOi', 'session=abc', 'dXNlcjpwYXNz', 'k-123', 't-456']) assert.ok(!line.includes(secret), `${secret} leaked`);
    const parsed = JSON.parse(line) as { request: { headers: Record<string, string> } };
    assert.equal(parsed.request.headers['Authorization'], '<redacted>');
    assert.equal(parsed.request.headers['x-client-secret'], '<redacted>');
    assert.equal(parsed.request.headers['user-agent'], 'curl/8');
    assert.equal(parsed.request.headers['accept'], '*/*');
    assert.equal(isCredentialHeader('X-API-KEY'), true);
    assert.equal(isCredentialHeader('content-type'), false);
  });

  void it('a record built by hand is still redacted when serialized', () => {
    const raw: AuditRecord = { ...record(DENY), request: { headers: { authorization: 'Bearer x' } } } as AuditRecord;
    assert.ok(!serializeRecord(raw).includes('Bearer x'));
  });
});

void describe('audit sampler', () => {
  const cert: AuditRecord = { kind: 'certificate', time: '2025-01-01T00:00:00.000Z', event: 'issued', identity: 'spiffe://td/ns/a/sa/b' };
  const config: AuditRecord = { kind: 'config', time: '2025-01-01T00:00:00.000Z', event: 'changed', version: '3' };

  void it('denials, certificate and config events are always written', () => {
    const none = new AuditSampler('none');
    for (const r of [record(DENY), cert, config]) assert.equal(none.shouldWrite(r), true);
    assert.equal(new AuditSampler(0).shouldWrite(record(DENY)), true);
  });

  void it('allows: all, none, or a fraction', () => {
    assert.equal(new AuditSampler('all').shouldWrite(record(PLAIN_ALLOW)), true);
    assert.equal(new AuditSampler('none').shouldWrite(record(PLAIN_ALLOW)), false);
    const draws = [0.05, 0.5, 0.09, 0.95];
    let i = 0;
    const tenth = new AuditSampler(0.1, () => draws[i++] ?? 1);
    assert.deepEqual(draws.map(() => tenth.shouldWrite(record(PLAIN_ALLOW))), [true, false, true, false]);
  });

  void it('an allow an AUDIT policy matched is always written (Istio AUDIT action)', () => {
    assert.equal(new AuditSampler('none').shouldWrite(record(ALLOW)), true);
    assert.equal(new AuditSampler(0, () => 0.99).shouldWrite(record(ALLOW)), true);
  });

  void it('parses the configuration forms and refuses nonsense', () => {
    assert.equal(parseAllowSampling('all'), 'all');
    assert.equal(parseAllowSampling('none'), 'none');
    assert.equal(parseAllowSampling('0.25'), 0.25);
    assert.equal(parseAllowSampling('10%'), 0.1);
    for (const bad of ['', '1.5', '-0.1', 'some', '200%']) assert.throws(() => parseAllowSampling(bad), RangeError, bad);
    assert.throws(() => new AuditSampler(2), RangeError);
  });

  void it('the audit log samples once and fans out to every sink', async () => {
    const seen: AuditRecord[][] = [[], []];
    const sink = (into: AuditRecord[]): AuditSink => ({
      write: (r) => void into.push(r),
      flush: async () => {},
      close: async () => {},
      stats: () => ({ buffered: 0, delivered: into.length, dropped: 0, failed: 0 }),
    });
    const log = new AuditLog({ sinks: [sink(seen[0] ?? []), sink(seen[1] ?? [])], allows: 'none' });
    log.record(record(PLAIN_ALLOW));
    log.record(record(DENY));
    await log.close();
    assert.equal(seen[0]?.length, 1);
    assert.equal(seen[1]?.length, 1);
    assert.equal(log.stats().sampledOut, 1);
  });
});
