/**
 * The benchmark's load generator, run in a process of its own so that it shares no event loop
 * with anything measured. One job per process, given as JSON in argv[2]:
 *
 *   fixed  open loop at a fixed rate: request i is issued at start + i/rate on connection i mod N
 *          (N keep-alive connections, at most one request in flight on each, no pipelining). A
 *          request whose connection is still busy waits for it, and that wait counts in its
 *          latency (no coordinated omission). Latency = issue → last byte of the response.
 *   max    closed loop (autocannon): N connections, each sends its next request as soon as the
 *          previous response is complete; the result is the sustained request rate.
 *
 * It prints JSON lines on stdout: {"event":"started"} when measuring starts (after the
 * connections are open), {"event":"finished"} when the last response is in, then
 * {"event":"result",...}. The parent samples /proc between the first two.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

export interface LoadSpec {
  mode: 'fixed' | 'max';
  url: string;
  connections: number;
  seconds: number;
  /** Requests per second (fixed mode). */
  rate?: number;
  /** The body size every response must have. */
  bodyBytes: number;
}

export interface LoadResult {
  mode: 'fixed' | 'max';
  /** Requests issued (fixed) or completed (max). */
  requests: number;
  /** 200 responses with a body of the expected size. */
  ok: number;
  non2xx: number;
  /** 2xx responses whose body was not the expected size. */
  wrongBody: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Wall time of the measured part. */
  seconds: number;
  /** ok / seconds. */
  okPerSecond: number;
  /** Fixed mode: percentiles of the latency of ok responses, in ms. */
  latencyMs?: { p50: number; p90: number; p99: number; max: number };
  /** Fixed mode: how late the generator issued requests against the schedule (ms). */
  scheduleLagMs?: { p99: number; max: number };
  /** Fixed mode: TCP connections opened while measuring (should be 0: they were opened before). */
  connectionsOpenedWhileMeasuring?: number;
}

const REQUEST_TIMEOUT_MS = 10_000;
/** Fixed mode: how long responses may trail the last request before the rest count as timeouts. */
const DRAIN_MS = 15_000;

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

interface Outcome {
  status: number;
  bytes: number;
  error?: 'error' | 'timeout';
}

