import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebhookSink, type AuditRecord } from '../../../src/telemetry/audit/index.js';

function record(n: number): AuditRecord {
  return {
    kind: 'authz',
    time: '2025-01-02T03:04:05.678Z',
    decision: 'DENY',
    policy: null,
    rule: null,
    action: null,
    reason: 'no ALLOW policy matched',
    dryRun: [],
    source: { address: '127.0.0.1' },
    destination: { workload: 'reviews-v1', namespace: 'bookinfo' },
    request: { method: 'GET', path: `/r/${n}`, headers: { authorization: 'Bearer do-not-log', 'x-trace': 't' } },
    mtls: 'none',
    requestId: `req-${n}`,
  };
}

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;

/** A SIEM-like receiver on loopback; the test sets how it answers. */
class Receiver {
  readonly batches: { requestId: string; request: { headers: Record<string, string> } }[][] = [];
  readonly headers: http.IncomingHttpHeaders[] = [];
  requests = 0;
  handler: Handler = (_req, _body, res) => res.writeHead(200).end();
  private readonly requestWaiters: { count: number; resolve: () => void }[] = [];
  readonly server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      this.requests++;
      this.headers.push(req.headers);
      for (const w of this.requestWaiters.filter((w) => this.requests >= w.count)) w.resolve();
      this.handler(req, body, res);
    });
  });

  accept: Handler = (_req, body, res) => {
    this.batches.push(JSON.parse(body) as Receiver['batches'][number]);
    res.writeHead(204).end();
  };

  untilRequests(count: number): Promise<void> {
    if (this.requests >= count) return Promise.resolve();
    return new Promise((resolve) => this.requestWaiters.push({ count, resolve }));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/audit`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

void describe('audit webhook sink', () => {
  let receiver: Receiver;
  let url: string;
  before(async () => {
    receiver = new Receiver();
    url = await receiver.start();
  });
  after(async () => {
    await receiver.stop();
  });

  void it('POSTs batches as JSON arrays with the configured headers, credentials redacted', async () => {
    receiver.handler = receiver.accept;
    const sink = new WebhookSink({ url, maxBatch: 2, headers: { authorization: 'Splunk token-1' } });
    for (let n = 1; n <= 5; n++) sink.write(record(n));
    await sink.close();
    assert.deepEqual(receiver.batches.map((b) => b.map((r) => r.requestId)), [['req-1', 'req-2'], ['req-3', 'req-4'], ['req-5']]);
    assert.equal(receiver.batches[0]?.[0]?.request.headers['authorization'], '<redacted>');
    assert.equal(receiver.batches[0]?.[0]?.request.headers['x-trace'], 't');
    assert.equal(receiver.headers[0]?.['content-type'], 'application/json');
    assert.equal(receiver.headers[0]?.['authorization'], 'Splunk token-1');
    assert.deepEqual(sink.stats(), { buffered: 0, delivered: 5, dropped: 0, failed: 0, requests: 3, retries: 0 });
  });

  void it('retries a batch the receiver failed, with backoff, until it is accepted', async () => {
    receiver.batches.length = 0;
    let failures = 3;
    receiver.handler = (req, body, res) => {
      if (failures-- > 0) res.writeHead(failures === 1 ? 429 : 503).end();
      else receiver.accept(req, body, res);
    };
    const sink = new WebhookSink({ url, initialBackoffMs: 1, maxBackoffMs: 4 });
    sink.write(record(1));
    sink.write(record(2));
    await sink.close();
    assert.deepEqual(receiver.batches.map((b) => b.map((r) => r.requestId)), [['req-1', 'req-2']]);
    assert.deepEqual(sink.stats(), { buffered: 0, delivered: 2, dropped: 0, failed: 0, requests: 4, retries: 3 });
  });

  void it('gives up after maxAttempts and counts the batch as failed; a 4xx is not retried', async () => {
    receiver.handler = (_req, _body, res) => res.writeHead(500).end();
    const errors: string[] = [];
    const down = new WebhookSink({ url, maxAttempts: 3, initialBackoffMs: 1, onError: (e) => errors.push(String(e)) });
    down.write(record(1));
    await down.close();
    assert.deepEqual(down.stats(), { buffered: 0, delivered: 0, dropped: 0, failed: 1, requests: 3, retries: 2 });
    assert.match(errors[0] ?? '', /answered 500/);

    receiver.handler = (_req, _body, res) => res.writeHead(400).end();
    const rejected = new WebhookSink({ url, maxAttempts: 3, initialBackoffMs: 1 });
    rejected.write(record(1));
    await rejected.close();
    assert.deepEqual(rejected.stats(), { buffered: 0, delivered: 0, dropped: 0, failed: 1, requests: 1, retries: 0 });
  });

  void it('a stalled receiver fills the bounded buffer; the overflow is dropped and counted, the rest delivered later', async () => {
    receiver.batches.length = 0;
    const held: (() => void)[] = [];
    receiver.handler = (req, body, res) => held.push(() => receiver.accept(req, body, res));
    const sink = new WebhookSink({ url, bufferSize: 10, maxBatch: 4 });
    const before = receiver.requests;
    // All on one tick: 10 fit, 5 are dropped before any delivery starts.
    for (let n = 1; n <= 15; n++) sink.write(record(n));
    assert.equal(sink.stats().dropped, 5);
    await receiver.untilRequests(before + 1);
    // The first batch of 4 is stuck at the receiver; 6 wait behind it and there is room for 0 more.
    for (let n = 16; n <= 18; n++) sink.write(record(n));
    assert.deepEqual(sink.stats(), { buffered: 10, delivered: 0, dropped: 8, failed: 0, requests: 1, retries: 0 });
    // The receiver recovers: answer what it holds, and whatever follows, at once.
    receiver.handler = receiver.accept;
    for (const answer of held.splice(0)) answer();
    await sink.close();
    assert.deepEqual(receiver.batches.flat().map((r) => r.requestId), Array.from({ length: 10 }, (_, i) => `req-${i + 1}`));
    assert.deepEqual(sink.stats(), { buffered: 0, delivered: 10, dropped: 8, failed: 0, requests: 3, retries: 0 });
  });

  void it('refuses a non-HTTP URL', () => {
    assert.throws(() => new WebhookSink({ url: 'ftp://example.com/' }), /must be http/);
  });
});
