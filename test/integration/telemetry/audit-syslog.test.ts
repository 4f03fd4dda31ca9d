import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SyslogSink, type AuditRecord } from '../../../src/telemetry/audit/index.js';

/** RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`. */
const RFC5424 = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[.*?[^\\]\]) (.*)$/s;

function record(n: number, decision: 'ALLOW' | 'DENY' = 'DENY'): AuditRecord {
  return {
    kind: 'authz',
    time: '2025-01-02T03:04:05.678Z',
    decision,
    policy: 'bookinfo/deny-admin',
    rule: 0,
    action: 'DENY',
    reason: 'matched',
    dryRun: [],
    source: { principal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage', address: '127.0.0.1' },
    destination: { workload: 'reviews-v1', namespace: 'bookinfo' },
    request: { method: 'GET', path: `/admin/${n}` },
    mtls: 'mutual_tls',
    requestId: `req-${n}`,
  };
}

function parse(message: string): { pri: number; msgid: string; sd: string; json: { requestId: string; decision: string } } {
  const m = RFC5424.exec(message);
  assert.ok(m, `not RFC 5424: ${message}`);
  return { pri: Number(m[1]), msgid: m[6] ?? '', sd: m[7] ?? '', json: JSON.parse(m[8] ?? '') as { requestId: string; decision: string } };
}

/** Collects messages and lets the test wait for a count without timers. */
class Inbox {
  readonly messages: string[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];
  add(message: string): void {
    this.messages.push(message);
    this.waiters = this.waiters.filter((w) => (this.messages.length >= w.count ? (w.resolve(), false) : true));
  }
  until(count: number): Promise<void> {
    if (this.messages.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }
}

/** RFC 6587 octet-counting deframer. */
function deframe(buffer: Buffer, emit: (message: string) => void): Buffer {
  let rest = buffer;
  for (;;) {
    const space = rest.indexOf(0x20);
    if (space < 0) return rest;
    const lengthText = rest.subarray(0, space).toString('ascii');
    assert.match(lengthText, /^[1-9]\d*$/, `frame must start with MSG-LEN, got ${JSON.stringify(lengthText)}`);
    const length = Number(lengthText);
    if (rest.length < space + 1 + length) return rest;
    emit(rest.subarray(space + 1, space + 1 + length).toString('utf8'));
    rest = rest.subarray(space + 1 + length);
  }
}

void describe('syslog sink over UDP', () => {
  const inbox = new Inbox();
  const receiver = dgram.createSocket('udp4');
  let port = 0;
  before(async () => {
    receiver.on('message', (msg) => inbox.add(msg.toString('utf8')));
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    port = receiver.address().port;
  });
  after(async () => {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  void it('sends one RFC 5424 message per datagram', async () => {
    const sink = new SyslogSink({ transport: 'udp', host: '127.0.0.1', port, hostname: 'node-1', procId: '77' });
    sink.write(record(1));
    sink.write(record(2, 'ALLOW'));
    await sink.close();
    await inbox.until(2);
    const [first, second] = inbox.messages.map(parse);
    assert.equal(first?.pri, 10 * 8 + 4, 'authpriv.warning for a denial');
    assert.equal(second?.pri, 10 * 8 + 6, 'authpriv.info for an allow');
    assert.equal(first?.msgid, 'authz');
    assert.match(first?.sd ?? '', /^\[trellis@32473 decision="DENY" policy="bookinfo\/deny-admin" rule="0" /);
    assert.deepEqual(inbox.messages.map((m) => parse(m).json.requestId).sort(), ['req-1', 'req-2']);
    assert.match(inbox.messages[0] ?? '', /^<84>1 2025-01-02T03:04:05\.678Z node-1 trellis 77 authz /);
    assert.deepEqual(sink.stats(), { buffered: 0, delivered: 2, dropped: 0, failed: 0 });
  });
});

void describe('syslog sink over TCP', () => {
  const inbox = new Inbox();
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      pending = deframe(Buffer.concat([pending, data]), (m) => inbox.add(m));
    });
  });
  let port = 0;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  void it('frames messages with octet counting on one connection', async () => {
    const sink = new SyslogSink({ transport: 'tcp', host: '127.0.0.1', port, hostname: 'node-1', maxBatch: 3 });
    // A multi-byte character checks that MSG-LEN counts bytes.
    for (let n = 1; n <= 7; n++) sink.write({ ...record(n), reason: 'matched – ünïcode' } as AuditRecord);
    await sink.close();
    await inbox.until(7);
    assert.equal(connections, 1);
    assert.deepEqual(inbox.messages.map((m) => parse(m).json.requestId), ['req-1', 'req-2', 'req-3', 'req-4', 'req-5', 'req-6', 'req-7']);
    assert.ok(inbox.messages.every((m) => m.includes('ünïcode')));
  });

  void it('connects again after the receiver closed the connection', async () => {
    const before = inbox.messages.length;
    const sink = new SyslogSink({ transport: 'tcp', host: '127.0.0.1', port, hostname: 'node-1' });
    sink.write(record(10));
    await sink.flush();
    await inbox.until(before + 1);
    const closed = [...sockets].map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
    for (const s of sockets) s.destroy();
    await Promise.all(closed);
    // Wait (by turns of the event loop, no clock) until the sink has seen the close.
    while (sink.connected) await new Promise((resolve) => setImmediate(resolve));
    sink.write(record(11));
    await sink.close();
    await inbox.until(before + 2);
    assert.equal(parse(inbox.messages.at(-1) ?? '').json.requestId, 'req-11');
    assert.equal(sink.stats().failed, 0);
  });

  void it('a receiver that is not there fails the batch, counted, without throwing at the caller', async () => {
    const unused = net.createServer();
    await new Promise<void>((resolve) => unused.listen(0, '127.0.0.1', resolve));
    const deadPort = (unused.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => unused.close(() => resolve()));
    const errors: number[] = [];
    const sink = new SyslogSink({ transport: 'tcp', host: '127.0.0.1', port: deadPort, onError: (_e, lost) => errors.push(lost) });
    sink.write(record(1));
    sink.write(record(2));
    await sink.close();
    assert.deepEqual(sink.stats(), { buffered: 0, delivered: 0, dropped: 0, failed: 2 });
    assert.deepEqual(errors, [2]);
  });
});
