import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENVOY_DEFAULT_BUCKETS, ProxyMetrics, type RequestRecord } from '../../../src/telemetry/istio-metrics.js';
import { ISTIO_COMMON_LABELS, ISTIO_HTTP_LABELS, ISTIO_HTTP_METRICS, ISTIO_TCP_METRICS } from '../../helpers/istio-standard-metrics.js';
import { familyOf, parseExposition, type Family } from '../../helpers/prom-text.js';


const REVIEWS = { name: 'reviews-v1', namespace: 'bookinfo', labels: { app: 'reviews', version: 'v1' } };

function request(overrides: Partial<RequestRecord> = {}): RequestRecord {
  return {
    reporter: 'destination',
    peer: { name: 'productpage-v1', namespace: 'bookinfo', labels: { app: 'productpage', version: 'v1' } },
    peerPrincipal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage',
    localPrincipal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
    service: { host: 'reviews.bookinfo.svc.cluster.local' },
    protocol: 'http',
    responseCode: 200,
    durationMs: 12,
    requestBytes: 300,
    responseBytes: 4000,
    ...overrides,
  };
}

function labelNames(family: Family, sampleName = family.name): string[] {
  const sample = family.samples.find((s) => s.name === sampleName);
  assert.ok(sample, `${family.name} has a ${sampleName} sample`);
  return Object.keys(sample.labels).filter((l) => l !== 'le').sort();
}

async function scrape(metrics: ProxyMetrics): Promise<Map<string, Family>> {
  const { contentType, body } = await metrics.exposition();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  return parseExposition(body);
}

