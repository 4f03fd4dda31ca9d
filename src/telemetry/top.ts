/**
 * `trellis top`'s arithmetic, pure: parse the proxies' Prometheus text, take the difference of
 * two scrapes of every proxy, and fold the series into edges (source workload → destination
 * workload and service) with request rate, success and denial shares, p50/p99 latency and mTLS
 * state; TCP edges with connection and byte rates. No I/O here: the CLI scrapes and prints.
 *
 * Semantics follow Prometheus where it has them:
 *  - a counter that went down was reset (the proxy restarted): its increase is its new value;
 *  - a series absent from the earlier scrape of a proxy started at 0 (Istio's counters appear on
 *    the first request); a proxy with no earlier scrape contributes nothing yet (no baseline);
 *  - quantiles interpolate linearly inside the bucket, exactly like `histogram_quantile`.
 * Each edge is counted once: from the destination's report (reporter="destination") when any
 * proxy reports that pair of workloads that way, otherwise from the source's. A side whose workload is
 * unknown but whose principal one workload of the scrapes runs as is named after that workload
 * (the destination of a TCP connection knows only the caller's certificate).
 */
import { ISTIO_METRIC_NAMES } from './istio-metrics.js';

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One scrape of one proxy. */
export interface Scrape {
  /** A stable key for the proxy (e.g. its workload or metrics URL): pairs scrapes across rounds. */
  readonly proxy: string;
  /** When the scrape was taken, in milliseconds (any monotonic clock). */
  readonly at: number;
  readonly samples: readonly PromSample[];
}

export type MtlsState = 'mutual_tls' | 'none' | 'unknown' | 'mixed';
export type Reporter = 'destination' | 'source';

export interface HttpEdge {
  /** `namespace/workload`, or `unknown` when the reporter did not know it. */
  readonly source: string;
  readonly destination: string;
  /** `destination_service` (a host), or `unknown`. */
  readonly service: string;
  readonly reporter: Reporter;
  /** Requests completed in the interval (all proxies reporting this edge). */
  readonly requests: number;
  /** Requests per second over the interval. */
  readonly rps: number;
  /** Share of requests not answered 5xx (or not answered at all, code 0); null without requests. */
  readonly successRate: number | null;
  /** Requests answered 401 or 403 (refused by authentication or authorization). */
  readonly denied: number;
  /** Requests answered 5xx or not answered (code 0). */
  readonly errors: number;
  /** Latency quantiles in milliseconds, from the duration histogram; null without requests. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly mtls: MtlsState;
}

export interface TcpEdge {
  readonly source: string;
  readonly destination: string;
  readonly service: string;
  readonly reporter: Reporter;
  readonly connectionsOpened: number;
  readonly connectionsClosed: number;
  /** Connections opened per second. */
  readonly cps: number;
  /** Bytes per second, as the reporter counts them (sent: toward the downstream side). */
  readonly sentBytesPerSecond: number;
  readonly receivedBytesPerSecond: number;
  readonly mtls: MtlsState;
}

export interface TopSample {
  /** Mean time between the two scrapes of the proxies that had both, in seconds. */
  readonly intervalSeconds: number;
  /** Proxies with two scrapes, which the numbers are made of. */
  readonly proxies: number;
  readonly http: HttpEdge[];
  readonly tcp: TcpEdge[];
}

export interface TopOptions {
  /** Only edges with this namespace at either end. */
  readonly namespace?: string;
}

// ---- Prometheus text exposition (0.0.4) ----

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+-?\d+)?\s*$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})/y;

/** Every sample of a text exposition; comments and malformed lines are skipped. */
export function parsePrometheusText(text: string): PromSample[] {
  const samples: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE_LINE.exec(line);
    if (!match) continue;
    const labels = match[2] === undefined ? {} : parseLabels(match[2]);
    if (labels === undefined) continue;
    const value = parseValue(match[3] ?? '');
    if (Number.isNaN(value)) continue;
    samples.push({ name: match[1] ?? '', labels, value });
  }
  return samples;
}

function parseLabels(braced: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  if (/^\{\s*\}$/.test(braced)) return labels;
  LABEL.lastIndex = 1;
  for (;;) {
    const match = LABEL.exec(braced);
    if (!match) return undefined;
    labels[match[1] ?? ''] = (match[2] ?? '').replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
    if (match[3] === '}') return LABEL.lastIndex === braced.length ? labels : undefined;
    // A trailing comma before the closing brace is allowed.
    if (/^\s*\}$/.test(braced.slice(LABEL.lastIndex))) return labels;
  }
}

function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const value = Number(text);
  return text === '' ? NaN : value;
}

