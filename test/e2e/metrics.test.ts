/**
 * Observability as an operator sees it: a mesh of processes (control plane, a client, an HTTP
 * server and a TCP echo server with their sidecars), scraped by a real Prometheus server
 * (Debian's `prometheus`, started here with a generated config), queried through its HTTP API.
 * Also: the label sets of a real proxy's scrape against Istio's documented list, the peer
 * metadata header (the destination knows the calling workload, the app never sees the header,
 * an app cannot forge it), and the JSON access log.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ISTIO_COMMON_LABELS, ISTIO_HTTP_LABELS, ISTIO_HTTP_METRICS, ISTIO_TCP_METRICS } from '../helpers/istio-standard-metrics.js';
import { freePorts, httpGet, httpRequest, MeshProcesses, type StartedWorkload, waitFor } from '../helpers/mesh-process.js';
import { clientServerEchoMesh } from '../helpers/mesh-yaml.js';
import { PrometheusServer, type Sample } from '../helpers/prometheus.js';
import { familyOf, parseExposition } from '../helpers/prom-text.js';

const ALLOWED = 7;
const DENIED = 3;
/** Denied after Prometheus saw the first ones, so that a rate() over them is positive. */
const LATE_DENIED = 2;
const TCP_PAYLOAD = 'hello, echo\n';


const sum = (samples: Sample[]): number => samples.reduce((total, sample) => total + sample.value, 0);
const equals = (expected: number) => (samples: Sample[]): boolean => samples.length > 0 && sum(samples) === expected;

