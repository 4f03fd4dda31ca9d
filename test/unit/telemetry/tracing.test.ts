import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import type { HeaderList } from '../../../src/dataplane/headers.js';
import { getHeader } from '../../../src/dataplane/headers.js';
import { inboundTracing, outboundTracing } from '../../../src/dataplane/l7/tracing.js';
import { composeLayers, type L7Handler, type L7Request, type L7Response } from '../../../src/dataplane/l7/types.js';
import { SpiffeId } from '../../../src/identity/spiffe-id.js';
import { parseTraceParent } from '../../../src/telemetry/trace-context.js';
import { ProxyTracer, type TracedWorkload, tracingServiceName } from '../../../src/telemetry/tracing.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

const REVIEWS: TracedWorkload = {
  namespace: 'default',
  name: 'reviews-v2',
  labels: { app: 'reviews', version: 'v2' },
  address: '127.0.0.1',
  identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
  trustDomain: 'cluster.local',
};

function logCapture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

function tracer(samplingPercent: number, exporter: SpanExporter = new InMemorySpanExporter(), extra: { maxQueueSize?: number } = {}): ProxyTracer {
  const t = new ProxyTracer({ endpoint: 'http://127.0.0.1:1/v1/traces', samplingPercent, log: pino({ level: 'silent' }), exporter, scheduledDelayMs: 10, ...extra });
  t.setWorkload(REVIEWS);
  return t;
}

function request(headers: HeaderList, options: { peer?: boolean } = {}): L7Request {
  return {
    method: 'GET',
    authority: 'reviews.default.svc.cluster.local:9080',
    path: '/reviews/0?token=secret',
    scheme: options.peer ? 'https' : 'http',
    headers,
    body: Readable.from([]),
    protocol: 'HTTP/1.1',
    connection: {
      id: 1,
      sourceIp: '127.0.0.9',
      sourcePort: 40000,
      destIp: '127.0.0.1',
      destPort: 19082,
      ...(options.peer ? { peer: { identity: SpiffeId.parse('spiffe://cluster.local/ns/default/sa/bookinfo-productpage'), serial: '01', certSha256: 'ab', notAfter: new Date(Date.now() + 3_600_000) } } : {}),
    },
    signal: new AbortController().signal,
    context: { responseFlags: [] },
  };
}

/** The "application": records the headers it got and answers `status`. */
function app(status: number, seen: HeaderList[]): L7Handler {
  return (req) => {
    seen.push(req.headers);
    return Promise.resolve<L7Response>({ status, headers: [], body: Buffer.from('ok') });
  };
}

