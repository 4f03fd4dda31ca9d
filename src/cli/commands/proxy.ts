import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { readControlPlaneRecord } from '../../controlplane/controlplane.js';
import { type ProxyOptions, type RunningProxy, startProxy } from '../../dataplane/proxy.js';
import type { UpstreamBinding } from '../../dataplane/sidecar.js';
import { parseDuration } from '../../api/duration.js';
import { type AllowSampling, type AuditSinkSpec, parseAllowSampling, parseAuditSinkSpec } from '../../api/audit-config.js';
import { errorMessage } from '../../api/errors.js';
import { parseSamplingPercent } from '../../telemetry/trace-context.js';
import { printLine, usageError } from '../output.js';

/** `trellis proxy` (a sidecar alone) and `trellis run` (an application with its sidecar). */
export function registerProxy(program: Command): void {
  proxyFlags(program.command('proxy').description('run a sidecar proxy for one workload (the application runs separately)')).action(async (opts: ProxyFlags) => {
    const options = await proxyOptions(opts);
    const proxy = await startProxy(options, parseDuration(opts.readyTimeout));
    printLine(JSON.stringify({ event: 'proxy.ready', workload: opts.workload, admin: proxy.adminPort, metrics: proxy.metricsPort ?? null, listening: proxy.sidecar.listening }));
    await untilSignal();
    await proxy.stop();
  });

  proxyFlags(
    program
      .command('run')
      .description('run an application with its sidecar: the app gets PORT and HTTP_PROXY, the sidecar does mTLS and policy')
      .argument('<command...>', 'the application command, after --')
      .usage('--workload NAMESPACE/NAME [options] -- COMMAND [ARGS...]'),
  ).action(async (command: string[], opts: ProxyFlags) => {
    if (opts.appPort.length === 0) opts.appPort = [String(await freePort())];
    if (opts.outboundPort === undefined) opts.outboundPort = '0';
    const options = await proxyOptions(opts);
    const proxy = await startProxy(options, parseDuration(opts.readyTimeout));
    process.exitCode = await runApplication(command, proxy, options);
  });
}

interface ProxyFlags {
  workload: string;
  controlPlane?: string;
  caBundle?: string;
  mesh?: string;
  token?: string;
  tokenFile?: string;
  state?: string;
  appPort: string[];
  appHost: string;
  outboundPort?: string;
  upstream: string[];
  adminPort: string;
  inboundHost?: string;
  trustDomain?: string;
  rootNamespace?: string;
  svidTtl?: string;
  tracingEndpoint?: string;
  tracingSampling?: string;
  tracingProtocol?: string;
  readyTimeout: string;
  logLevel: string;
  metricsPort?: string;
  metricsHost: string;
  accessLog: string;
  audit: string[];
  auditAllows?: string;
}

function proxyFlags(command: Command): Command {
  return command
    .requiredOption('--workload <namespace/name>', 'the WorkloadEntry this proxy serves')
    .option('--mesh <state-dir>', "the control plane's state directory on this host: sets --control-plane, --ca-bundle, --trust-domain and --root-namespace")
    .option('--control-plane <host:port>', 'discovery address of the control plane (port 15012 by default)')
    .option('--ca-bundle <file>', 'trust bundle that authenticates the control plane (its <state>/ca/bundle.pem)')
    .option('--trust-domain <name>', 'the mesh trust domain (default: from --mesh, else cluster.local)')
    .option('--root-namespace <name>', "the mesh root namespace, where the control plane's identity lives (default: from --mesh, else istio-system)")
    .option('--token <token>', 'join token (prefer --token-file or TRELLIS_JOIN_TOKEN: arguments are visible to other users)')
    .option('--token-file <file>', 'file holding the join token')
    .option('--state <dir>', 'keeps the certificate (key 0600) so a restart needs no new token')
    .option('--app-port <port|name=port>', 'where the application listens, per workload port name (repeatable)', collect, [])
    .option('--app-host <host>', 'where the application listens', '127.0.0.1')
    .option('--outbound-port <port>', 'HTTP proxy port for the application (0: any free port; default 15001 for proxy, any for run)')
    .option('--upstream <service:port=localport>', 'a local port that leads to one service, e.g. reviews.default.svc.cluster.local:9080=15101 (repeatable)', collect, [])
    .option('--tracing-endpoint <url>', 'export spans over OTLP/HTTP to this collector URL, e.g. http://127.0.0.1:4318/v1/traces (default: no tracing)')
    .option('--tracing-sampling <percent>', "percentage of new traces to record, 0-100 (Istio's sampling; default 1); a caller's sampled flag is always followed")
    .option('--tracing-protocol <protocol>', 'OTLP encoding: http/protobuf (default) or http/json')
    .option('--admin-port <port>', 'admin endpoint on 127.0.0.1 (0: any free port)', '15000')
    .option('--inbound-host <host>', 'bind inbound listeners here instead of the WorkloadEntry address')
    .option('--svid-ttl <duration>', "certificate lifetime to ask for (default: the CA's, 1h)")
    .option('--metrics-port <port|off>', `Prometheus metrics at /metrics and /stats/prometheus (0: any free port; off: none) (default: ${DEFAULT_METRICS_PORT}, skipped with a warning if taken)`)
    .option('--metrics-host <address>', 'address the metrics port listens on (e.g. 0.0.0.0 for a Prometheus on another host)', '127.0.0.1')
    .option('--access-log <path|stdout|stderr|off>', 'JSON access log, one line per request or TCP connection', 'off')
    .option('--audit <sink>', 'also write this proxy\'s audit records here (repeatable): stdout, file:PATH, syslog+udp://HOST:PORT, syslog+tcp://…, syslog+tls://…, or an https:// webhook; they always go to the control plane', collect, [])
    .option('--audit-allows <all|none|fraction>', 'which allowed requests this proxy audits (denials always are); overrides MeshConfig audit.allows')
    .option('--ready-timeout <duration>', 'give up (exit 1) if the proxy is not serving by then', '30s')
    .option('--log-level <level>', 'debug, info, warn or error', 'info');
}