async function fixedRate(spec: LoadSpec): Promise<LoadResult> {
  const rate = spec.rate ?? 1000;
  const url = new URL(spec.url);
  const agents = Array.from({ length: spec.connections }, () => new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 }));
  const seen = new WeakSet<object>();
  let opened = 0;
  /** Requests in flight, so the ones still queued when the drain time is over can be given up. */
  const inFlight = new Map<http.ClientRequest, (outcome: Outcome) => void>();
  const send = (agent: http.Agent, done: (outcome: Outcome) => void): void => {
    let finished = false;
    const finish = (outcome: Outcome): void => {
      if (finished) return;
      finished = true;
      inFlight.delete(req);
      done(outcome);
    };
    const req = http.request({ host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: 'GET', agent }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => finish({ status: res.statusCode ?? 0, bytes }));
      res.on('error', () => finish({ status: 0, bytes, error: 'error' }));
    });
    req.on('socket', (socket) => {
      if (seen.has(socket)) return;
      seen.add(socket);
      opened += 1;
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => {
      finish({ status: 0, bytes: 0, error: 'timeout' });
      req.destroy();
    });
    req.on('error', () => finish({ status: 0, bytes: 0, error: 'error' }));
    inFlight.set(req, finish);
    req.end();
  };

  // Open every connection (and prove it works) before measuring.
  await Promise.all(agents.map((agent) => new Promise<Outcome>((resolve) => send(agent, resolve))));
  const openedBefore = opened;

  const total = Math.round(rate * spec.seconds);
  const interval = 1000 / rate;
  const latencies: number[] = [];
  const lags: number[] = [];
  const statusCodes: Record<string, number> = {};
  let ok = 0;
  let non2xx = 0;
  let wrongBody = 0;
  let errors = 0;
  let timeouts = 0;
  let issued = 0;
  let outstanding = 0;

  emit({ event: 'started' });
  const start = performance.now();
  let end = start;
  await new Promise<void>((resolveAll) => {
    let doneIssuing = false;
    const record = (t0: number, outcome: Outcome): void => {
      const latency = performance.now() - t0;
      outstanding -= 1;
      if (outcome.error === 'timeout') timeouts += 1;
      else if (outcome.error === 'error') errors += 1;
      else {
        statusCodes[String(outcome.status)] = (statusCodes[String(outcome.status)] ?? 0) + 1;
        if (outcome.status < 200 || outcome.status > 299) non2xx += 1;
        else if (outcome.bytes !== spec.bodyBytes) wrongBody += 1;
        else if (outcome.status === 200) {
          ok += 1;
          latencies.push(latency);
        }
      }
      if (doneIssuing && outstanding === 0) {
        end = performance.now();
        resolveAll();
      }
    };
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
      while (issued < due) {
        const index = issued++;
        const t0 = performance.now();
        lags.push(t0 - (start + index * interval));
        outstanding += 1;
        send(agents[index % agents.length] as http.Agent, (outcome) => record(t0, outcome));
      }
      if (issued < total) {
        setTimeout(tick, Math.max(0, start + issued * interval - performance.now()));
      } else {
        doneIssuing = true;
        if (outstanding === 0) {
          end = performance.now();
          resolveAll();
          return;
        }
        // A path that cannot keep up leaves a queue behind: give it a bounded time to drain.
        setTimeout(() => {
          for (const [req, finish] of [...inFlight]) {
            finish({ status: 0, bytes: 0, error: 'timeout' });
            req.destroy();
          }
        }, DRAIN_MS).unref();
      }
    };
    tick();
  });
  emit({ event: 'finished' });
  for (const agent of agents) agent.destroy();

  latencies.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  const seconds = (end - start) / 1000;
  return {
    mode: 'fixed',
    requests: issued,
    ok,
    non2xx,
    wrongBody,
    errors,
    timeouts,
    statusCodes,
    seconds,
    okPerSecond: ok / seconds,
    latencyMs: { p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? Number.NaN },
    scheduleLagMs: { p99: percentile(lags, 99), max: lags[lags.length - 1] ?? Number.NaN },
    connectionsOpenedWhileMeasuring: opened - openedBefore,
  };
}

// autocannon ships no type declarations: this is the part of its API used here.
interface AutocannonOptions {
  url: string;
  connections: number;
  pipelining: number;
  duration: number;
  timeout: number;
  verifyBody: (body: string) => boolean;
}
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  non2xx: number;
  '2xx': number;
  requests: { total: number };
  statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = (options: AutocannonOptions) => Promise<AutocannonResult>;

async function closedLoop(spec: LoadSpec): Promise<LoadResult> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  emit({ event: 'started' });
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    pipelining: 1,
    duration: spec.seconds,
    timeout: REQUEST_TIMEOUT_MS / 1000,
    // The body arrives as a string; the benchmark's bodies are ASCII, so length = bytes.
    verifyBody: (body) => body.length === spec.bodyBytes,
  });
  emit({ event: 'finished' });
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) statusCodes[code] = count;
  // autocannon checks the body of every response, whatever its status, and counts a mismatching
  // 2xx in '2xx' too. The non-2xx replies here (503, 403…) are never 1,024 bytes, so the 2xx
  // responses with a wrong body are the mismatches beyond the non-2xx ones; they are kept out of ok.
  const wrongBody = Math.max(0, result.mismatches - result.non2xx);
  const ok = Math.max(0, result['2xx'] - wrongBody);
  return {
    mode: 'max',
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    wrongBody,
    // autocannon counts a timeout as an error too.
    errors: result.errors - result.timeouts,
    timeouts: result.timeouts,
    statusCodes,
    seconds: result.duration,
    okPerSecond: ok / result.duration,
  };
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
const result = spec.mode === 'fixed' ? await fixedRate(spec) : await closedLoop(spec);
emit({ event: 'result', ...result });
