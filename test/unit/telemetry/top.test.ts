import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkloadMetadata } from '../../../src/telemetry/istio-labels.js';
import { ProxyMetrics, type RequestRecord, type TcpRecord } from '../../../src/telemetry/istio-metrics.js';
import { counterIncrease, computeTop, formatTopText, histogramQuantile, parsePrometheusText, type Scrape } from '../../../src/telemetry/top.js';

const CLIENT = { name: 'client', namespace: 'shop', labels: { app: 'client', version: 'v1' } };
const SERVER = { name: 'server', namespace: 'shop', labels: { app: 'server', version: 'v2' } };
const RATINGS = { name: 'ratings', namespace: 'data', labels: { app: 'ratings' } };
const CLIENT_ID = 'spiffe://cluster.local/ns/shop/sa/client';
const SERVER_ID = 'spiffe://cluster.local/ns/shop/sa/server';

const close = (actual: number | null, expected: number): void => {
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-9, `${actual} ≈ ${expected}`);
};

/** What the server's proxy records for one request from the client (mTLS, destination side). */
function inbound(responseCode: number, durationMs: number): RequestRecord {
  return {
    reporter: 'destination',
    peer: CLIENT,
    peerPrincipal: CLIENT_ID,
    localPrincipal: SERVER_ID,
    service: { host: 'server.shop.svc.cluster.local' },
    protocol: 'http',
    responseCode,
    durationMs,
    requestBytes: 100,
    responseBytes: 200,
  };
}

/** The same request as the client's proxy records it (source side). */
function outbound(responseCode: number, durationMs: number, peer: WorkloadMetadata = SERVER, host = 'server.shop.svc.cluster.local'): RequestRecord {
  return { ...inbound(responseCode, durationMs), reporter: 'source', peer, peerPrincipal: `spiffe://cluster.local/ns/${peer.namespace}/sa/${peer.name}`, localPrincipal: CLIENT_ID, service: { host } };
}

async function scrape(proxy: string, metrics: ProxyMetrics, at: number): Promise<Scrape> {
  return { proxy, at, samples: parsePrometheusText((await metrics.exposition()).body) };
}

void describe('trellis top: Prometheus text parsing', () => {
  void it('reads names, escaped labels, special values and timestamps; skips comments and junk', () => {
    const text = [
      '# HELP x_total Things.',
      '# TYPE x_total counter',
      'x_total{a="1",b="say \\"hi\\"\\n",c="back\\\\slash"} 3',
      'plain 4.5 1700000000000',
      'h_bucket{le="+Inf",} 7',
      'empty{} 1',
      'nan_value NaN',
      'not a sample line',
      'bad{a=1} 2',
      '',
    ].join('\n');
    assert.deepEqual(parsePrometheusText(text), [
      { name: 'x_total', labels: { a: '1', b: 'say "hi"\n', c: 'back\\slash' }, value: 3 },
      { name: 'plain', labels: {}, value: 4.5 },
      { name: 'h_bucket', labels: { le: '+Inf' }, value: 7 },
      { name: 'empty', labels: {}, value: 1 },
    ]);
  });
});

void describe('trellis top: counters and quantiles', () => {
  void it('a counter increase follows the Prometheus reset rule', () => {
    assert.equal(counterIncrease(10, 15), 5);
    assert.equal(counterIncrease(10, 10), 0);
    assert.equal(counterIncrease(10, 3), 3, 'reset: the new value is the increase');
    assert.equal(counterIncrease(undefined, 4), 4);
  });

  void it('histogramQuantile interpolates inside the bucket like Prometheus', () => {
    const buckets = [
      { le: 1, count: 0 },
      { le: 5, count: 2 },
      { le: 10, count: 6 },
      { le: 25, count: 8 },
      { le: Infinity, count: 10 },
    ];
    close(histogramQuantile(0.5, buckets), 8.75); // rank 5 in (5,10]: 5 + 5·(5−2)/4
    close(histogramQuantile(0.1, buckets), 3); // rank 1 in (1,5]: 1 + 4·1/2
    close(histogramQuantile(0.8, buckets), 25); // rank 8 = the top of (10,25]
    assert.equal(histogramQuantile(0.99, buckets), 25, 'a rank in +Inf gives the highest finite bound');
    close(histogramQuantile(0.5, [{ le: 1, count: 4 }, { le: Infinity, count: 4 }]), 0.5); // the first bucket starts at 0
    assert.equal(histogramQuantile(0.5, [{ le: 1, count: 0 }, { le: Infinity, count: 0 }]), null, 'no observations');
    assert.equal(histogramQuantile(0.5, [{ le: 1, count: 3 }]), null, 'no +Inf bucket');
    // Unsorted input, and a cumulative count that dips (separate resets) is made monotonic.
    close(histogramQuantile(0.5, [{ le: Infinity, count: 4 }, { le: 10, count: 4 }, { le: 5, count: 5 }]), 2.5);
  });
});

