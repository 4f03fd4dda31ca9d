import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import pino from 'pino';
import { ProxyTracer, type TracedWorkload } from '../../../src/telemetry/tracing.js';
import { OtlpReceiver } from '../../helpers/otlp-receiver.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const WORKLOAD: TracedWorkload = {
  namespace: 'default',
  name: 'ratings-v1',
  labels: { app: 'ratings', version: 'v1' },
  address: '127.0.0.1',
  identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings',
  trustDomain: 'cluster.local',
};

/** A loopback port that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

void describe('OTLP/HTTP export to a real receiver', () => {
  void it('exports a span as OTLP/JSON with its ids, parent, resource and attributes', async () => {
    const receiver = await OtlpReceiver.start();
    const tracer = new ProxyTracer({ endpoint: receiver.url, protocol: 'http/json', samplingPercent: 0, log: pino({ level: 'silent' }) });
    try {
      tracer.setWorkload(WORKLOAD);
      const span = tracer.startSpan('server', { headers: [['traceparent', `00-${TRACE}-00f067aa0ba902b7-01`], ['tracestate', 'congo=t61rcWkgMzE']] }, 'ratings.default.svc.cluster.local:9080/*');
      span.end(200, { response_flags: '-' });
      await receiver.waitFor((spans) => spans.length === 1, 10_000, 'the span');
      const [got] = receiver.spans;
      assert.deepEqual(
        { traceId: got?.traceId, spanId: got?.spanId, parent: got?.parentSpanId, kind: got?.kind, service: got?.service, name: got?.name, status: got?.attributes['http.status_code'], traceState: got?.traceState },
        { traceId: TRACE, spanId: span.spanId, parent: '00f067aa0ba902b7', kind: 2, service: 'ratings.default', name: 'ratings.default.svc.cluster.local:9080/*', status: '200', traceState: 'congo=t61rcWkgMzE' },
      );
      // Counted once the receiver's response is back (it stored the span before answering).
      const deadline = Date.now() + 10_000;
      while (tracer.stats().exported < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(tracer.stats(), { ended: 1, exported: 1, failed: 0, dropped: 0, pending: 0 });
    } finally {
      await tracer.shutdown();
      await receiver.close();
    }
  });

  void it('exports OTLP/protobuf by default (the trace id travels as 16 raw bytes)', async () => {
    const receiver = await OtlpReceiver.start();
    const tracer = new ProxyTracer({ endpoint: receiver.url, samplingPercent: 100, log: pino({ level: 'silent' }) });
    try {
      tracer.setWorkload(WORKLOAD);
      tracer.startSpan('client', { headers: [['traceparent', `00-${TRACE}-00f067aa0ba902b7-01`]] }, 'x').end(200);
      // shutdown() flushes what is queued: no waiting for the batch delay.
      await tracer.shutdown();
      assert.equal(receiver.protobufBodies.length, 1);
      const body = receiver.protobufBodies[0] as Buffer;
      assert.ok(body.includes(Buffer.from(TRACE, 'hex')), 'the trace id bytes are in the request');
      assert.ok(body.includes(Buffer.from('ratings.default')), 'so is the service name');
      assert.equal(tracer.stats().exported, 1);
    } finally {
      await tracer.shutdown();
      await receiver.close();
    }
  });

  void it('a collector that is down or refuses costs counted spans and one log line, not request time', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const receiver = await OtlpReceiver.start();
    receiver.failWith = 400; // not retryable: fails at once
    const refused = new ProxyTracer({ endpoint: receiver.url, protocol: 'http/json', samplingPercent: 100, log, scheduledDelayMs: 10 });
    const down = new ProxyTracer({ endpoint: `http://127.0.0.1:${await closedPort()}/v1/traces`, protocol: 'http/json', samplingPercent: 100, log, scheduledDelayMs: 10, exportTimeoutMs: 2_000 });
    try {
      for (const tracer of [refused, down]) {
        tracer.setWorkload(WORKLOAD);
        const started = performance.now();
        for (let i = 0; i < 50; i++) tracer.startSpan('server', { headers: [] }, 'x').end(200);
        assert.ok(performance.now() - started < 500, 'ending spans does not wait for the collector');
        const deadline = Date.now() + 10_000;
        while (tracer.stats().failed < 50 && Date.now() < deadline) {
          tracer.startSpan('server', { headers: [] }, 'x').end(200);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(tracer.stats().failed >= 50, `failed: ${JSON.stringify(tracer.stats())}`);
        assert.equal(tracer.stats().exported, 0);
      }
      const failures = lines.filter((line) => line.includes('"tracing.export_failed"'));
      assert.equal(failures.length, 2, `one line per tracer:\n${failures.join('')}`);
    } finally {
      await Promise.all([refused.shutdown(), down.shutdown()]);
      await receiver.close();
    }
  });
});
