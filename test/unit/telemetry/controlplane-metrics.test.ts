import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CERT_TTL_BUCKETS, ControlPlaneMetrics, CONVERGENCE_BUCKETS, PUSH_TIME_BUCKETS } from '../../../src/telemetry/controlplane-metrics.js';
import { familyOf, parseExposition } from '../../helpers/prom-text.js';

void describe('control-plane metrics', () => {
  void it("istiod's names, types and labels, and Trellis's own", async () => {
    const metrics = new ControlPlaneMetrics();
    metrics.proxyConnected('0.1.0');
    metrics.proxyConnected('0.1.0');
    metrics.proxyConnected();
    metrics.proxyDisconnected('0.1.0');
    metrics.recordPush('snapshot', 0.05);
    metrics.recordPush('snapshot', 2);
    metrics.recordPushSendError('snapshot');
    metrics.recordConvergence(0.3);
    metrics.recordNack('snapshot');
    metrics.recordValidationPassed({ group: 'security.istio.io', version: 'v1', resource: 'authorizationpolicies' });
    metrics.recordValidationFailed({ group: 'security.istio.io', version: 'v1', resource: 'authorizationpolicies' }, 'TRELLIS_SCHEMA');
    metrics.recordCsr();
    metrics.recordCertificateIssued(3600);
    metrics.recordSignError('identity_not_proven');
    metrics.recordAuthenticationFailure();
    metrics.setRootExpiry(new Date('2035-06-01T00:00:00Z'));
    metrics.recordRevocation('added', 1);
    metrics.setConfigVersion('7');
    metrics.setConfigVersion('8');

    const families = parseExposition((await metrics.exposition()).body);
    const xds = familyOf(families, 'pilot_xds');
    assert.equal(xds.type, 'gauge');
    assert.deepEqual(
      xds.samples.map((s) => [s.labels['version'], s.value]),
      [
        ['0.1.0', 1],
        ['unknown', 1],
      ],
    );
    const pushes = familyOf(families, 'pilot_xds_pushes');
    assert.equal(pushes.type, 'counter');
    assert.deepEqual(Object.fromEntries(pushes.samples.map((s) => [s.labels['type'], s.value])), { snapshot: 2, snapshot_senderr: 1 });
    const pushTime = familyOf(families, 'pilot_xds_push_time');
    assert.equal(pushTime.type, 'histogram');
    assert.deepEqual(
      pushTime.samples.filter((s) => s.name.endsWith('_bucket')).map((s) => s.labels['le']),
      [...PUSH_TIME_BUCKETS.map(String), '+Inf'],
    );
    assert.deepEqual(
      familyOf(families, 'pilot_proxy_convergence_time').samples.filter((s) => s.name.endsWith('_bucket')).map((s) => s.labels['le']),
      [...CONVERGENCE_BUCKETS.map(String), '+Inf'],
    );
    assert.deepEqual(familyOf(families, 'pilot_total_xds_rejects').samples[0]?.labels, { type: 'snapshot' });
    assert.deepEqual(familyOf(families, 'galley_validation_failed').samples[0]?.labels, {
      group: 'security.istio.io',
      version: 'v1',
      resource: 'authorizationpolicies',
      reason: 'TRELLIS_SCHEMA',
    });
    assert.equal(familyOf(families, 'galley_validation_passed').samples[0]?.value, 1);
    assert.equal(familyOf(families, 'citadel_server_csr_count').samples[0]?.value, 1);
    assert.equal(familyOf(families, 'citadel_server_success_cert_issuance_count').samples[0]?.value, 1);
    assert.deepEqual(familyOf(families, 'citadel_server_csr_sign_err_count').samples[0]?.labels, { error: 'identity_not_proven' });
    assert.equal(familyOf(families, 'citadel_server_authentication_failure_count').samples[0]?.value, 1);
    assert.equal(familyOf(families, 'citadel_server_root_cert_expiry_timestamp').samples[0]?.value, Date.parse('2035-06-01T00:00:00Z') / 1000);
    const ttl = familyOf(families, 'trellis_ca_issued_certificate_ttl_seconds');
    assert.deepEqual(
      ttl.samples.filter((s) => s.name.endsWith('_bucket')).map((s) => s.labels['le']),
      [...CERT_TTL_BUCKETS.map(String), '+Inf'],
    );
    assert.equal(ttl.samples.find((s) => s.name.endsWith('_bucket') && s.labels['le'] === '3600')?.value, 1);
    assert.equal(ttl.samples.find((s) => s.name.endsWith('_bucket') && s.labels['le'] === '1800')?.value, 0);
    assert.deepEqual(familyOf(families, 'trellis_ca_revocations_total').samples[0]?.labels, { action: 'added' });
    assert.equal(familyOf(families, 'trellis_ca_revoked_certificates').samples[0]?.value, 1);
    assert.deepEqual(familyOf(families, 'trellis_config_version_info').samples.map((s) => s.labels['version']), ['8']);
  });
});
