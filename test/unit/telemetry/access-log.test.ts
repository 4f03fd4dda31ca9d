import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { AccessLogWriter, accessLogRecord, type AccessLogEntry } from '../../../src/telemetry/access-log.js';
import { StreamSink } from '../../../src/telemetry/audit/index.js';

const ENTRY: AccessLogEntry = {
  startTime: new Date('2025-01-02T03:04:05.678Z'),
  durationMs: 12.4,
  protocol: 'HTTP/1.1',
  method: 'GET',
  path: '/reviews/0?x=1',
  authority: 'reviews:9080',
  responseCode: 503,
  responseFlags: ['UO'],
  bytesReceived: 0,
  bytesSent: 81,
  upstreamHost: '10.0.0.9:9080',
  upstreamCluster: 'outbound|9080||reviews.bookinfo.svc.cluster.local',
  downstreamRemoteAddress: '10.0.0.7:40112',
  sourcePrincipal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage',
  destinationPrincipal: 'spiffe://cluster.local/ns/bookinfo/sa/reviews',
  requestId: 'req-1',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  userAgent: 'curl/8',
};

/** A destination that accepts writes only when the test says so. */
class GatedStream extends Writable {
  readonly chunks: string[] = [];
  private pending: (() => void)[] = [];
  private open = false;
  constructor() {
    super({ highWaterMark: 1 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.chunks.push(chunk.toString());
    if (this.open) callback();
    else this.pending.push(() => callback());
  }
  release(): void {
    this.open = true;
    for (const done of this.pending.splice(0)) done();
  }
}

void describe('access log', () => {
  void it('Envoy-style JSON fields, null for what is not known', () => {
    const record = accessLogRecord(ENTRY);
    assert.equal(record.start_time, '2025-01-02T03:04:05.678Z');
    assert.equal(record.response_flags, 'UO');
    assert.equal(record.duration, 12);
    assert.equal(record.upstream_cluster, 'outbound|9080||reviews.bookinfo.svc.cluster.local');
    assert.equal(record.source_principal, 'spiffe://cluster.local/ns/bookinfo/sa/productpage');
    assert.equal(record.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(record.upstream_service_time, null);
    const tcp = accessLogRecord({ startTime: ENTRY.startTime, durationMs: 5, bytesReceived: 3, bytesSent: 4 });
    assert.equal(tcp.method, null);
    assert.equal(tcp.response_code, 0);
    assert.equal(tcp.response_flags, '-');
  });

  void it('writes JSON lines off the caller’s tick', async () => {
    const stream = new GatedStream();
    stream.release();
    const writer = new AccessLogWriter(stream);
    writer.log(ENTRY);
    writer.log({ ...ENTRY, requestId: 'req-2' });
    assert.equal(stream.chunks.length, 0);
    await writer.flush();
    const lines = stream.chunks.join('').split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { request_id: string }).request_id), ['req-1', 'req-2']);
  });

  void it('a stalled destination makes the writer drop and count, never wait', async () => {
    const stream = new GatedStream();
    const writer = new AccessLogWriter(stream, { bufferSize: 5, maxBatch: 2 });
    const results = Array.from({ length: 8 }, (_, i) => writer.log({ ...ENTRY, requestId: `r${i}` }));
    assert.deepEqual(results, [true, true, true, true, true, false, false, false]);
    assert.equal(writer.stats().dropped, 3);
    stream.release();
    await writer.close();
    const ids = stream.chunks.join('').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { request_id: string }).request_id);
    assert.deepEqual(ids, ['r0', 'r1', 'r2', 'r3', 'r4']);
    assert.deepEqual(writer.stats(), { buffered: 0, delivered: 5, dropped: 3, failed: 0 });
  });

  void it('toFile appends to a 0600 file and closes it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-access-'));
    try {
      const path = join(dir, 'logs', 'access.log');
      const writer = await AccessLogWriter.toFile(path);
      writer.log(ENTRY);
      await writer.close();
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.equal((JSON.parse(await readFile(path, 'utf8')) as { request_id: string }).request_id, 'req-1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

void describe('audit stream sink', () => {
  void it('writes redacted JSON lines to the stream it was given', async () => {
    const stream = new GatedStream();
    stream.release();
    const sink = new StreamSink({ stream });
    sink.write({ kind: 'config', time: 't', event: 'changed', version: '4', actor: 'cli:ops' });
    await sink.close();
    assert.deepEqual(JSON.parse(stream.chunks.join('')), { kind: 'config', time: 't', event: 'changed', version: '4', actor: 'cli:ops' });
  });
});
