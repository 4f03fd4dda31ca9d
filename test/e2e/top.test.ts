/**
 * `trellis top` as an operator runs it against a live mesh (control plane, a client and an HTTP
 * server with their sidecars, all processes): the proxies report their metrics address to the
 * control plane, `top` finds them in /debug/syncz, scrapes them and shows the client → server
 * edge with mTLS, rate, denials and latency. Counts are checked exactly by summing the samples of
 * a running `top` over a window in which the test sends a known number of requests.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { HttpEdge, TcpEdge, TopSample } from '../../src/telemetry/top.js';
import { runTrellis, TRELLIS_BIN } from '../helpers/cli.js';
import { freePorts, httpGet, httpRequest, MeshProcesses, type StartedWorkload, waitFor } from '../helpers/mesh-process.js';
import { clientServerEchoMesh } from '../helpers/mesh-yaml.js';

const ALLOWED = 6;
const DENIED = 3;
const SERVICE = 'server.default.svc.cluster.local';
const ECHO = 'echo.default.svc.cluster.local';
const TCP_PAYLOAD = 'hello, echo\n';


type JsonSample = TopSample & { time: string; unreachable: unknown[]; withoutMetrics: string[] };

const isEdge = (edge: HttpEdge): boolean => edge.source === 'default/client' && edge.destination === 'default/server' && edge.service === SERVICE;

/** One TCP connection through the client's upstream port to the echo server: what came back. */
async function echoOnce(port: number): Promise<string> {
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
  return echoed;
}

