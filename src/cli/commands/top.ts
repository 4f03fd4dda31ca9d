import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../../api/duration.js';
import { errorMessage, TrellisError } from '../../api/errors.js';
import { DEFAULT_ADMIN_PORT, readControlPlaneRecord } from '../../controlplane/controlplane.js';
import type { ProxySyncStatus } from '../../controlplane/proxy-connection.js';
import { computeTop, formatTopText, parsePrometheusText, type Scrape, type TopSample } from '../../telemetry/top.js';
import { parseOutputFormat, printLine, usageError } from '../output.js';

interface TopFlags {
  admin?: string;
  state?: string;
  interval: string;
  once?: boolean;
  iterations?: string;
  output: string;
  namespace?: string;
}

/** A proxy `top` could not scrape this round, and why. */
interface Unreachable {
  workload: string;
  url: string;
  error: string;
}

interface Round {
  scrapes: Scrape[];
  unreachable: Unreachable[];
  /** Connected proxies that report no metrics address (metrics off, or an older proxy). */
  withoutMetrics: string[];
}

const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/**
 * `trellis top`: the mesh's edges, live. Reads the connected proxies (and their metrics
 * addresses) from the control plane's /debug/syncz each round, scrapes every proxy's
 * /stats/prometheus directly, and prints what src/telemetry/top.ts computes from two rounds.
 */
