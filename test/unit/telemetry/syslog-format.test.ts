import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSyslog, octetCountingFrame, type AuditRecord } from '../../../src/telemetry/audit/index.js';

const DENY: AuditRecord = {
  kind: 'authz',
  time: '2025-01-02T03:04:05.678Z',
  decision: 'DENY',
  policy: 'bookinfo/deny "admin"]',
  rule: 2,
  action: 'DENY',
  reason: 'matched',
  dryRun: [],
  source: { principal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage', address: '10.0.0.7' },
  destination: { workload: 'reviews-v1', namespace: 'bookinfo' },
  request: { method: 'GET', path: '/a\\b' },
  mtls: 'mutual_tls',
};

void describe('RFC 5424 formatting', () => {
  void it('header: PRI from facility and severity, version 1, timestamp, host, app, procid, msgid', () => {
    const line = formatSyslog(DENY, { hostname: 'node-1', appName: 'trellis', procId: '42' });
    // authpriv (10) * 8 + warning (4) = 84
    assert.match(line, /^<84>1 2025-01-02T03:04:05\.678Z node-1 trellis 42 authz \[/);
    const allow = formatSyslog({ ...DENY, decision: 'ALLOW' }, { hostname: 'h', facility: 'local0' });
    assert.match(allow, /^<134>1 /, 'local0 (16) * 8 + informational (6)');
  });

  void it('structured data escapes ", \\ and ] in values; MSG is the JSON record', () => {
    const line = formatSyslog(DENY, { hostname: 'h', procId: '1' });
    assert.ok(line.includes('policy="bookinfo/deny \\"admin\\"\\]"'), line);
    assert.ok(line.includes('path="/a\\\\b"'), line);
    assert.ok(line.includes('[trellis@32473 decision="DENY"'), line);
    const json = line.slice(line.indexOf('] {') + 2);
    assert.equal((JSON.parse(json) as { policy: string }).policy, 'bookinfo/deny "admin"]');
  });

  void it('header fields drop spaces and control characters, and empty ones become -', () => {
    const line = formatSyslog(DENY, { hostname: 'my host\n', appName: '', procId: '7' });
    assert.match(line, /^<84>1 \S+ myhost - 7 authz /);
  });

  void it('certificate and config events get their msgid and severity', () => {
    assert.match(formatSyslog({ kind: 'certificate', time: 't', event: 'refused', reason: 'x' }, { hostname: 'h' }), /^<84>1 t h trellis \d+ certificate \[trellis@32473 event="refused"\] /);
    assert.match(formatSyslog({ kind: 'config', time: 't', event: 'changed', version: '9' }, { hostname: 'h' }), /^<85>1 t h trellis \d+ config /);
  });

  void it('octet counting counts bytes, not characters', () => {
    assert.equal(octetCountingFrame('é'), '2 é');
  });
});