/** A running `trellis top -o json`: its samples as they arrive. */
class TopProcess {
  readonly samples: JsonSample[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [TRELLIS_BIN, 'top', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    let partial = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') this.samples.push(JSON.parse(line) as JsonSample);
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
  }

  interrupt(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

describe('trellis top on a live mesh', () => {
  let mesh: MeshProcesses;
  let client: StartedWorkload;
  let server: StartedWorkload;
  let echo: StartedWorkload;
  const tops: TopProcess[] = [];
  const started = Date.now();

  before(async () => {
    const [web, echoPort] = (await freePorts(2)) as [number, number];
    mesh = await MeshProcesses.start(clientServerEchoMesh(web, echoPort));
    [server, echo] = await Promise.all([mesh.startWorkload('default/server', { app: 'http-echo.mjs' }), mesh.startWorkload('default/echo', { app: 'tcp-echo.mjs' })]);
    client = await mesh.startWorkload('default/client', { outboundPort: true, upstreams: [`${ECHO}:9000=0`] });
    await mesh.waitSynced(3);
    process.stderr.write(`# mesh up: ${Date.now() - started} ms\n`);
  });

  after(async () => {
    for (const top of tops) top.kill();
    await mesh?.stop();
    process.stderr.write(`# top e2e: ${Date.now() - started} ms\n`);
  });

  const get = (path: string) => httpRequest({ url: `http://${SERVICE}${path}`, proxyPort: client.ready.listening.outbound as number });

  it('each proxy reports its metrics address; /debug/syncz and proxy-status show it', async () => {
    const syncz = JSON.parse((await httpGet(`${mesh.admin}/debug/syncz`)).body) as { proxies: Array<{ workload: string; metrics?: string }> };
    const byWorkload = Object.fromEntries(syncz.proxies.map((p) => [p.workload, p.metrics]));
    assert.deepEqual(byWorkload, {
      'default/client': `127.0.0.1:${client.ready.metrics}`,
      'default/server': `127.0.0.1:${server.ready.metrics}`,
      'default/echo': `127.0.0.1:${echo.ready.metrics}`,
    });
    const status = await runTrellis(['proxy-status', '--admin', mesh.admin, '-o', 'json']);
    assert.equal(status.code, 0, status.stderr);
    assert.ok((JSON.parse(status.stdout) as { proxies: Array<{ metrics?: string }> }).proxies.every((p) => p.metrics?.startsWith('127.0.0.1:')));
  });

  it('a running top counts exactly the requests sent, from the destination, over mTLS; Ctrl-C ends it with 0', async () => {
    const top = new TopProcess(['--admin', mesh.admin, '--interval', '1s', '-o', 'json']);
    tops.push(top);
    // The first sample means a baseline scrape was taken: everything sent from now on counts.
    await waitFor(() => top.samples.length > 0, 60_000, `a first sample from top (stderr: ${top.stderr})`);
    for (let i = 0; i < ALLOWED; i++) assert.equal((await get(`/ok/${i}`)).status, 200);
    for (let i = 0; i < DENIED; i++) assert.equal((await get(`/denied/${i}`)).status, 403);
    assert.equal(await echoOnce(client.ready.listening.upstreams[`${ECHO}:9000`] as number), TCP_PAYLOAD);
    const tcpEdges = (): TcpEdge[] => top.samples.flatMap((sample) => sample.tcp.filter((edge) => edge.destination === 'default/echo'));
    const tcpTotal = (field: 'connectionsOpened' | 'connectionsClosed'): number => tcpEdges().reduce((sum, edge) => sum + edge[field], 0);
    const edges = (): HttpEdge[] => top.samples.flatMap((sample) => sample.http.filter(isEdge));
    const total = (field: 'requests' | 'denied' | 'errors'): number => edges().reduce((sum, edge) => sum + edge[field], 0);
    await waitFor(() => tcpTotal('connectionsClosed') >= 1, 60_000, `top to see the TCP connection closed (samples: ${JSON.stringify(top.samples)})`);
    await waitFor(() => total('requests') >= ALLOWED + DENIED, 60_000, `top to see ${ALLOWED + DENIED} requests (samples: ${JSON.stringify(top.samples)})`);
    // One more sample: nothing is counted twice.
    const seen = top.samples.length;
    await waitFor(() => top.samples.length > seen, 60_000, 'one more sample');
    top.interrupt();
    const exit = await top.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, top.stderr);

    assert.equal(total('requests'), ALLOWED + DENIED);
    assert.equal(total('denied'), DENIED);
    assert.equal(total('errors'), 0);
    const busy = edges().filter((edge) => edge.requests > 0);
    assert.ok(busy.length > 0);
    for (const edge of busy) {
      assert.equal(edge.reporter, 'destination');
      assert.equal(edge.mtls, 'mutual_tls');
      assert.ok(edge.rps > 0);
      // Istio's success rate: denials are answers, not failures; they have their own count.
      assert.equal(edge.successRate, 1);
      assert.ok(edge.p50Ms !== null && edge.p99Ms !== null && edge.p50Ms > 0 && edge.p50Ms <= edge.p99Ms, JSON.stringify(edge));
    }
    // TCP: one connection, counted once, from the destination, which names the caller by its certificate.
    assert.equal(tcpTotal('connectionsOpened'), 1);
    assert.equal(tcpTotal('connectionsClosed'), 1);
    for (const edge of tcpEdges().filter((e) => e.connectionsOpened + e.connectionsClosed > 0)) {
      assert.deepEqual([edge.source, edge.service, edge.reporter, edge.mtls], ['default/client', ECHO, 'destination', 'mutual_tls']);
    }
    assert.ok(tcpEdges().some((e) => e.sentBytesPerSecond > 0), JSON.stringify(tcpEdges()));
    assert.ok(tcpEdges().some((e) => e.receivedBytesPerSecond > 0), JSON.stringify(tcpEdges()));
    for (const sample of top.samples) {
      assert.equal(sample.proxies, 3);
      assert.deepEqual(sample.unreachable, []);
      assert.deepEqual(sample.withoutMetrics, []);
    }
  });

  it('--once prints one sample (JSON or text, found through --admin or --state), --namespace filters', async () => {
    let sending = true;
    let sent = 0;
    const traffic = (async () => {
      while (sending) {
        await get(sent % 3 === 2 ? `/denied/${sent}` : `/ok/${sent}`);
        sent++;
      }
    })();
    try {
      const [json, text, filtered] = await Promise.all([
        runTrellis(['top', '--once', '-o', 'json', '--interval', '2s', '--admin', mesh.admin]),
        runTrellis(['top', '--once', '--interval', '2s', '--state', mesh.stateDir]),
        runTrellis(['top', '--once', '-o', 'json', '--interval', '1s', '--admin', mesh.admin, '--namespace', 'elsewhere']),
      ]);
      for (const result of [json, text, filtered]) assert.equal(result.code, 0, result.stderr);
      const lines = json.stdout.trim().split('\n');
      assert.equal(lines.length, 1, json.stdout);
      const sample = JSON.parse(lines[0] ?? '') as JsonSample;
      const edge = sample.http.find(isEdge);
      assert.ok(edge, json.stdout);
      assert.ok(edge.requests > 0 && edge.rps > 0, JSON.stringify(edge));
      assert.equal(edge.mtls, 'mutual_tls');
      assert.ok(edge.p50Ms !== null && edge.p99Ms !== null && edge.p50Ms <= edge.p99Ms, JSON.stringify(edge));
      process.stderr.write(`# top --once -o json:\n# ${lines[0]}\n# top --once:\n${text.stdout.trimEnd().replace(/^/gm, '# ')}\n`);
      assert.match(text.stdout, /^trellis top — .* — 3 proxies, over \d+\.\ds \(every 2s\)\n\nSOURCE\s+DESTINATION\s+SERVICE\s+RPS\s+SUCCESS\s+DENIED\s+P50\s+P99\s+MTLS\n/);
      assert.match(text.stdout, /\ndefault\/client\s+default\/server\s+server\.default\.svc\.cluster\.local\s+\d+\.\d\d\s+100\.0%\s+\d+\s+\S+ms\s+\S+ms\s+mutual_tls\n/);
      assert.deepEqual((JSON.parse(filtered.stdout) as JsonSample).http, []);
    } finally {
      sending = false;
      await traffic;
    }
  });

  it('usage errors exit 2; an unreachable control plane exits 1 and says what to check', async () => {
    const usage = await runTrellis(['top', '--once', '--iterations', '2']);
    assert.equal(usage.code, 2, usage.stderr);
    const badInterval = await runTrellis(['top', '--interval', 'soon']);
    assert.equal(badInterval.code, 2, badInterval.stderr);
    const [port] = (await freePorts(1)) as [number];
    const down = await runTrellis(['top', '--once', '--admin', `http://127.0.0.1:${port}`]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach the control plane admin API .*TRELLIS_ADMIN_UNREACHABLE/);
  });
});