export function registerTop(program: Command): void {
  program
    .command('top')
    .description("live traffic between workloads from the proxies' metrics: requests/s, success rate, p50/p99 latency and mTLS per edge, TCP connections and bytes (Ctrl-C ends it)")
    .option('--admin <url>', `admin API of the control plane (default http://127.0.0.1:${DEFAULT_ADMIN_PORT})`)
    .option('--state <dir>', "the control plane's state directory on this host: finds its admin API")
    .option('--interval <duration>', 'time between samples (Istio notation: 2s, 500ms)', '2s')
    .option('--once', 'print one sample (two scrapes one interval apart) and exit')
    .option('--iterations <n>', 'print n samples and exit')
    .option('-o, --output <format>', 'text (a table, redrawn in a terminal) or json (one object per sample and line)', 'text')
    .option('--namespace <ns>', 'only edges with this namespace at either end')
    .action(async (opts: TopFlags) => {
      const format = parseOutputFormat(opts.output);
      const intervalMs = parseDuration(opts.interval);
      if (intervalMs < 100) throw usageError(`--interval "${opts.interval}": at least 100ms`);
      if (opts.iterations !== undefined && !/^[1-9]\d*$/.test(opts.iterations)) throw usageError(`--iterations "${opts.iterations}": expected a whole number ≥ 1`);
      if (opts.once && opts.iterations !== undefined) throw usageError('give --once or --iterations, not both');
      const iterations = opts.once ? 1 : opts.iterations === undefined ? Infinity : Number(opts.iterations);
      const admin = opts.admin ?? (opts.state ? readControlPlaneRecord(opts.state).admin : `http://127.0.0.1:${DEFAULT_ADMIN_PORT}`);
      const redraw = format === 'text' && process.stdout.isTTY === true;

      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        let previous = await scrapeRound(admin, intervalMs, stop.signal);
        if (redraw && !stop.signal.aborted) process.stdout.write(`${CLEAR_SCREEN}trellis top: first scrape of ${previous.scrapes.length} proxies, next in ${formatDuration(intervalMs)}…\n`);
        for (let done = 0; done < iterations && !stop.signal.aborted; done++) {
          await sleep(intervalMs, stop.signal);
          if (stop.signal.aborted) break;
          const current = await scrapeRound(admin, intervalMs, stop.signal);
          if (stop.signal.aborted) break;
          const sample = computeTop(previous.scrapes, current.scrapes, opts.namespace === undefined ? {} : { namespace: opts.namespace });
          previous = current;
          if (format === 'json') {
            printLine(JSON.stringify({ time: new Date().toISOString(), ...sample, unreachable: current.unreachable, withoutMetrics: current.withoutMetrics }));
          } else {
            const text = render(sample, current, intervalMs, opts.namespace);
            process.stdout.write(redraw ? `${CLEAR_SCREEN}${text}\n` : `${text}\n\n`);
          }
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

function render(sample: TopSample, round: Round, intervalMs: number, namespace: string | undefined): string {
  const scope = namespace === undefined ? '' : `, namespace ${namespace}`;
  const header = `trellis top — ${new Date().toISOString()} — ${sample.proxies} prox${sample.proxies === 1 ? 'y' : 'ies'}, over ${sample.intervalSeconds.toFixed(1)}s (every ${formatDuration(intervalMs)}${scope})`;
  const notes = [
    ...round.unreachable.map((u) => `! ${u.workload}: cannot scrape ${u.url}: ${u.error}`),
    ...(round.withoutMetrics.length > 0 ? [`! no metrics address: ${round.withoutMetrics.join(', ')} (metrics off, or an older proxy)`] : []),
  ];
  return [header, '', formatTopText(sample), ...(notes.length > 0 ? ['', ...notes] : [])].join('\n');
}

/** One round: the connected proxies from /debug/syncz, each scraped in parallel. */
async function scrapeRound(admin: string, intervalMs: number, signal: AbortSignal): Promise<Round> {
  const proxies = await connectedProxies(admin, signal);
  const timeoutMs = Math.min(Math.max(intervalMs, 1_000), 5_000);
  const round: Round = { scrapes: [], unreachable: [], withoutMetrics: [] };
  await Promise.all(
    proxies.map(async (proxy) => {
      if (proxy.metrics === undefined) {
        round.withoutMetrics.push(proxy.workload);
        return;
      }
      const url = metricsUrl(proxy.metrics, proxy.peer);
      if (url === undefined) {
        round.unreachable.push({ workload: proxy.workload, url: proxy.metrics, error: `the reported metrics address is not the proxy's own (${proxy.peer}): not scraped` });
        return;
      }
      try {
        const response = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const text = await response.text();
        round.scrapes.push({ proxy: `${proxy.workload} ${url}`, at: performance.now(), samples: parsePrometheusText(text) });
      } catch (err) {
        if (!signal.aborted) round.unreachable.push({ workload: proxy.workload, url, error: errorMessage(err) });
      }
    }),
  );
  round.withoutMetrics.sort();
  round.unreachable.sort((a, b) => a.workload.localeCompare(b.workload));
  return round;
}

/**
 * The scrape URL of a reported `host:port`: an unspecified host means the address the proxy
 * connected from. Any other host must be that address too (or loopback, for a proxy on this
 * machine): a proxy cannot point `top` at another machine's port. Undefined when it tries.
 */
export function metricsUrl(address: string, peer: string): string | undefined {
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  const port = address.slice(colon + 1);
  const peerAddress = peer.replace(/^ipv[46]:/, '').replace(/:\d+$/, '');
  const peerHost = peerAddress.startsWith('[') || !peerAddress.includes(':') ? peerAddress : `[${peerAddress}]`;
  if (host === '0.0.0.0' || host === '[::]' || host === '') host = peerHost;
  else if (host !== peerHost && !(isLoopback(host) && isLoopback(peerHost))) return undefined;
  return `http://${host}:${port}/stats/prometheus`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

async function connectedProxies(admin: string, signal: AbortSignal): Promise<ProxySyncStatus[]> {
  const url = new URL('debug/syncz', admin.endsWith('/') ? admin : `${admin}/`).toString();
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(5_000)]) });
  } catch (err) {
    if (signal.aborted) return [];
    throw new TrellisError('TRELLIS_ADMIN_UNREACHABLE', `cannot reach the control plane admin API at ${admin} (${errorMessage(err)}): is "trellis controlplane" running, and is --admin (or --state) right?`);
  }
  if (!response.ok) throw new TrellisError('TRELLIS_ADMIN_UNREACHABLE', `${url} answered HTTP ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { proxies: ProxySyncStatus[] }).proxies;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