void describe('proxy tracer and the tracing layers', () => {
  void it('the inbound layer joins the caller trace and forwards its own span as the parent', async () => {
    const exporter = new InMemorySpanExporter();
    const t = tracer(0, exporter); // 0 %: only the caller's sampled flag records this trace
    const seen: HeaderList[] = [];
    const handler = composeLayers([inboundTracing({ tracer: t, port: 19082 })], app(200, seen));
    const req = request([['traceparent', `00-${TRACE}-${CALLER_SPAN}-01`], ['tracestate', 'congo=t61rcWkgMzE'], ['x-request-id', 'req-1']], { peer: true });
    const response = await handler(req);
    assert.equal(response.status, 200);
    const forwarded = parseTraceParent(getHeader(seen[0] ?? [], 'traceparent'));
    assert.ok(forwarded);
    assert.equal(forwarded.traceId, TRACE);
    assert.equal(forwarded.sampled, true);
    assert.notEqual(forwarded.parentId, CALLER_SPAN, 'the app sees the sidecar span as its parent');
    assert.equal(getHeader(seen[0] ?? [], 'tracestate'), 'congo=t61rcWkgMzE');
    assert.deepEqual(req.context.trace, { traceId: TRACE, spanId: forwarded.parentId, sampled: true });
    await t.flush();
    const [span] = exporter.getFinishedSpans();
    assert.ok(span);
    assert.equal(span.spanContext().spanId, forwarded.parentId);
    assert.equal(span.parentSpanContext?.spanId, CALLER_SPAN);
    assert.equal(span.kind, 1 /* SERVER */);
    assert.equal(span.name, 'reviews.default.svc.cluster.local:9080/*');
    assert.equal(span.resource.attributes['service.name'], 'reviews.default');
    assert.deepEqual(
      {
        method: span.attributes['http.method'],
        url: span.attributes['http.url'],
        status: span.attributes['http.status_code'],
        flags: span.attributes['response_flags'],
        cluster: span.attributes['upstream_cluster'],
        canonical: span.attributes['istio.canonical_service'],
        revision: span.attributes['istio.canonical_revision'],
        mesh: span.attributes['istio.mesh_id'],
        source: span.attributes['source.principal'],
        destination: span.attributes['destination.principal'],
        peer: span.attributes['peer.address'],
        requestId: span.attributes['guid:x-request-id'],
      },
      {
        method: 'GET',
        url: 'https://reviews.default.svc.cluster.local:9080/reviews/0',
        status: '200',
        flags: '-',
        cluster: 'inbound|19082||',
        canonical: 'reviews',
        revision: 'v2',
        mesh: 'cluster.local',
        source: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
        destination: REVIEWS.identity,
        peer: '127.0.0.9',
        requestId: 'req-1',
      },
    );
    assert.equal(span.attributes['node_id'], 'sidecar~127.0.0.1~reviews-v2.default~default.svc.cluster.local');
    await t.shutdown();
  });

  void it('an unsampled caller is followed: the context goes on with flag 00 and nothing is exported', async () => {
    const exporter = new InMemorySpanExporter();
    const t = tracer(100, exporter); // 100 %: would sample a new trace, but the caller said no
    const seen: HeaderList[] = [];
    const handler = composeLayers([inboundTracing({ tracer: t, port: 19082 })], app(200, seen));
    await handler(request([['traceparent', `00-${TRACE}-${CALLER_SPAN}-00`]]));
    const forwarded = parseTraceParent(getHeader(seen[0] ?? [], 'traceparent'));
    assert.equal(forwarded?.traceId, TRACE);
    assert.equal(forwarded?.sampled, false);
    assert.notEqual(forwarded?.parentId, CALLER_SPAN);
    await t.flush();
    assert.equal(exporter.getFinishedSpans().length, 0);
    assert.equal(t.stats().ended, 0);
    await t.shutdown();
  });

  void it('without a valid traceparent a trace starts here, at the sampling percentage', async () => {
    const exporter = new InMemorySpanExporter();
    const all = tracer(100, exporter);
    const seen: HeaderList[] = [];
    // An invalid traceparent (uppercase) restarts the trace and its tracestate is dropped.
    await composeLayers([inboundTracing({ tracer: all, port: 19082 })], app(200, seen))(request([['traceparent', `00-${TRACE.toUpperCase()}-${CALLER_SPAN}-01`], ['tracestate', 'a=1']]));
    const started = parseTraceParent(getHeader(seen[0] ?? [], 'traceparent'));
    assert.ok(started);
    assert.notEqual(started.traceId, TRACE);
    assert.equal(started.sampled, true);
    assert.equal(getHeader(seen[0] ?? [], 'tracestate'), undefined);
    await all.flush();
    assert.equal(exporter.getFinishedSpans()[0]?.parentSpanContext, undefined, 'a root span');
    await all.shutdown();

    const none = tracer(0, exporter);
    exporter.reset();
    seen.length = 0;
    await composeLayers([inboundTracing({ tracer: none, port: 19082 })], app(200, seen))(request([]));
    assert.equal(parseTraceParent(getHeader(seen[0] ?? [], 'traceparent'))?.sampled, false, 'the unsampled decision travels on');
    await none.flush();
    assert.equal(exporter.getFinishedSpans().length, 0);
    await none.shutdown();
  });

  void it('the outbound layer makes a CLIENT span under the app span, with the upstream the router picked, and an x-request-id', async () => {
    const exporter = new InMemorySpanExporter();
    const t = tracer(1, exporter);
    const upstream: HeaderList[] = [];
    const router: L7Handler = (req) => {
      upstream.push(req.headers);
      req.context.upstreamHost = '127.0.0.1:19085';
      Object.assign(req.context.trace ?? {}, { upstreamCluster: 'outbound|9080||ratings.default.svc.cluster.local', upstreamIdentity: 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings' });
      req.context.responseFlags.push('URX');
      return Promise.resolve({ status: 503, headers: [], body: Readable.from(['unavailable']) });
    };
    const req = request([['traceparent', `00-${TRACE}-${CALLER_SPAN}-01`]]);
    req.authority = 'ratings.default.svc.cluster.local:9080';
    const response = await composeLayers([outboundTracing(t)], router)(req);
    const sent = upstream[0] ?? [];
    assert.match(getHeader(sent, 'x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const forwarded = parseTraceParent(getHeader(sent, 'traceparent'));
    assert.equal(forwarded?.traceId, TRACE);
    await t.flush();
    assert.equal(exporter.getFinishedSpans().length, 0, 'the span ends with the response body, not before');
    (response.body as Readable).resume();
    await new Promise((resolve) => (response.body as Readable).once('end', resolve));
    await t.flush();
    const [span] = exporter.getFinishedSpans();
    assert.ok(span);
    assert.equal(span.kind, 2 /* CLIENT */);
    assert.equal(span.spanContext().spanId, forwarded?.parentId);
    assert.equal(span.parentSpanContext?.spanId, CALLER_SPAN);
    assert.equal(span.name, 'ratings.default.svc.cluster.local:9080/*');
    assert.equal(span.attributes['upstream_cluster'], 'outbound|9080||ratings.default.svc.cluster.local');
    assert.equal(span.attributes['peer.address'], '127.0.0.1:19085');
    assert.equal(span.attributes['http.status_code'], '503');
    assert.equal(span.attributes['response_flags'], 'URX');
    assert.equal(span.attributes['error'], true);
    assert.equal(span.attributes['source.principal'], REVIEWS.identity);
    assert.equal(span.attributes['destination.principal'], 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings');
    assert.equal(span.status.code, 2 /* ERROR */);
    await t.shutdown();
  });

  void it('a span also ends when the downstream goes away before the body is read', async () => {
    const exporter = new InMemorySpanExporter();
    const t = tracer(100, exporter);
    const controller = new AbortController();
    const req = { ...request([]), signal: controller.signal };
    await composeLayers([inboundTracing({ tracer: t, port: 19082 })], () => Promise.resolve({ status: 200, headers: [], body: new Readable({ read() {} }) }))(req);
    await t.flush();
    assert.equal(exporter.getFinishedSpans().length, 0);
    controller.abort();
    await t.flush();
    assert.equal(exporter.getFinishedSpans().length, 1);
    await t.shutdown();
  });

  void it('without a tracer the outbound layer only adds a missing x-request-id, and keeps one the app sent', async () => {
    const seen: HeaderList[] = [];
    const handler = composeLayers([outboundTracing(undefined)], app(200, seen));
    const traceparent = `00-${TRACE}-${CALLER_SPAN}-01`;
    await handler(request([['traceparent', traceparent], ['X-Request-Id', 'mine']]));
    await handler(request([]));
    assert.equal(getHeader(seen[0] ?? [], 'traceparent'), traceparent);
    assert.equal(getHeader(seen[0] ?? [], 'x-request-id'), 'mine');
    assert.match(getHeader(seen[1] ?? [], 'x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  void it('a failing collector is logged once, counted, and never waited on; recovery is logged', async () => {
    const { log, lines } = logCapture();
    let fail = true;
    const exporter: SpanExporter = {
      export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
        setImmediate(() => done(fail ? { code: ExportResultCode.FAILED, error: new Error('connect ECONNREFUSED') } : { code: ExportResultCode.SUCCESS }));
      },
      shutdown: () => Promise.resolve(),
    };
    const t = new ProxyTracer({ endpoint: 'http://127.0.0.1:1/v1/traces', samplingPercent: 100, log, exporter, scheduledDelayMs: 5 });
    t.setWorkload(REVIEWS);
    for (let round = 0; round < 3; round++) {
      t.startSpan('server', { headers: [] }, 'x').end(200);
      await t.flush();
    }
    assert.equal(t.stats().failed, 3);
    assert.equal(lines.filter((line) => line['event'] === 'tracing.export_failed').length, 1, 'logged once');
    fail = false;
    t.startSpan('server', { headers: [] }, 'x').end(200);
    await t.flush();
    assert.deepEqual({ exported: t.stats().exported, failed: t.stats().failed, pending: t.stats().pending }, { exported: 1, failed: 3, pending: 0 });
    const recovered = lines.find((line) => line['event'] === 'tracing.export_recovered');
    assert.equal(recovered?.['lost'], 3);
    await t.shutdown();
  });

  void it('the export queue is bounded: beyond it spans are dropped and counted', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const exporter: SpanExporter = {
      export(_spans: ReadableSpan[], done: (result: ExportResult) => void) {
        void gate.then(() => done({ code: ExportResultCode.SUCCESS }));
      },
      shutdown: () => Promise.resolve(),
    };
    const t = tracer(100, exporter, { maxQueueSize: 4 });
    for (let i = 0; i < 10; i++) t.startSpan('client', { headers: [] }, 'x').end(200);
    // One full batch went to the (stuck) collector, the next four wait, the last two are dropped.
    assert.deepEqual(t.stats(), { ended: 10, exported: 0, failed: 0, dropped: 2, pending: 8 });
    release();
    await t.shutdown();
    assert.deepEqual(t.stats(), { ended: 10, exported: 8, failed: 0, dropped: 2, pending: 0 });
  });

  void it("names the service as Istio does by default: <canonical service>.<namespace>", () => {
    assert.equal(tracingServiceName(REVIEWS), 'reviews.default');
    assert.equal(tracingServiceName({ name: 'legacy-vm', namespace: 'shop', labels: {} }), 'legacy-vm.shop');
    assert.equal(tracingServiceName({ name: 'x', namespace: 'shop', labels: { 'service.istio.io/canonical-name': 'cart', app: 'y' } }), 'cart.shop');
  });
});