async function proxyOptions(opts: ProxyFlags): Promise<ProxyOptions> {
  let controlPlane = opts.controlPlane;
  let caBundle = opts.caBundle;
  let trustDomain = opts.trustDomain;
  let rootNamespace = opts.rootNamespace;
  if (opts.mesh) {
    const record = readControlPlaneRecord(opts.mesh);
    controlPlane ??= record.discovery;
    caBundle ??= join(record.caDir, 'bundle.pem');
    trustDomain ??= record.trustDomain;
    rootNamespace ??= record.rootNamespace;
  }
  // Istio's discovery port when only a host is given (a bare IPv6 address gets brackets).
  if (controlPlane && !/^\[.*\]:\d+$/.test(controlPlane) && !/^[^:]*:\d+$/.test(controlPlane)) {
    controlPlane = controlPlane.includes(':') && !controlPlane.startsWith('[') ? `[${controlPlane}]:15012` : `${controlPlane}:15012`;
  }
  if (!controlPlane) throw usageError('give --control-plane HOST:PORT (or --mesh STATE_DIR on the control plane host)');
  if (!caBundle) throw usageError('give --ca-bundle FILE: the bundle that authenticates the control plane (or --mesh STATE_DIR)');
  const joinToken = opts.token ?? (opts.tokenFile ? readFileSync(opts.tokenFile, 'utf8').trim() : process.env['TRELLIS_JOIN_TOKEN']);
  return {
    workload: opts.workload,
    controlPlane,
    caBundle,
    ...(joinToken ? { joinToken } : {}),
    ...(opts.state ? { stateDir: opts.state } : {}),
    appPorts: parseAppPorts(opts.appPort),
    appHost: opts.appHost,
    outboundPort: parsePort(opts.outboundPort ?? '15001', '--outbound-port'),
    upstreams: opts.upstream.map(parseUpstream),
    adminPort: parsePort(opts.adminPort, '--admin-port'),
    ...(opts.inboundHost ? { inboundHost: opts.inboundHost } : {}),
    ...tracingOption(opts),
    ...(opts.svidTtl ? { svidTtlSeconds: Math.max(1, Math.round(parseDuration(opts.svidTtl) / 1000)) } : {}),
    ...(trustDomain ? { trustDomain } : {}),
    ...(rootNamespace ? { rootNamespace } : {}),
    ...metricsOption(opts),
    ...(opts.accessLog === 'off' || opts.accessLog === '' ? {} : { accessLog: opts.accessLog }),
    audit: auditOptions(opts),
    // Logs go to stderr: stdout belongs to the application under `trellis run`.
    log: pino({ level: opts.logLevel, base: { workload: opts.workload } }, pino.destination(2)),
  };
}

function auditOptions(opts: ProxyFlags): { sinks: AuditSinkSpec[]; allows?: AllowSampling } {
  try {
    const sinks = opts.audit.map(parseAuditSinkSpec);
    return { sinks, ...(opts.auditAllows === undefined ? {} : { allows: parseAllowSampling(opts.auditAllows) }) };
  } catch (err) {
    throw usageError(errorMessage(err));
  }
}