// ---- counters and histograms ----

/** The increase of a counter between two readings, with Prometheus's reset rule. */
export function counterIncrease(previous: number | undefined, current: number): number {
  if (previous === undefined) return current;
  return current >= previous ? current - previous : current;
}

export interface Bucket {
  /** Upper bound (`le`); Infinity for the last bucket. */
  readonly le: number;
  /** Cumulative count of observations ≤ le. */
  readonly count: number;
}

/**
 * `histogram_quantile(q, …)` over cumulative buckets, as Prometheus computes it: find the bucket
 * that holds rank q·total and interpolate linearly between its bounds (the first bucket starts
 * at 0); a rank in the +Inf bucket gives the highest finite bound. null without observations.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  if (Number.isNaN(q)) return null;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const last = sorted[sorted.length - 1];
  if (sorted.length < 2 || last === undefined || last.le !== Infinity) return null;
  // Cumulative counts must not decrease (deltas of separately-reset series could); Prometheus
  // fixes that the same way.
  const counts: number[] = [];
  for (const bucket of sorted) counts.push(Math.max(bucket.count, counts[counts.length - 1] ?? 0));
  const total = counts[counts.length - 1] ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let index = counts.findIndex((count) => count >= rank);
  if (index < 0) index = counts.length - 1;
  if (index === sorted.length - 1) return sorted[sorted.length - 2]?.le ?? null;
  const upper = sorted[index]?.le ?? 0;
  if (index === 0 && upper <= 0) return upper;
  const lower = index === 0 ? 0 : sorted[index - 1]?.le ?? 0;
  const below = index === 0 ? 0 : counts[index - 1] ?? 0;
  const inBucket = (counts[index] ?? 0) - below;
  if (inBucket === 0) return upper;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}

// ---- edges ----

const DURATION_BUCKET = `${ISTIO_METRIC_NAMES.requestDuration}_bucket`;
const EDGE_METRICS = new Set<string>([
  ISTIO_METRIC_NAMES.requestsTotal,
  DURATION_BUCKET,
  ISTIO_METRIC_NAMES.tcpOpened,
  ISTIO_METRIC_NAMES.tcpClosed,
  ISTIO_METRIC_NAMES.tcpSentBytes,
  ISTIO_METRIC_NAMES.tcpReceivedBytes,
]);

interface Increase {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly increase: number;
}

interface EdgeKey {
  readonly source: string;
  readonly destination: string;
  readonly service: string;
}

interface EdgeAccumulator extends EdgeKey {
  readonly byReporter: Record<Reporter, Increase[]>;
}

function seriesKey(sample: PromSample): string {
  const names = Object.keys(sample.labels).sort();
  return `${sample.name}{${names.map((n) => `${n}=${JSON.stringify(sample.labels[n])}`).join(',')}}`;
}

type Side = 'source' | 'destination';

function workloadOf(labels: Readonly<Record<string, string>>, side: Side, byPrincipal?: ReadonlyMap<string, string | null>): string {
  const name = labels[`${side}_workload`] ?? 'unknown';
  const namespace = labels[`${side}_workload_namespace`] ?? 'unknown';
  if (name === 'unknown' && byPrincipal !== undefined) {
    // TCP at the destination has no peer metadata, only the peer's certificate: name the
    // workload when exactly one workload of the scrapes runs as that principal.
    const known = byPrincipal.get(labels[`${side}_principal`] ?? 'unknown');
    if (known) return known;
  }
  return name === 'unknown' && namespace === 'unknown' ? 'unknown' : `${namespace}/${name}`;
}

/** principal → the one `namespace/workload` seen with it (null when several are). */
function principalWorkloads(scrapes: readonly Scrape[]): Map<string, string | null> {
  const map = new Map<string, string | null>();
  for (const scrape of scrapes) {
    for (const sample of scrape.samples) {
      if (!EDGE_METRICS.has(sample.name)) continue;
      for (const side of ['source', 'destination'] as const) {
        const principal = sample.labels[`${side}_principal`];
        if (principal === undefined || principal === 'unknown' || (sample.labels[`${side}_workload`] ?? 'unknown') === 'unknown') continue;
        const workload = workloadOf(sample.labels, side);
        const seen = map.get(principal);
        map.set(principal, seen === undefined || seen === workload ? workload : null);
      }
    }
  }
  return map;
}

/** Increases of the edge metrics of one proxy between two scrapes. */
function increases(previous: Scrape, current: Scrape): Increase[] {
  const before = new Map<string, number>();
  for (const sample of previous.samples) if (EDGE_METRICS.has(sample.name)) before.set(seriesKey(sample), sample.value);
  const out: Increase[] = [];
  for (const sample of current.samples) {
    if (!EDGE_METRICS.has(sample.name)) continue;
    out.push({ name: sample.name, labels: sample.labels, increase: counterIncrease(before.get(seriesKey(sample)) ?? 0, sample.value) });
  }
  return out;
}

