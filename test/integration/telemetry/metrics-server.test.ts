import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ControlPlaneMetrics } from '../../../src/telemetry/controlplane-metrics.js';
import { ProxyMetrics } from '../../../src/telemetry/istio-metrics.js';
import { MetricsServer } from '../../../src/telemetry/metrics-server.js';
import { familyOf, parseExposition } from '../../helpers/prom-text.js';

function get(url: string, method = 'GET'): Promise<{ status: number; contentType: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

void describe('metrics server', () => {
  const proxy = new ProxyMetrics({ workload: { name: 'reviews-v1', namespace: 'bookinfo', labels: { app: 'reviews' } } });
  const controlPlane = new ControlPlaneMetrics();
  let server: MetricsServer;

  before(async () => {
    server = await MetricsServer.start({ host: '127.0.0.1', port: 0, registries: [proxy.registry, controlPlane.registry] });
  });
  after(async () => {
    await server.close();
  });

  void it('listens on the port it was given (0: a free one)', () => {
    assert.ok(server.port > 0);
    assert.equal(server.url(), `http://127.0.0.1:${server.port}/metrics`);
  });

  void it('serves every registry on /metrics and on Istio’s /stats/prometheus', async () => {
    proxy.recordRequest({
      reporter: 'destination',
      protocol: 'http',
      responseCode: 403,
      durationMs: 3,
      requestBytes: 10,
      responseBytes: 20,
      peerPrincipal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage',
      localPrincipal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
    });
    controlPlane.proxyConnected('0.1.0');
    for (const path of ['/metrics', '/stats/prometheus']) {
      const res = await get(server.url(path));
      assert.equal(res.status, 200, path);
      assert.match(res.contentType ?? '', /^text\/plain; version=0\.0\.4/);
      const families = parseExposition(res.body);
      const requests = familyOf(families, 'istio_requests_total').samples;
      assert.equal(requests.length, 1);
      assert.equal(requests[0]?.labels['response_code'], '403');
      assert.equal(requests[0]?.labels['connection_security_policy'], 'mutual_tls');
      assert.equal(familyOf(families, 'pilot_xds').samples[0]?.value, 1);
    }
  });

  void it('HEAD answers without a body; other paths 404; other methods 405', async () => {
    const head = await get(server.url(), 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal((await get(server.url('/'))).status, 404);
    assert.equal((await get(server.url('/metrics/x'))).status, 404);
    assert.equal((await get(server.url(), 'POST')).status, 405);
  });

  void it('a query string does not change the path', async () => {
    assert.equal((await get(server.url('/metrics?name[]=istio_requests_total'))).status, 200);
  });

  void it('refuses to serve two registries with the same metric name', async () => {
    const a = new ProxyMetrics({ workload: {} });
    const b = new ProxyMetrics({ workload: {} });
    await assert.rejects(MetricsServer.start({ host: '127.0.0.1', port: 0, registries: [a.registry, b.registry] }), /registered in two registries/);
  });

  void it('a failing collector gives a 500 for that scrape and the server keeps serving', async () => {
    const registry = new Registry();
    const { Gauge } = await import('prom-client');
    let fail = true;
    new Gauge({
      name: 'flaky',
      help: 'fails once',
      registers: [registry],
      collect() {
        if (fail) {
          fail = false;
          throw new Error('collector broke');
        }
        this.set(1);
      },
    });
    const flaky = await MetricsServer.start({ host: '127.0.0.1', port: 0, registries: [registry] });
    try {
      const first = await get(flaky.url());
      assert.equal(first.status, 500);
      assert.match(first.body, /collector broke/);
      assert.equal((await get(flaky.url())).status, 200);
    } finally {
      await flaky.close();
    }
  });

  void it('a port in use is an error, not a crash', async () => {
    await assert.rejects(MetricsServer.start({ host: '127.0.0.1', port: server.port, registries: [] }), /EADDRINUSE/);
  });
});