void describe('trellis top: edges from two rounds of scrapes', () => {
  void it('counts each edge once, from the destination, with rate, success, denials, latency and mTLS', async () => {
    const client = new ProxyMetrics({ workload: CLIENT });
    const server = new ProxyMetrics({ workload: SERVER });
    // Before the window: traffic that must not count.
    for (const m of [200, 200]) {
      client.recordRequest(outbound(m, 3));
      server.recordRequest(inbound(m, 3));
    }
    const first = [await scrape('client', client, 1_000), await scrape('server', server, 1_000)];
    // The window (2 s): 6 allowed at 7 ms, 2 denied at 0.3 ms, 1 error at 700 ms; a call to ratings whose proxy is not scraped.
    const window: Array<[number, number]> = [...Array<[number, number]>(6).fill([200, 7]), [403, 0.3], [403, 0.3], [503, 700]];
    for (const [code, ms] of window) {
      client.recordRequest(outbound(code, ms));
      server.recordRequest(inbound(code, ms));
    }
    for (let i = 0; i < 4; i++) client.recordRequest(outbound(i === 0 ? 0 : 200, 30, RATINGS, 'ratings.data.svc.cluster.local'));
    const second = [await scrape('client', client, 3_000), await scrape('server', server, 3_000)];

    const top = computeTop(first, second);
    assert.equal(top.intervalSeconds, 2);
    assert.equal(top.proxies, 2);
    assert.equal(top.http.length, 2);
    const [busiest, ratings] = top.http;
    assert.deepEqual({ ...busiest, p50Ms: null, p99Ms: null, successRate: null }, {
      source: 'shop/client',
      destination: 'shop/server',
      service: 'server.shop.svc.cluster.local',
      reporter: 'destination',
      requests: 9,
      rps: 4.5,
      successRate: null,
      denied: 2,
      errors: 1,
      p50Ms: null,
      p99Ms: null,
      mtls: 'mutual_tls',
    });
    close(busiest?.successRate ?? null, 8 / 9);
    // Bucket increases: ≤0.5: 2, ≤10: 6, ≤1000: 1. p50: rank 4.5 in (5,10] → 5 + 5·2.5/6; p99: rank 8.91 in (500,1000].
    close(busiest?.p50Ms ?? null, 5 + (5 * 2.5) / 6);
    close(busiest?.p99Ms ?? null, 500 + 500 * (8.91 - 8));
    assert.deepEqual({ ...ratings, p50Ms: null, p99Ms: null }, {
      source: 'shop/client',
      destination: 'data/ratings',
      service: 'ratings.data.svc.cluster.local',
      reporter: 'source',
      requests: 4,
      rps: 2,
      successRate: 0.75,
      denied: 0,
      errors: 1,
      p50Ms: null,
      p99Ms: null,
      mtls: 'unknown',
    });
    close(ratings?.p50Ms ?? null, 25 + 25 * (2 / 4));

    assert.deepEqual(computeTop(first, second, { namespace: 'data' }).http.map((e) => e.destination), ['data/ratings']);
    assert.deepEqual(computeTop(first, second, { namespace: 'nowhere' }).http, []);

    const text = formatTopText(top);
    const lines = text.split('\n');
    assert.match(lines[0] ?? '', /^SOURCE\s+DESTINATION\s+SERVICE\s+RPS\s+SUCCESS\s+DENIED\s+P50\s+P99\s+MTLS$/);
    assert.match(lines[1] ?? '', /^shop\/client\s+shop\/server\s+server\.shop\.svc\.cluster\.local\s+4\.50\s+88\.9%\s+2\s+7\.08ms\s+955ms\s+mutual_tls$/);
    assert.match(lines[2] ?? '', /^shop\/client\s+data\/ratings\s+ratings\.data\.svc\.cluster\.local\s+2\.00\s+75\.0%\s+0\s+37\.5ms\s+49\.8ms\s+unknown$/);
  });

  void it('an edge without requests in the window has rate 0 and no latency; a proxy without a baseline is left out', async () => {
    const server = new ProxyMetrics({ workload: SERVER });
    server.recordRequest(inbound(200, 3));
    const before = [await scrape('server', server, 0)];
    const after = [await scrape('server', server, 500), { proxy: 'newcomer', at: 500, samples: parsePrometheusText('istio_requests_total{reporter="destination",source_workload="x",source_workload_namespace="y",destination_workload="z",destination_workload_namespace="y",response_code="200"} 50\n') }];
    const top = computeTop(before, after);
    assert.equal(top.proxies, 1);
    assert.equal(top.intervalSeconds, 0.5);
    assert.deepEqual(top.http.map((e) => [e.source, e.requests, e.rps, e.successRate, e.p50Ms, e.p99Ms, e.mtls]), [['shop/client', 0, 0, null, null, null, 'mutual_tls']]);
  });

  void it('a proxy restart (counters reset) counts the new values, not a negative rate', () => {
    const line = (value: number): string => `istio_requests_total{reporter="destination",source_workload="a",source_workload_namespace="ns",destination_workload="b",destination_workload_namespace="ns",destination_service="b.ns",response_code="200",connection_security_policy="mutual_tls"} ${value}\n`;
    const top = computeTop([{ proxy: 'b', at: 0, samples: parsePrometheusText(line(100)) }], [{ proxy: 'b', at: 1_000, samples: parsePrometheusText(line(3)) }]);
    assert.equal(top.http[0]?.requests, 3);
    assert.equal(top.http[0]?.rps, 3);
  });

  void it('TCP edges: connections and bytes per second, from the destination (its caller named by principal)', async () => {
    const client = new ProxyMetrics({ workload: CLIENT });
    const echo = new ProxyMetrics({ workload: SERVER });
    const first = [await scrape('client', client, 0), await scrape('echo', echo, 0)];
    const out: TcpRecord = { reporter: 'source', peer: SERVER, peerPrincipal: SERVER_ID, localPrincipal: CLIENT_ID, service: { host: 'echo.shop.svc.cluster.local' } };
    // The destination of a TCP connection knows the caller only by its certificate (no peer metadata).
    // and no host name (the data plane leaves `service` out): the edge is the pair's, counted once.
    const inn: TcpRecord = { reporter: 'destination', peerPrincipal: CLIENT_ID, localPrincipal: SERVER_ID };
    for (const record of [out, inn]) {
      const metrics = record.reporter === 'source' ? client : echo;
      for (let i = 0; i < 3; i++) metrics.recordTcpOpen(record);
      metrics.recordTcpClose(record, 4_000, 1_000);
      metrics.recordTcpClose(record, 2_000, 1_000);
    }
    const top = computeTop(first, [await scrape('client', client, 4_000), await scrape('echo', echo, 4_000)]);
    assert.deepEqual(top.http, []);
    assert.deepEqual(top.tcp, [
      {
        source: 'shop/client',
        destination: 'shop/server',
        service: 'echo.shop.svc.cluster.local',
        reporter: 'destination',
        connectionsOpened: 3,
        connectionsClosed: 2,
        cps: 0.75,
        sentBytesPerSecond: 1_500,
        receivedBytesPerSecond: 500,
        mtls: 'mutual_tls',
      },
    ]);
    assert.match(formatTopText(top), /^SOURCE\s+DESTINATION\s+SERVICE\s+CONN\/S\s+OPENED\s+CLOSED\s+SENT\s+RECEIVED\s+MTLS\nshop\/client\s+shop\/server\s+echo\.shop\.svc\.cluster\.local\s+0\.75\s+3\s+2\s+1\.5KiB\/s\s+500B\/s\s+mutual_tls$/);
  });

  void it('no traffic: says so', () => {
    assert.equal(formatTopText(computeTop([], [])), 'No traffic seen yet.');
  });
});