function mtlsOf(series: readonly Increase[]): MtlsState {
  const values = new Set(series.map((s) => s.labels['connection_security_policy'] ?? 'unknown'));
  if (values.size === 0) return 'unknown';
  if (values.size > 1) return 'mixed';
  const [only] = values;
  return only === 'mutual_tls' || only === 'none' ? only : 'unknown';
}

const sum = (series: readonly Increase[]): number => series.reduce((total, s) => total + s.increase, 0);

/**
 * The edge table between two rounds of scrapes: proxies are paired by `proxy`; one without an
 * earlier scrape is left out of this round. Edges are sorted by rate, busiest first.
 */
export function computeTop(previous: readonly Scrape[], current: readonly Scrape[], options: TopOptions = {}): TopSample {
  const earlier = new Map(previous.map((scrape) => [scrape.proxy, scrape]));
  const http = new Map<string, EdgeAccumulator>();
  const tcp = new Map<string, EdgeAccumulator>();
  const byPrincipal = principalWorkloads(current);
  let seconds = 0;
  let proxies = 0;
  for (const scrape of current) {
    const before = earlier.get(scrape.proxy);
    if (before === undefined || scrape.at <= before.at) continue;
    proxies++;
    seconds += (scrape.at - before.at) / 1000;
    for (const series of increases(before, scrape)) {
      const reporter = series.labels['reporter'];
      if (reporter !== 'source' && reporter !== 'destination') continue;
      const key: EdgeKey = { source: workloadOf(series.labels, 'source', byPrincipal), destination: workloadOf(series.labels, 'destination', byPrincipal), service: series.labels['destination_service'] ?? 'unknown' };
      if (options.namespace !== undefined && ![key.source, key.destination].some((w) => w.startsWith(`${options.namespace}/`))) continue;
      const table = series.name.startsWith('istio_tcp_') ? tcp : http;
      const id = JSON.stringify([key.source, key.destination, key.service]);
      let edge = table.get(id);
      if (edge === undefined) {
        edge = { ...key, byReporter: { destination: [], source: [] } };
        table.set(id, edge);
      }
      edge.byReporter[reporter].push(series);
    }
  }
  const interval = proxies === 0 ? 0 : seconds / proxies;
  const perSecond = (count: number): number => (interval > 0 ? count / interval : 0);
  // The destination's report wins for the whole workload pair: both sides may spell the service
  // differently (a TCP destination knows no host name), and the pair must not count twice.
  const pair = (edge: EdgeKey): string => JSON.stringify([edge.source, edge.destination]);
  const reportedAtDestination = (table: Map<string, EdgeAccumulator>): Set<string> =>
    new Set([...table.values()].filter((edge) => edge.byReporter.destination.length > 0).map(pair));
  const chosen = (table: Map<string, EdgeAccumulator>): Array<[EdgeAccumulator, Reporter, Increase[]]> => {
    const destinationPairs = reportedAtDestination(table);
    return [...table.values()].flatMap((edge): Array<[EdgeAccumulator, Reporter, Increase[]]> => {
      const reporter: Reporter = destinationPairs.has(pair(edge)) ? 'destination' : 'source';
      const series = edge.byReporter[reporter];
      return series.length > 0 ? [[edge, reporter, series]] : [];
    });
  };

  const httpEdges: HttpEdge[] = chosen(http).map(([edge, reporter, series]) => {
    const totals = series.filter((s) => s.name === ISTIO_METRIC_NAMES.requestsTotal);
    const requests = sum(totals);
    const code = (s: Increase): number => Number(s.labels['response_code'] ?? '0');
    const errors = sum(totals.filter((s) => code(s) >= 500 || code(s) === 0));
    const denied = sum(totals.filter((s) => code(s) === 401 || code(s) === 403));
    const buckets = new Map<number, number>();
    for (const s of series) {
      if (s.name !== DURATION_BUCKET) continue;
      const le = parseValue(s.labels['le'] ?? '');
      if (!Number.isNaN(le)) buckets.set(le, (buckets.get(le) ?? 0) + s.increase);
    }
    const cumulative = [...buckets].map(([le, count]) => ({ le, count }));
    const active = totals.filter((s) => s.increase > 0);
    return {
      source: edge.source,
      destination: edge.destination,
      service: edge.service,
      reporter,
      requests,
      rps: perSecond(requests),
      successRate: requests > 0 ? (requests - errors) / requests : null,
      denied,
      errors,
      p50Ms: requests > 0 ? histogramQuantile(0.5, cumulative) : null,
      p99Ms: requests > 0 ? histogramQuantile(0.99, cumulative) : null,
      mtls: mtlsOf(active.length > 0 ? active : totals),
    };
  });

  // A TCP destination names the service only by its own canonical name; the caller knows the host.
  const callerHosts = new Map<string, Set<string>>();
  for (const edge of tcp.values()) {
    if (edge.byReporter.source.length === 0) continue;
    const hosts = callerHosts.get(pair(edge)) ?? new Set<string>();
    callerHosts.set(pair(edge), hosts.add(edge.service));
  }
  const tcpService = (edge: EdgeAccumulator, reporter: Reporter): string => {
    const hosts = callerHosts.get(pair(edge));
    return reporter === 'destination' && !edge.service.includes('.') && hosts?.size === 1 ? [...hosts][0] ?? edge.service : edge.service;
  };
  const tcpEdges: TcpEdge[] = chosen(tcp).map(([edge, reporter, series]) => {
    const of = (name: string): number => sum(series.filter((s) => s.name === name));
    const opened = of(ISTIO_METRIC_NAMES.tcpOpened);
    const active = series.filter((s) => s.increase > 0);
    return {
      source: edge.source,
      destination: edge.destination,
      service: tcpService(edge, reporter),
      reporter,
      connectionsOpened: opened,
      connectionsClosed: of(ISTIO_METRIC_NAMES.tcpClosed),
      cps: perSecond(opened),
      sentBytesPerSecond: perSecond(of(ISTIO_METRIC_NAMES.tcpSentBytes)),
      receivedBytesPerSecond: perSecond(of(ISTIO_METRIC_NAMES.tcpReceivedBytes)),
      mtls: mtlsOf(active.length > 0 ? active : series),
    };
  });

  const byName = (a: EdgeKey, b: EdgeKey): number => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination) || a.service.localeCompare(b.service);
  httpEdges.sort((a, b) => b.rps - a.rps || byName(a, b));
  tcpEdges.sort((a, b) => b.cps - a.cps || b.sentBytesPerSecond + b.receivedBytesPerSecond - (a.sentBytesPerSecond + a.receivedBytesPerSecond) || byName(a, b));
  return { intervalSeconds: interval, proxies, http: httpEdges, tcp: tcpEdges };
}

