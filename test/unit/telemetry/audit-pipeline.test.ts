/**
 * The pieces around the audit records: sink forms (MeshConfig `audit.sinks`, `--audit`), the
 * text of `trellis audit tail`, its filters, the config diff of a version, the CA's log lines as
 * certificate records, and the proxy's records of HTTP and TCP decisions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { describeAuditSink, parseAuditSinkSpec } from '../../../src/api/audit-config.js';
import { parseConfigText } from '../../../src/api/config-set.js';
import { parseFilter } from '../../../src/controlplane/audit-hub.js';
import { certificateRecordOf } from '../../../src/controlplane/ca-audit-follower.js';
import { configChanges } from '../../../src/controlplane/config-audit.js';
import { ControlPlaneAuditSink, ProxyAudit } from '../../../src/dataplane/audit.js';
import { SpiffeId } from '../../../src/identity/spiffe-id.js';
import type { InboundDecision } from '../../../src/policy/inbound.js';
import { formatAuditText, matchesAuditFilter, type AuditRecord, type AuthzAuditRecord } from '../../../src/telemetry/audit/index.js';

const DENY_RECORD: AuthzAuditRecord = {
  kind: 'authz',
  time: '2026-01-02T03:04:05.678Z',
  decision: 'DENY',
  policy: 'default/deny-admin',
  rule: 0,
  action: 'DENY',
  reason: 'denied: DENY policy default/deny-admin rule 0 matched',
  dryRun: [{ policy: 'default/tighten', rule: 1, effect: 'would deny' }],
  source: { principal: 'spiffe://cluster.local/ns/default/sa/client', address: '127.0.0.1' },
  destination: { workload: 'web-v1', namespace: 'default' },
  request: { method: 'GET', host: 'web:80', path: '/admin' },
  mtls: 'mutual_tls',
};

void describe('audit sink forms', () => {
  void it('parses every form and refuses the rest with the forms listed', () => {
    assert.deepEqual(parseAuditSinkSpec('stdout'), { type: 'stdout' });
    assert.deepEqual(parseAuditSinkSpec('file:/var/log/trellis/audit.log'), { type: 'file', path: '/var/log/trellis/audit.log' });
    assert.deepEqual(parseAuditSinkSpec('syslog+udp://127.0.0.1:5514?facility=local0'), { type: 'syslog', transport: 'udp', host: '127.0.0.1', port: 5514, facility: 'local0' });
    assert.deepEqual(parseAuditSinkSpec('syslog+tls://[::1]'), { type: 'syslog', transport: 'tls', host: '::1', port: 6514 });
    assert.deepEqual(parseAuditSinkSpec('syslog+tcp://logs.example.com'), { type: 'syslog', transport: 'tcp', host: 'logs.example.com', port: 514 });
    assert.equal(parseAuditSinkSpec('https://siem.example.com/in?key=abc').type, 'webhook');
    for (const bad of ['', 'file:', 'syslog+udp://:514', 'syslog+udp://h:1?facility=kern', 'ftp://x', 'https://user:pw@siem.example.com/']) {
      assert.throws(() => parseAuditSinkSpec(bad), RangeError, bad);
    }
  });

  void it('describes a webhook without its query, which may hold a key', () => {
    assert.equal(describeAuditSink(parseAuditSinkSpec('https://siem.example.com/in?key=abc')), 'https://siem.example.com/in');
  });
});

void describe('audit tail text and filters', () => {
  void it('one readable line per decision', () => {
    assert.equal(
      formatAuditText(DENY_RECORD),
      '2026-01-02T03:04:05.678Z DENY  spiffe://cluster.local/ns/default/sa/client → default/web-v1  GET web:80 /admin  policy default/deny-admin rule 0  mTLS, dry-run default/tighten would deny  "denied: DENY policy default/deny-admin rule 0 matched"',
    );
    const tcp: AuthzAuditRecord = { ...DENY_RECORD, source: { address: '10.0.0.9' }, request: undefined as never, mtls: 'none', policy: null, rule: null, dryRun: [], destination: { workload: 'db', namespace: 'data', port: 5432 } };
    delete (tcp as { request?: unknown }).request;
    assert.match(formatAuditText(tcp), /DENY {2}10\.0\.0\.9 \(no identity\) → data\/db {2}TCP port 5432 {2}default {2}plaintext/);
    assert.equal(formatAuditText({ ...DENY_RECORD, reason: 'a\nb' }).includes('\n'), false, 'no line breaks from record text');
  });

  void it('formats certificate and config events', () => {
    assert.match(formatAuditText({ kind: 'certificate', time: 't', event: 'issued', identity: 'spiffe://td/ns/a/sa/b', serial: 'ab', actor: 'join-token' }), /^t CERT {2}issued spiffe:\/\/td\/ns\/a\/sa\/b {2}serial ab {2}by join-token$/);
    assert.match(formatAuditText({ kind: 'config', time: 't', event: 'changed', version: 'v2', previousVersion: 'v1', actor: 'files:/c', changes: { added: ['A x/y'], removed: [], modified: ['B z'] } }), /version v2 {2}\(was v1\) {2}by files:\/c {2}\[\+A x\/y, ~B z\]/);
  });

  void it('filters by denial, workload, kind and time', () => {
    const allow: AuditRecord = { ...DENY_RECORD, decision: 'ALLOW' };
    const cert: AuditRecord = { kind: 'certificate', time: DENY_RECORD.time, event: 'issued' };
    assert.equal(matchesAuditFilter(DENY_RECORD, { denied: true }), true);
    assert.equal(matchesAuditFilter(allow, { denied: true }), false);
    assert.equal(matchesAuditFilter(cert, { denied: true }), false);
    assert.equal(matchesAuditFilter(DENY_RECORD, { workload: 'default/web-v1' }), true);
    assert.equal(matchesAuditFilter(DENY_RECORD, { workload: 'default/other' }), false);
    assert.equal(matchesAuditFilter(cert, { kinds: ['certificate'] }), true);
    assert.equal(matchesAuditFilter(DENY_RECORD, { since: Date.parse(DENY_RECORD.time) + 1 }), false);
    const now = Date.parse('2026-01-02T04:00:00Z');
    assert.deepEqual(parseFilter(new URLSearchParams('denied=true&workload=default/web-v1&since=10m&kind=authz'), now), { denied: true, workload: 'default/web-v1', kinds: ['authz'], since: now - 600_000 });
    assert.deepEqual(parseFilter(new URLSearchParams('since=2026-01-02T03:00:00Z')), { since: Date.parse('2026-01-02T03:00:00Z') });
    for (const bad of ['since=yesterday', 'workload=web', 'kind=metrics']) assert.throws(() => parseFilter(new URLSearchParams(bad)), RangeError, bad);
  });
});

void describe('config change records', () => {
  const set = (text: string) => {
    const result = parseConfigText(text, 'mesh.yaml');
    assert.ok(result.config, JSON.stringify(result.errors));
    return result.config;
  };
  const policy = (name: string, path: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["${path}"]}}]}]
`;

  void it('lists what a version added, removed and modified, not what merely moved', () => {
    const v1 = set([policy('a', '/a'), policy('b', '/b')].join('---\n'));
    const v2 = set([`# a comment moves every line\n${policy('b', '/b2')}`, policy('c', '/c')].join('---\n'));
    assert.deepEqual(configChanges(v1, v2), { added: ['AuthorizationPolicy default/c'], removed: ['AuthorizationPolicy default/a'], modified: ['AuthorizationPolicy default/b'] });
    assert.deepEqual(configChanges(v2, set(`\n\n${[`# a comment moves every line\n${policy('b', '/b2')}`, policy('c', '/c')].join('---\n')}`)), { added: [], removed: [], modified: [] });
    assert.deepEqual(configChanges(undefined, v1).added, ['AuthorizationPolicy default/a', 'AuthorizationPolicy default/b']);
  });
});

void describe('CA events as certificate records', () => {
  void it('maps each line of <ca>/audit.log, and nothing else', () => {
    assert.deepEqual(certificateRecordOf('{"time":"t","type":"svid.issued","actor":"join-token","identity":"spiffe://td/ns/a/sa/b","serial":"0a","notAfter":"n"}'), {
      kind: 'certificate', time: 't', event: 'issued', actor: 'join-token', identity: 'spiffe://td/ns/a/sa/b', serial: '0a', notAfter: 'n',
    });
    assert.deepEqual(certificateRecordOf('{"time":"t","type":"svid.refused","actor":"join-token","reason":"token-used","message":"certificate refused: the token was used"}'), {
      kind: 'certificate', time: 't', event: 'refused', actor: 'join-token', reason: 'token-used: certificate refused: the token was used',
    });
    assert.deepEqual(certificateRecordOf('{"time":"t","type":"revocation.added","actor":"cli:ops","identity":"spiffe://td/ns/a/sa/b","serials":["01","02"]}'), {
      kind: 'certificate', time: 't', event: 'revoked', actor: 'cli:ops', identity: 'spiffe://td/ns/a/sa/b', serials: ['01', '02'],
    });
    assert.equal(certificateRecordOf('{"time":"t","type":"something.new"}'), undefined);
    assert.equal(certificateRecordOf('not json'), undefined);
  });
});

void describe('the proxy audit', () => {
  const decision = (overrides: Partial<InboundDecision>): InboundDecision => ({
    decision: 'DENY', policy: null, action: null, rule: null, reason: 'denied: no ALLOW policy matched', dryRun: [], audit: [], mtlsMode: 'STRICT', stage: 'authorization', ...overrides,
  });
  const workload = { namespace: 'data', name: 'db', labels: {}, serviceAccount: 'db', identity: 'spiffe://cluster.local/ns/data/sa/db', address: '127.0.0.1', trustDomain: 'cluster.local' };

  void it('records TCP connection decisions and samples allows as pushed, live', async () => {
    const reported: AuditRecord[] = [];
    let pushed: 'all' | 'none' = 'none';
    const audit = new ProxyAudit({ sinks: [], report: async (records) => void reported.push(...records), workload: () => workload, configuredAllows: () => pushed, log: pino({ level: 'silent' }) });
    const peer = { identity: SpiffeId.parse('spiffe://cluster.local/ns/app/sa/api'), serial: '01', certSha256: 'x', notAfter: new Date() };
    const connection = { id: 1, sourceIp: '127.0.0.2', sourcePort: 4000, destIp: '127.0.0.1', destPort: 5432, peer };
    audit.onConnection(connection, decision({}));
    audit.onConnection(connection, decision({ decision: 'ALLOW', policy: 'data/allow-api', rule: 0, action: 'ALLOW', reason: 'allowed' }));
    pushed = 'all';
    audit.onConnection(connection, decision({ decision: 'ALLOW', policy: 'data/allow-api', rule: 0, action: 'ALLOW', reason: 'allowed' }));
    await audit.close();
    assert.equal(reported.length, 2, 'the first allow was sampled out, the second kept');
    const [denied, allowed] = reported as [AuthzAuditRecord, AuthzAuditRecord];
    assert.equal(denied.decision, 'DENY');
    assert.equal(denied.request, undefined);
    assert.deepEqual(denied.source, { principal: 'spiffe://cluster.local/ns/app/sa/api', address: '127.0.0.2', port: 4000 });
    assert.deepEqual(denied.destination, { workload: 'db', namespace: 'data', principal: workload.identity, port: 5432 });
    assert.equal(denied.mtls, 'mutual_tls');
    assert.equal(allowed.decision, 'ALLOW');
    assert.equal(audit.stats().sampledOut, 1);
  });

  void it('the control-plane sink retries while the control plane is away, then delivers', async () => {
    let calls = 0;
    const delivered: AuditRecord[] = [];
    const sink = new ControlPlaneAuditSink(async (records) => {
      if (++calls < 3) throw new Error('unavailable');
      delivered.push(...records);
    }, { initialBackoffMs: 5 });
    sink.write(DENY_RECORD);
    await sink.flush();
    assert.equal(calls, 3);
    assert.equal(delivered.length, 1);
    await sink.close();
  });
});
