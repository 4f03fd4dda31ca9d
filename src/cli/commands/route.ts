import type { Command } from 'commander';
import type { ConfigSet } from '../../api/config-set.js';
import { formatDiagnostic } from '../../api/diagnostics.js';
import { loadConfigPaths } from '../../api/loader.js';
import { isHeaderName, parsePortText } from '../../api/names.js';
import { compileSnapshot } from '../../mesh/compile.js';
import { buildRegistry } from '../../mesh/registry.js';
import type { ProxySnapshot, TrustSnapshot } from '../../mesh/snapshot.js';
import { findWorkloadEntry } from '../../mesh/workloads.js';
import {
  describeConnectionPool,
  describeLoadBalancer,
  describeOutlierDetection,
  type DestinationExplanation,
  explainRoute,
  type RouteCheckRequest,
  type RouteExplanation,
} from '../../traffic/explain.js';
import { parseHeaderFlags, parseOutputFormat, printJson, printLine, usageError } from '../output.js';

/**
 * `trellis route check`: asks what the sidecar of a workload would do with one outbound request —
 * which VirtualService route, which destinations and clusters, which timeout, retries, fault and
 * mirrors, and whether egress policy lets it out — by compiling that workload's snapshot from
 * config files and running the outbound path's own lookup and route selection on it
 * (src/traffic/explain.ts). Exit 0 when the request would be routed (or answered by a redirect
 * or direct response route), ROUTE_REFUSED_EXIT_CODE when no route matches or egress blocks it,
 * 2 on invalid input, including invalid config.
 */

/** Evaluated, and the request would not reach a destination (no route, or egress blocked). */
export const ROUTE_REFUSED_EXIT_CODE = 3;

interface RouteCheckOptions {
  filename?: string[];
  from?: string;
  host?: string;
  port?: string;
  method?: string;
  path?: string;
  header: string[];
  tcp?: boolean;
  output: string;
}

/** `trellis route check` compiles the snapshot without a CA: the trust part is not used. */
const NO_TRUST: TrustSnapshot = { trustDomain: '', bundle: { keys: [] }, revocations: { sequence: 0, serials: [], identities: [] } };

export function registerRoute(program: Command): void {
  const route = program.command('route').description('traffic management: ask where the mesh would send a request');
  route
    .command('check')
    .description("route one outbound request of a workload against config files, and explain the route, destinations and egress decision")
    .option('-f, --filename <paths...>', 'YAML files or directories with the mesh config (repeatable)')
    .option('--from <namespace/workloadentry>', 'the calling workload: a WorkloadEntry in the config')
    .option('--host <host[:port]>', 'the destination as the application names it (reviews, reviews.default:9080, api.example.com)')
    .option('--port <n>', 'destination port when --host has none (default: the service\'s only port, else 80)')
    .option('--method <method>', 'HTTP method (default GET)')
    .option('--path <path>', 'HTTP request target, with an optional ?query (default /)')
    .option('--header <"Name: value">', 'HTTP request header (repeatable)', (value: string, all: string[]) => [...all, value], [])
    .option('--tcp', 'a plain TCP connection: the tcp routes, whatever the port\'s protocol')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (options: RouteCheckOptions) => {
      const format = parseOutputFormat(options.output);
      const paths = options.filename ?? [];
      if (paths.length === 0) throw usageError('route check needs at least one -f PATH');
      if (options.from === undefined) throw usageError('route check needs --from NAMESPACE/WORKLOADENTRY');
      if (options.host === undefined) throw usageError('route check needs --host HOST');
      const input = buildRequest(options);

      const loaded = await loadConfigPaths(paths);
      if (!loaded.config) {
        for (const d of loaded.errors) process.stderr.write(`${formatDiagnostic(d)}\n`);
        throw usageError(`the config is invalid (${loaded.errors.length} errors): nothing was evaluated`);
      }
      const snapshot = compileFor(loaded.config, options.from);
      const explanation = explainRoute(snapshot, input);
      if (format === 'json') printJson(explanation);
      else printText(explanation);
      process.exitCode = explanation.outcome === 'no-route' || explanation.outcome === 'blocked' ? ROUTE_REFUSED_EXIT_CODE : 0;
    });
}