describe('metrics and access logs, scraped by a real Prometheus', () => {
  let mesh: MeshProcesses;
  let client: StartedWorkload;
  let server: StartedWorkload;
  let echo: StartedWorkload;
  let prometheus: PrometheusServer | undefined;
  let accessLog: string;
  const started = Date.now();

  before(async () => {
    const [web, echoPort] = (await freePorts(2)) as [number, number];
    mesh = await MeshProcesses.start(clientServerEchoMesh(web, echoPort));
    accessLog = join(mesh.dir, 'server-access.log');
    [server, echo] = await Promise.all([
      mesh.startWorkload('default/server', { app: 'http-echo.mjs', extraArgs: ['--access-log', accessLog] }),
      mesh.startWorkload('default/echo', { app: 'tcp-echo.mjs' }),
    ]);
    client = await mesh.startWorkload('default/client', { outboundPort: true, upstreams: ['echo.default.svc.cluster.local:9000=0'] });
    await mesh.waitSynced(3);
    const proxies = [client, server, echo].map((workload) => {
      assert.ok(typeof workload.ready.metrics === 'number', `${workload.ref} serves metrics`);
      return `127.0.0.1:${workload.ready.metrics}`;
    });
    process.stderr.write(`# mesh up: ${Date.now() - started} ms\n`);
    const cp = new URL(mesh.metrics);
    prometheus = await PrometheusServer.start([
      { name: 'trellis-proxies', targets: proxies, path: '/stats/prometheus' },
      { name: 'trellis-controlplane', targets: [cp.host], path: cp.pathname },
    ]);
    process.stderr.write(`# prometheus up: ${Date.now() - started} ms\n`);
  });

  after(async () => {
    await prometheus?.stop();
    process.stderr.write(`# prometheus stopped: ${Date.now() - started} ms\n`);
    await mesh?.stop();
    process.stderr.write(`# metrics e2e: ${Date.now() - started} ms\n`);
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    httpRequest({ url: `http://server.default.svc.cluster.local${path}`, proxyPort: client.ready.listening.outbound as number, headers });

  it('sends allowed and denied requests and a TCP stream through the mesh', async () => {
    // One allowed request carries a forged peer metadata header from the application.
    const forged = Buffer.from(JSON.stringify({ n: 'evil', ns: 'default', l: { app: 'evil' } })).toString('base64url');
    const first = await get('/ok/0', { 'x-trellis-peer-metadata': forged });
    assert.equal(first.status, 200, first.body);
    const seen = JSON.parse(first.body) as { rawHeaders: string[] };
    assert.ok(!seen.rawHeaders.some((name) => name.toLowerCase() === 'x-trellis-peer-metadata'), 'the app never sees the peer metadata header');
    for (let i = 1; i < ALLOWED; i++) assert.equal((await get(`/ok/${i}`)).status, 200);
    for (let i = 0; i < DENIED; i++) assert.equal((await get(`/denied/${i}`)).status, 403);

    const port = client.ready.listening.upstreams['echo.default.svc.cluster.local:9000'] as number;
    const socket = net.connect({ host: '127.0.0.1', port });
    let echoed = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      echoed += chunk;
      if (echoed.length >= TCP_PAYLOAD.length) socket.end();
    });
    socket.write(TCP_PAYLOAD);
    await new Promise<void>((resolve, reject) => {
      socket.once('close', () => resolve());
      socket.once('error', reject);
    });
    assert.equal(echoed, TCP_PAYLOAD);
  });

  it('a real proxy scrape has exactly Istio’s metric names, types and label sets', async () => {
    const reply = await httpGet(`http://127.0.0.1:${server.ready.metrics}/stats/prometheus`);
    assert.equal(reply.status, 200);
    // Kept with TRELLIS_TEST_KEEP=1, for a look at a real scrape.
    writeFileSync(join(mesh.dir, 'server-scrape.txt'), reply.body);
    const families = parseExposition(reply.body);
    for (const [name, type] of Object.entries(ISTIO_HTTP_METRICS)) {
      const family = familyOf(families, name);
      assert.equal(family.type, type, name);
      const sample = family.samples.find((s) => s.name === (type === 'histogram' ? `${name}_bucket` : name));
      assert.ok(sample, `${name} has samples`);
      assert.deepEqual(Object.keys(sample.labels).filter((l) => l !== 'le').sort(), [...ISTIO_HTTP_LABELS].sort(), name);
    }
    let tcp: ReturnType<typeof parseExposition> | undefined;
    await waitFor(async () => {
      tcp = parseExposition((await httpGet(`http://127.0.0.1:${echo.ready.metrics}/metrics`)).body);
      return (tcp.get('istio_tcp_connections_closed_total')?.samples.length ?? 0) > 0;
    }, 10_000, 'the echo proxy to report the closed TCP connection');
    for (const [name, type] of Object.entries(ISTIO_TCP_METRICS)) {
      const family = familyOf(tcp as ReturnType<typeof parseExposition>, name);
      assert.equal(family.type, type, name);
      assert.deepEqual(Object.keys(family.samples[0]?.labels ?? {}).sort(), [...ISTIO_COMMON_LABELS].sort(), name);
    }
  });

  it('Prometheus sees every allowed request at the destination, from the client workload, over mTLS', async () => {
    const p = prometheus as PrometheusServer;
    const query = 'sum(istio_requests_total{reporter="destination",source_workload="client",destination_workload="server",connection_security_policy="mutual_tls",response_code="200"})';
    await p.until(query, equals(ALLOWED)).catch(async (err: unknown) => {
      throw new Error(`${(err as Error).message}\ntargets: ${await p.targets()}`);
    });
    // Every label on the destination side, for one series.
    const [series] = await p.query('istio_requests_total{reporter="destination",response_code="200"}');
    assert.deepEqual(
      {
        source_workload: series?.metric['source_workload'],
        source_workload_namespace: series?.metric['source_workload_namespace'],
        source_principal: series?.metric['source_principal'],
        source_app: series?.metric['source_app'],
        source_version: series?.metric['source_version'],
        source_canonical_service: series?.metric['source_canonical_service'],
        destination_workload: series?.metric['destination_workload'],
        destination_principal: series?.metric['destination_principal'],
        destination_app: series?.metric['destination_app'],
        destination_version: series?.metric['destination_version'],
        destination_service: series?.metric['destination_service'],
        destination_service_name: series?.metric['destination_service_name'],
        request_protocol: series?.metric['request_protocol'],
        response_flags: series?.metric['response_flags'],
      },
      {
        source_workload: 'client',
        source_workload_namespace: 'default',
        source_principal: 'spiffe://cluster.local/ns/default/sa/client',
        source_app: 'client',
        source_version: 'v1',
        source_canonical_service: 'client',
        destination_workload: 'server',
        destination_principal: 'spiffe://cluster.local/ns/default/sa/server',
        destination_app: 'server',
        destination_version: 'v2',
        destination_service: 'server.default.svc.cluster.local',
        destination_service_name: 'server',
        request_protocol: 'http',
        response_flags: '-',
      },
    );
    // The forged header changed nothing: no series names the workload "evil".
    assert.deepEqual(await p.query('istio_requests_total{source_workload="evil"}'), []);
  });

  it('Prometheus sees the same requests from the source side, and the denials', async () => {
    const p = prometheus as PrometheusServer;
    await p.until('sum(istio_requests_total{reporter="source",source_workload="client",destination_workload="server",destination_service="server.default.svc.cluster.local",response_code="200"})', equals(ALLOWED));
    await p.until('sum(istio_requests_total{reporter="destination",response_code="403",response_flags="RBAC",source_workload="client"})', equals(DENIED));
    await p.until('sum(istio_requests_total{reporter="source",response_code="403"})', equals(DENIED));
    // A rate needs an increase between two scrapes of a series it already knew.
    for (let i = 0; i < LATE_DENIED; i++) assert.equal((await get(`/denied/late-${i}`)).status, 403);
    await p.until('sum(istio_requests_total{reporter="destination",response_code="403"})', equals(DENIED + LATE_DENIED));
    const rate = await p.until('sum(rate(istio_requests_total{response_code="403"}[1m]))', (samples) => sum(samples) > 0);
    assert.ok(sum(rate) > 0);
    await p.until('sum(trellis_authz_decisions_total{decision="deny",policy="none"})', equals(DENIED + LATE_DENIED));
    await p.until('sum(trellis_authz_decisions_total{decision="allow",action="ALLOW",policy="default/server-allow"})', equals(ALLOWED));
    await p.until('sum(istio_request_duration_milliseconds_count{reporter="destination"})', equals(ALLOWED + DENIED + LATE_DENIED));
    const p50 = await p.until('histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="source"}[1m])))', (samples) => samples.length > 0);
    process.stderr.write(`# p50 outbound request duration (ms, bucket estimate): ${p50[0]?.value}\n`);
  });

  it('Prometheus sees the TCP connection from both sides, with its bytes', async () => {
    const p = prometheus as PrometheusServer;
    const bytes = Buffer.byteLength(TCP_PAYLOAD);
    await p.until('sum(istio_tcp_connections_opened_total{reporter="source",source_workload="client",destination_workload="echo",destination_service="echo.default.svc.cluster.local"})', equals(1));
    await p.until('sum(istio_tcp_connections_closed_total{reporter="source",destination_workload="echo"})', equals(1));
    await p.until('sum(istio_tcp_sent_bytes_total{reporter="source",destination_workload="echo"})', equals(bytes));
    await p.until('sum(istio_tcp_received_bytes_total{reporter="source",destination_workload="echo"})', equals(bytes));
    await p.until('sum(istio_tcp_received_bytes_total{reporter="destination",destination_workload="echo",connection_security_policy="mutual_tls",source_principal="spiffe://cluster.local/ns/default/sa/client"})', equals(bytes));
    await p.until('sum(istio_tcp_connections_closed_total{reporter="destination",destination_workload="echo"})', equals(1));
  });

  it('Prometheus sees the control plane and the proxies’ configuration and certificates', async () => {
    const p = prometheus as PrometheusServer;
    await p.until('sum(pilot_xds)', equals(3));
    await p.until('sum(pilot_xds_pushes{type="workload"})', (samples) => sum(samples) >= 3);
    await p.until('citadel_server_success_cert_issuance_count', (samples) => sum(samples) >= 4);
    await p.until('sum(galley_validation_passed{group="networking.istio.io",resource="workloadentries"})', (samples) => sum(samples) >= 3);
    await p.until('count(trellis_config_info)', equals(3));
    await p.until('min(trellis_certificate_expiry_timestamp_seconds{kind="leaf"}) - time()', (samples) => (samples[0]?.value ?? 0) > 60);
    // Istio's standard names are all there, as the dashboards query them.
    const expected = [
      ...Object.keys(ISTIO_TCP_METRICS),
      ...Object.entries(ISTIO_HTTP_METRICS).flatMap(([name, type]) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name])),
    ].sort();
    const names = await p.until('count by (__name__) ({__name__=~"istio_.*"})', (samples) => samples.length >= expected.length);
    assert.deepEqual(names.map((sample) => sample.metric['__name__']).sort(), expected);
  });

  it('writes one JSON access-log line per request at the server', async () => {
    let lines: Array<Record<string, unknown>> = [];
    await waitFor(() => {
      if (!existsSync(accessLog)) return false;
      lines = readFileSync(accessLog, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
      return lines.length >= ALLOWED + DENIED + LATE_DENIED;
    }, 10_000, 'access log lines');
    assert.equal(lines.length, ALLOWED + DENIED + LATE_DENIED);
    const denied = lines.filter((line) => line['response_code'] === 403);
    assert.equal(denied.length, DENIED + LATE_DENIED);
    assert.equal(denied[0]?.['response_flags'], 'RBAC');
    assert.equal(denied[0]?.['response_code_details'], 'rbac_access_denied_matched_policy[none]');
    const ok = lines.find((line) => line['response_code'] === 200);
    assert.equal(ok?.['source_principal'], 'spiffe://cluster.local/ns/default/sa/client');
    assert.equal(ok?.['destination_principal'], 'spiffe://cluster.local/ns/default/sa/server');
    assert.equal(ok?.['method'], 'GET');
    assert.match(String(ok?.['path']), /^\/ok\/\d$/);
    assert.match(String(ok?.['request_id']), /^[0-9a-f-]{36}$/);
    assert.ok(Number(ok?.['bytes_sent']) > 0);
  });
});
