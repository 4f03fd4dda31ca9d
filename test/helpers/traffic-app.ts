/**
 * Helpers for the traffic-management e2e tests (test/e2e/traffic-*.test.ts).
 *
 * `TrafficApp` is the application behind a `trellis proxy` sidecar: a plain HTTP/1.1 server on
 * loopback in the test process, so the test sees exactly what reached each endpoint (requests,
 * concurrency) while everything in between — client sidecar, mTLS, server sidecar — runs as
 * real processes. Its behaviour is chosen per request by query parameters, so one pair of
 * endpoints can serve many scenarios at once:
 *
 *   key=K          the counter the parameters below count in (default: the path); counters are
 *                  shared by every TrafficApp of the test process, so "the first N requests"
 *                  means the first N the service saw, whichever endpoint got them
 *   fail=N         the first N requests of K are answered with `status` (default 503)
 *   failOn=NAME    the app named NAME always answers with `status` (default 500)
 *   status=S       the status of `fail` / `failOn`
 *   delay=MS       answer after MS milliseconds
 *   delayFirst=N   only the first N requests of K are delayed
 *
 * Every other request is answered 200 with JSON: the app's name and version, method, path,
 * authority and headers as received. `seen` keeps every request, body included.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { httpRequest, type HttpReply } from './mesh-process.js';

export interface SeenRequest {
  app: string;
  method: string;
  path: string;
  authority: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface AppReply {
  app: string;
  version: string;
  method: string;
  path: string;
  authority: string;
  headers: http.IncomingHttpHeaders;
}

const counters = new Map<string, number>();
const inFlight = new Map<string, number>();
const maxInFlight = new Map<string, number>();

/** Requests counted under `key` so far, across every app. */
export function countOf(key: string): number {
  return counters.get(key) ?? 0;
}

/** The most requests of `key` that were ever in flight at once, across every app. */
export function maxConcurrencyOf(key: string): number {
  return maxInFlight.get(key) ?? 0;
}

export class TrafficApp {
  readonly name: string;
  readonly version: string;
  readonly seen: SeenRequest[] = [];
  port = 0;
  private readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(name: string, version: string) {
    this.name = name;
    this.version = version;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  static async start(name: string, version = 'v1'): Promise<TrafficApp> {
    const app = new TrafficApp(name, version);
    await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
    app.port = (app.server.address() as net.AddressInfo).port;
    return app;
  }

  /** Requests this app saw whose authority names `host` (with or without a port or suffix). */
  seenFor(host: string): SeenRequest[] {
    return this.seen.filter((request) => request.authority.split(':')[0] === host);
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://app');
    const q = url.searchParams;
    const key = q.get('key') ?? url.pathname;
    const n = (counters.get(key) ?? 0) + 1;
    counters.set(key, n);
    const now = (inFlight.get(key) ?? 0) + 1;
    inFlight.set(key, now);
    maxInFlight.set(key, Math.max(maxInFlight.get(key) ?? 0, now));
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
    };
    res.once('close', finish);
    const seen: SeenRequest = { app: this.name, method: req.method ?? '', path: req.url ?? '', authority: req.headers.host ?? '', headers: req.headers, body: '' };
    this.seen.push(seen);

    const fail = Number(q.get('fail') ?? 0);
    const failOn = q.get('failOn');
    const delay = Number(q.get('delay') ?? 0);
    const delayFirst = q.get('delayFirst');
    const wait = delay > 0 && (delayFirst === null || n <= Number(delayFirst)) ? delay : 0;
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (seen.body += chunk));
    req.once('end', () => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (res.destroyed) return finish();
        if (n <= fail || failOn === this.name) {
          const status = Number(q.get('status') ?? (failOn === this.name ? 500 : 503));
          res.writeHead(status, { 'content-type': 'text/plain', 'x-app': this.name });
          res.end(`${this.name} failed on purpose`);
          return finish();
        }
        const body: AppReply = { app: this.name, version: this.version, method: seen.method, path: seen.path, authority: seen.authority, headers: req.headers };
        res.writeHead(200, { 'content-type': 'application/json', 'x-app': this.name });
        res.end(JSON.stringify(body));
        finish();
      }, wait);
      this.timers.add(timer);
    });
  }
}

// ---- Configuration as a user writes it.

export function serviceEntry(name: string, selector: Record<string, string>, options: { port?: number; namespace?: string } = {}): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ${options.namespace ?? 'default'}}
spec:
  hosts: [${name}.${options.namespace ?? 'default'}.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: ${options.port ?? 80}, name: http, protocol: HTTP}]
  workloadSelector: {labels: ${flow(selector)}}
`;
}

export function workloadEntry(name: string, labels: Record<string, string>, port: number | undefined, options: { namespace?: string; serviceAccount?: string } = {}): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: ${options.namespace ?? 'default'}}
spec:
  address: 127.0.0.1
  serviceAccount: ${options.serviceAccount ?? name}
  labels: ${flow(labels)}
${port === undefined ? '' : `  ports: {http: ${port}}\n`}`;
}

export function flow(record: Record<string, string>): string {
  return `{${Object.entries(record)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')}}`;
}

// ---- Requests through a client sidecar's HTTP proxy port.

export function via(proxyPort: number): (url: string, headers?: Record<string, string>, options?: { method?: string; body?: string; agent?: http.Agent }) => Promise<HttpReply> {
  return (url, headers = {}, options = {}) => httpRequest({ url, proxyPort, headers, ...options });
}

/** Runs `count` calls of `call`, at most `concurrency` at a time, and returns their results in order. */
export async function many<T>(count: number, concurrency: number, call: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(count, concurrency) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await call(i);
      }
    }),
  );
  return results;
}

export function appOf(reply: HttpReply): string {
  const header = reply.headers['x-app'];
  return typeof header === 'string' ? header : '';
}

/**
 * Asserts that `hits` successes out of `trials` are consistent with probability `p`: within
 * `sigmas` standard deviations of the binomial mean n·p (σ = √(n·p·(1−p))). At 5σ a correct
 * implementation fails with probability below 6·10⁻⁷ per assertion — effectively never — while a
 * wrong share (say 50% instead of 20% over 400 requests: 15σ off) is still caught.
 */
export function assertBinomial(hits: number, trials: number, p: number, sigmas: number, what: string): void {
  const mean = trials * p;
  const sd = Math.sqrt(trials * p * (1 - p));
  const low = Math.max(0, mean - sigmas * sd);
  const high = Math.min(trials, mean + sigmas * sd);
  assert.ok(hits >= low && hits <= high, `${what}: ${hits} of ${trials}, expected ${mean.toFixed(1)} ± ${(sigmas * sd).toFixed(1)} (${sigmas}σ, p=${p})`);
}