void describe('proxy metrics: Istio standard metrics', () => {
  void it('HTTP metrics: names, types and exactly Istio’s label set', async () => {
    const metrics = new ProxyMetrics({ workload: REVIEWS });
    metrics.recordRequest(request());
    const families = await scrape(metrics);
    for (const [name, type] of Object.entries(ISTIO_HTTP_METRICS)) {
      const family = familyOf(families, name);
      assert.equal(family.type, type, name);
      const sampleName = type === 'histogram' ? `${name}_bucket` : name;
      assert.deepEqual(labelNames(family, sampleName), [...ISTIO_HTTP_LABELS].sort(), name);
    }
  });

  void it('TCP metrics: counters without response_code and grpc_response_status', async () => {
    const metrics = new ProxyMetrics({ workload: REVIEWS });
    const edge = { reporter: 'destination' as const, peerPrincipal: 'spiffe://cluster.local/ns/db/sa/client', localPrincipal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews' };
    metrics.recordTcpOpen(edge);
    metrics.recordTcpBytes(edge, 100, 40);
    metrics.recordTcpClose(edge, 5, 2);
    const families = await scrape(metrics);
    for (const name of Object.keys(ISTIO_TCP_METRICS)) {
      const family = familyOf(families, name);
      assert.equal(family.type, 'counter', name);
      assert.deepEqual(labelNames(family), [...ISTIO_COMMON_LABELS].sort(), name);
      assert.equal(family.samples[0]?.labels['request_protocol'], 'tcp');
    }
    assert.equal(familyOf(families, 'istio_tcp_sent_bytes_total').samples[0]?.value, 105);
    assert.equal(familyOf(families, 'istio_tcp_received_bytes_total').samples[0]?.value, 42);
    assert.equal(familyOf(families, 'istio_tcp_connections_opened_total').samples[0]?.value, 1);
    assert.equal(familyOf(families, 'istio_tcp_connections_closed_total').samples[0]?.value, 1);
  });

  void it("histograms use Envoy's default buckets and observe the right values", async () => {
    const metrics = new ProxyMetrics({ workload: REVIEWS });
    metrics.recordRequest(request({ durationMs: 7 }));
    metrics.recordRequest(request({ durationMs: 700 }));
    const families = await scrape(metrics);
    const expectedLe = [...ENVOY_DEFAULT_BUCKETS.map(String), '+Inf'];
    assert.deepEqual(expectedLe.slice(0, 5), ['0.5', '1', '5', '10', '25']);
    for (const name of ['istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes']) {
      const buckets = familyOf(families, name).samples.filter((s) => s.name === `${name}_bucket`);
      assert.deepEqual(buckets.map((b) => b.labels['le']), expectedLe, name);
    }
    const duration = familyOf(families, 'istio_request_duration_milliseconds').samples;
    const bucket = (le: string): number | undefined => duration.find((s) => s.name.endsWith('_bucket') && s.labels['le'] === le)?.value;
    assert.equal(bucket('5'), 0);
    assert.equal(bucket('10'), 1);
    assert.equal(bucket('1000'), 2);
    assert.equal(duration.find((s) => s.name.endsWith('_sum'))?.value, 707);
    assert.equal(duration.find((s) => s.name.endsWith('_count'))?.value, 2);
  });

  void it('response_code, grpc_response_status and response_flags values', async () => {
    const metrics = new ProxyMetrics({ workload: REVIEWS });
    metrics.recordRequest(request({ responseCode: 403 }));
    metrics.recordRequest(request({ protocol: 'grpc', responseCode: 200, grpcStatus: 14 }));
    metrics.recordRequest(request({ responseCode: 503, responseFlags: ['UO'] }));
    const samples = familyOf(await scrape(metrics), 'istio_requests_total').samples;
    const denied = samples.find((s) => s.labels['response_code'] === '403');
    assert.equal(denied?.labels['grpc_response_status'], '');
    assert.equal(denied?.labels['request_protocol'], 'http');
    assert.equal(denied?.labels['response_flags'], '-');
    assert.equal(denied?.labels['connection_security_policy'], 'mutual_tls');
    const grpc = samples.find((s) => s.labels['request_protocol'] === 'grpc');
    assert.equal(grpc?.labels['grpc_response_status'], '14');
    assert.equal(samples.find((s) => s.labels['response_code'] === '503')?.labels['response_flags'], 'UO');
  });

  void it('two proxies in one process keep separate registries', async () => {
    const a = new ProxyMetrics({ workload: REVIEWS });
    const b = new ProxyMetrics({ workload: { name: 'ratings-v1', namespace: 'bookinfo' } });
    a.recordRequest(request());
    a.recordRequest(request());
    b.recordRequest(request());
    const countOf = async (m: ProxyMetrics): Promise<number | undefined> => familyOf(await scrape(m), 'istio_requests_total').samples[0]?.value;
    assert.equal(await countOf(a), 2);
    assert.equal(await countOf(b), 1);
  });
});

void describe('proxy metrics: Trellis metrics', () => {
  void it('authorization, JWT, circuit breaker and rate limit counters', async () => {
    const metrics = new ProxyMetrics({ workload: REVIEWS });
    metrics.recordAuthzDecision('deny', 'DENY', 'bookinfo/deny-admin');
    metrics.recordAuthzDecision('deny', 'none', null);
    metrics.recordAuthzDecision('allow', 'ALLOW', 'bookinfo/allow-productpage');
    metrics.recordAuthzDryRun('would deny', 'bookinfo/tighten');
    metrics.recordJwtFailure('expired');
    metrics.recordJwtFailure('expired');
    metrics.recordCircuitBreakerRejection('outbound|9080||ratings.bookinfo.svc.cluster.local', 'max-pending-requests');
    metrics.recordRateLimitRejection('bookinfo/per-caller', 'caller');
    const families = await scrape(metrics);
    const authz = familyOf(families, 'trellis_authz_decisions_total');
    assert.equal(authz.type, 'counter');
    assert.deepEqual(
      authz.samples.map((s) => s.labels).sort((x, y) => String(x['policy']).localeCompare(String(y['policy']))),
      [
        { decision: 'allow', action: 'ALLOW', policy: 'bookinfo/allow-productpage' },
        { decision: 'deny', action: 'DENY', policy: 'bookinfo/deny-admin' },
        { decision: 'deny', action: 'none', policy: 'none' },
      ],
    );
    assert.deepEqual(familyOf(families, 'trellis_authz_dry_run_matches_total').samples[0]?.labels, { effect: 'deny', policy: 'bookinfo/tighten' });
    assert.deepEqual(familyOf(families, 'trellis_jwt_failures_total').samples[0], { name: 'trellis_jwt_failures_total', labels: { reason: 'expired' }, value: 2 });
    assert.equal(familyOf(families, 'trellis_circuit_breaker_rejections_total').samples[0]?.labels['reason'], 'max-pending-requests');
    assert.deepEqual(familyOf(families, 'trellis_rate_limit_rejections_total').samples[0]?.labels, { source: 'bookinfo/per-caller', per: 'caller' });
  });

  void it('certificate expiry, config version, push age (computed at scrape time) and rejections', async () => {
    let now = 1_700_000_000_000;
    const metrics = new ProxyMetrics({ workload: REVIEWS, now: () => now });
    let families = await scrape(metrics);
    assert.equal(familyOf(families, 'trellis_config_push_age_seconds').samples.length, 0, 'no age before the first configuration');
    metrics.setCertificateExpiry('leaf', new Date('2030-01-01T00:00:00Z'));
    metrics.recordConfigApplied('v1');
    now += 1_000;
    metrics.recordConfigApplied('v2');
    metrics.recordConfigRejected();
    now += 42_500;
    families = await scrape(metrics);
    assert.deepEqual(familyOf(families, 'trellis_certificate_expiry_timestamp_seconds').samples[0], {
      name: 'trellis_certificate_expiry_timestamp_seconds',
      labels: { kind: 'leaf' },
      value: Date.parse('2030-01-01T00:00:00Z') / 1000,
    });
    assert.deepEqual(familyOf(families, 'trellis_config_info').samples, [{ name: 'trellis_config_info', labels: { version: 'v2' }, value: 1 }]);
    assert.deepEqual(familyOf(families, 'trellis_config_push_age_seconds').samples, [{ name: 'trellis_config_push_age_seconds', labels: { version: 'v2' }, value: 42.5 }]);
    assert.equal(familyOf(families, 'trellis_config_last_update_timestamp_seconds').samples[0]?.value, 1_700_000_001);
    assert.equal(familyOf(families, 'trellis_config_rejected_total').samples[0]?.value, 1);
    assert.equal(familyOf(families, 'trellis_config_push_age_seconds').type, 'gauge');
  });
});