function compileFor(config: ConfigSet, from: string): ProxySnapshot {
  const parts = from.split('/');
  if (parts.length !== 2 || parts.some((p) => p === '')) throw usageError(`--from "${from}": expected NAMESPACE/WORKLOADENTRY`);
  const [namespace = '', name = ''] = parts;
  const snapshot = findWorkloadEntry(config, namespace, name) ? compileSnapshot(config, buildRegistry(config), from, NO_TRUST) : undefined;
  if (!snapshot) {
    const known = config.workloadEntries.map((e) => `${e.metadata.namespace ?? ''}/${e.metadata.name}`);
    throw usageError(`--from "${from}": no WorkloadEntry ${namespace}/${name} in the config${known.length > 0 ? ` (known: ${known.join(', ')})` : ' (it has no WorkloadEntry)'}`);
  }
  return snapshot;
}

function buildRequest(options: RouteCheckOptions): RouteCheckRequest {
  const host = (options.host ?? '').trim();
  if (host === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(host) || /[/\s?#@]/.test(host)) {
    throw usageError(`--host "${options.host ?? ''}": expected a host name with an optional :port, such as reviews or reviews.default:9080 (put the path in --path)`);
  }
  const hostPort = /:(\d+)$/.exec(host)?.[1];
  if (hostPort !== undefined && parsePortText(hostPort) === undefined) throw usageError(`--host "${host}": a port is a number from 1 to 65535`);
  let port: number | undefined;
  if (options.port !== undefined) {
    port = parsePortText(options.port);
    if (port === undefined) throw usageError(`--port "${options.port}": a port is a number from 1 to 65535`);
    if (hostPort !== undefined && Number(hostPort) !== port) throw usageError(`--host "${host}" and --port ${port} name different ports: give the port once`);
  }
  if (options.tcp === true) {
    const used = (['method', 'path'] as const).filter((flag) => options[flag] !== undefined).map((flag) => `--${flag}`);
    if (options.header.length > 0) used.push('--header');
    if (used.length > 0) throw usageError(`--tcp checks a plain TCP connection: remove the HTTP flags ${used.join(', ')}`);
    return { host, ...(port === undefined ? {} : { port }), tcp: true };
  }
  const method = options.method ?? 'GET';
  if (!isHeaderName(method)) throw usageError(`--method "${method}": not an HTTP method token`);
  const path = options.path ?? '/';
  if (!path.startsWith('/')) throw usageError(`--path "${path}": an origin-form request target starts with /`);
  const headers = parseHeaderFlags(options.header);
  return { host, ...(port === undefined ? {} : { port }), method, path, headers };
}

const VERDICTS: Record<RouteExplanation['outcome'], string> = {
  routed: 'ROUTED',
  redirect: 'REDIRECT',
  'direct-response': 'DIRECT RESPONSE',
  passthrough: 'PASSTHROUGH',
  'no-route': 'NO ROUTE',
  blocked: 'BLOCKED',
};

function printText(e: RouteExplanation): void {
  const what = e.request.protocol === 'TCP' ? 'TCP connection' : `${e.request.method ?? 'GET'} ${e.request.path ?? '/'}`;
  const to = e.service === null ? `${e.request.host.replace(/:\d+$/, '')}:${e.request.port} (not registered)` : `${e.service.host}:${e.service.port} (${e.service.protocol}, ${e.service.location})`;
  printLine(`${VERDICTS[e.outcome]}: ${what} to ${e.request.host} from ${e.from} → ${to}`);
  switch (e.outcome) {
    case 'blocked':
      printLine(`  egress: BLOCKED: ${e.egress}`);
      printLine(`  the proxy answers: ${e.localReply ?? 502} (flag NR)`);
      break;
    case 'no-route':
      if (e.noMatch === null || e.noMatch.length === 0) printLine(`  ${e.explanation}`);
      else {
        printLine(`  no route of ${e.virtualService === null ? 'the default route table' : `VirtualService ${e.virtualService}`} matched:`);
        for (const r of e.noMatch) printLine(`    route ${r.route}: ${r.failures.join('; ') || 'no match entries'}`);
      }
      printLine(`  the proxy answers: ${e.localReply === null ? 'it closes the connection' : `${e.localReply} (route not found, flag NR)`}`);
      printLine(`  egress: allowed (${e.egressPolicy.reason})`);
      break;
    default:
      printDetails(e);
  }
  for (const note of e.notes) printLine(`  note: ${note}`);
}

function printDetails(e: RouteExplanation): void {
  printLine(`  ${e.explanation}`);
  if (e.redirect !== null) printLine(`  redirect: ${e.redirect.status} to ${e.redirect.location}`);
  if (e.directResponse !== null) printLine(`  direct response: ${e.directResponse.status}${e.directResponse.body === null ? '' : ` ${JSON.stringify(e.directResponse.body)}`}`);
  if (e.destinations.length > 0) {
    printLine('  destinations:');
    for (const d of e.destinations) printDestination(d, e.destinations.length);
  }
  if (e.rewrite !== null) printLine(`  rewrite: ${JSON.stringify(e.rewrite)}`);
  if (e.request.protocol === 'HTTP' && e.outcome !== 'passthrough') {
    if (e.outcome === 'routed') {
      printLine(`  timeout: ${e.timeout ?? "none (Istio's default for HTTP routes)"}`);
      printLine(`  retries: ${retriesText(e.retries)}`);
    }
    printLine(`  fault: ${faultText(e.fault)}`);
    if (e.outcome === 'routed') printLine(`  mirror: ${e.mirror.length === 0 ? 'none' : e.mirror.map((m) => `${m.percentage}% to ${m.host}:${m.port}${m.subset === null ? '' : ` subset ${m.subset}`} (${m.cluster})`).join('; ')}`);
  }
  printLine(`  egress: allowed (${e.egressPolicy.reason})`);
}

function printDestination(d: DestinationExplanation, count: number): void {
  const weight = count === 1 ? '100%' : `${d.weight}%`;
  printLine(`    ${weight.padStart(4)}  ${d.host}:${d.port}${d.subset === null ? '' : ` subset ${d.subset}`}  cluster ${d.cluster}`);
  const indent = '          ';
  if (d.loadBalancer !== null) printLine(`${indent}load balancer: ${describeLoadBalancer(d.loadBalancer)}${d.destinationRule === null ? ' (no DestinationRule: Istio\'s default)' : ` (DestinationRule ${d.destinationRule})`}`);
  if (d.connectionPool !== null) printLine(`${indent}connection pool: ${describeConnectionPool(d.connectionPool)}; outlier detection: ${describeOutlierDetection(d.outlierDetection)}`);
  if (d.tls !== null) printLine(`${indent}tls: ${d.tls}${d.location === null ? '' : `, ${d.location}`}`);
  const endpoints = d.endpoints.map((ep) => `${ep.workload} ${ep.address}:${ep.port}`);
  printLine(`${indent}endpoints: ${endpoints.length === 0 ? 'none' : endpoints.join(', ')}`);
}

function retriesText(r: RouteExplanation['retries']): string {
  if (r === null) return 'none';
  const source = r.default ? 'Istio\'s default (the route sets none): ' : '';
  if (r.attempts === 0) return `${source}disabled (attempts 0)`;
  const codes = r.retriableStatusCodes.length === 0 ? '' : `, status codes ${r.retriableStatusCodes.join(',')}`;
  const hosts = r.retryIgnorePreviousHosts ? 'other endpoints first' : 'same endpoint allowed';
  return `${source}${r.attempts} retr${r.attempts === 1 ? 'y' : 'ies'} on ${r.retryOn.join(',')}${codes}; per-try timeout ${r.perTryTimeout ?? 'none'}; backoff ${r.backoffBase} base; ${hosts}`;
}

function faultText(f: RouteExplanation['fault']): string {
  if (f === null) return 'none';
  const parts: string[] = [];
  if (f.delay) parts.push(`delay ${f.delay.fixedDelay} for ${f.delay.percentage}% of requests`);
  if (f.abort) parts.push(`abort with ${f.abort.httpStatus !== undefined ? `HTTP ${f.abort.httpStatus}` : `gRPC status ${f.abort.grpcStatus ?? '?'}`} for ${f.abort.percentage}% of requests`);
  return parts.join('; ');
}