/** Starts the application once the sidecar is ready, forwards signals, and ends with it. */
async function runApplication(command: string[], proxy: RunningProxy, options: ProxyOptions): Promise<number> {
  const [file, ...args] = command;
  if (!file) throw usageError('give the application command after --');
  const ports = options.appPorts;
  const child = spawn(file, args, {
    stdio: 'inherit',
    env: {
      ...process.env,
      ...(typeof ports === 'number' ? { PORT: String(ports) } : {}),
      HTTP_PROXY: `http://127.0.0.1:${proxy.outboundPort}`,
      http_proxy: `http://127.0.0.1:${proxy.outboundPort}`,
      NO_PROXY: 'localhost,127.0.0.1,::1',
      no_proxy: 'localhost,127.0.0.1,::1',
      TRELLIS_WORKLOAD: options.workload,
      TRELLIS_ADMIN_PORT: String(proxy.adminPort),
      TRELLIS_JOIN_TOKEN: '',
    },
  });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((resolve) => {
    child.once('error', (err) => {
      options.log.error({ err: err.message }, `cannot start ${file}`);
      resolve(127);
    });
    child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 128 + (constants.signals[signal] ?? 15) : 1)));
  });
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  options.log.info({ event: 'app.exited', code }, `the application exited (${code}); stopping the sidecar`);
  await proxy.stop();
  options.log.info({ event: 'proxy.stopped' }, 'sidecar stopped');
  return code;
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

/** Istio's proxy metrics port. */
export const DEFAULT_METRICS_PORT = 15020;

function metricsOption(opts: ProxyFlags): Pick<ProxyOptions, 'metrics'> {
  if (opts.metricsPort === 'off') return {};
  // Only a port given on purpose must be served; the default gives way to another proxy on the host.
  const port = opts.metricsPort === undefined ? DEFAULT_METRICS_PORT : parsePort(opts.metricsPort, '--metrics-port');
  return { metrics: { host: opts.metricsHost, port, required: opts.metricsPort !== undefined } };
}

function parseAppPorts(values: string[]): Record<string, number> | number {
  if (values.length === 1 && !values[0]?.includes('=')) return parsePort(values[0] as string, '--app-port');
  const ports: Record<string, number> = {};
  for (const value of values) {
    const [name, port] = value.split('=');
    if (!name || port === undefined) throw usageError(`--app-port "${value}": with several ports, write NAME=PORT (NAME is the WorkloadEntry port name)`);
    ports[name] = parsePort(port, '--app-port');
  }
  return ports;
}

function parseUpstream(value: string): UpstreamBinding {
  const match = /^([^:=]+):(\d+)=(\d+)$/.exec(value);
  if (!match) throw usageError(`--upstream "${value}": expected SERVICE:PORT=LOCALPORT, e.g. reviews.default.svc.cluster.local:9080=15101`);
  return { service: match[1] as string, port: parsePort(match[2] as string, '--upstream'), localPort: parsePort(match[3] as string, '--upstream') };
}

function parsePort(value: string, flag: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`${flag} "${value}": expected a port number 0-65535`);
  return port;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A free loopback port for the application (the sidecar tells the app through PORT). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Istio's default sampling percentage (meshConfig.defaultConfig.tracing.sampling). */
const DEFAULT_TRACING_SAMPLING = 1;

function tracingOption(opts: ProxyFlags): Pick<ProxyOptions, 'tracing'> {
  if (opts.tracingEndpoint === undefined || opts.tracingEndpoint === '') {
    if (opts.tracingSampling !== undefined || opts.tracingProtocol !== undefined) throw usageError('--tracing-sampling and --tracing-protocol need --tracing-endpoint URL (the OTLP collector)');
    return {};
  }
  let url: URL;
  try {
    url = new URL(opts.tracingEndpoint);
  } catch {
    throw usageError(`--tracing-endpoint "${opts.tracingEndpoint}": expected a URL such as http://127.0.0.1:4318/v1/traces`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--tracing-endpoint "${opts.tracingEndpoint}": OTLP/HTTP needs an http:// or https:// URL`);
  const sampling = opts.tracingSampling ?? String(DEFAULT_TRACING_SAMPLING);
  const samplingPercent = parseSamplingPercent(sampling);
  if (samplingPercent === undefined) throw usageError(`--tracing-sampling "${sampling}": expected a percentage from 0 to 100, e.g. 1 or 0.5`);
  const protocol = opts.tracingProtocol ?? 'http/protobuf';
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') throw usageError(`--tracing-protocol "${protocol}": expected http/protobuf or http/json`);
  return { tracing: { endpoint: url.href, samplingPercent, protocol } };
}