// ---- text table ----

function formatNumber(value: number, digits: number): string {
  return value.toFixed(digits);
}

function formatMs(value: number | null): string {
  if (value === null) return '-';
  return value >= 100 ? `${Math.round(value)}ms` : `${value.toFixed(value >= 10 ? 1 : 2)}ms`;
}

function formatBytes(perSecond: number): string {
  if (perSecond >= 1024 * 1024) return `${(perSecond / (1024 * 1024)).toFixed(1)}MiB/s`;
  if (perSecond >= 1024) return `${(perSecond / 1024).toFixed(1)}KiB/s`;
  return `${perSecond.toFixed(0)}B/s`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
}

/** The sample as the text tables `trellis top` prints (no trailing newline). */
export function formatTopText(sample: TopSample): string {
  const lines: string[] = [];
  if (sample.http.length === 0 && sample.tcp.length === 0) lines.push('No traffic seen yet.');
  if (sample.http.length > 0) {
    const rows = [['SOURCE', 'DESTINATION', 'SERVICE', 'RPS', 'SUCCESS', 'DENIED', 'P50', 'P99', 'MTLS']];
    for (const e of sample.http) {
      rows.push([
        e.source,
        e.destination,
        e.service,
        formatNumber(e.rps, 2),
        e.successRate === null ? '-' : `${(e.successRate * 100).toFixed(1)}%`,
        String(e.denied),
        formatMs(e.p50Ms),
        formatMs(e.p99Ms),
        e.mtls,
      ]);
    }
    lines.push(...table(rows));
  }
  if (sample.tcp.length > 0) {
    if (lines.length > 0) lines.push('');
    const rows = [['SOURCE', 'DESTINATION', 'SERVICE', 'CONN/S', 'OPENED', 'CLOSED', 'SENT', 'RECEIVED', 'MTLS']];
    for (const e of sample.tcp) {
      rows.push([e.source, e.destination, e.service, formatNumber(e.cps, 2), String(e.connectionsOpened), String(e.connectionsClosed), formatBytes(e.sentBytesPerSecond), formatBytes(e.receivedBytesPerSecond), e.mtls]);
    }
    lines.push(...table(rows));
  }
  return lines.join('\n');
}
