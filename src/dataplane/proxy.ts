/**
 * A running sidecar proxy: bootstrap the SVID (join token, or the one kept in the state
 * directory), build the sidecar around it, follow the control plane's pushes, and serve the admin
 * endpoint. While the control plane is away the proxy keeps serving with what it has.
 */
import { mkdirSync } from 'node:fs';
import type { ProxyTracer, TracingOptions } from '../telemetry/tracing.js';
import type { Logger } from 'pino';
import { errorMessage, isTrellisError, TrellisError } from '../api/errors.js';
import type { TrustBundle } from '../identity/bundle.js';
import { readSvidFiles, type Svid, writeSvidFiles } from '../identity/svid.js';
import type { AllowSampling, AuditSinkSpec } from '../api/audit-config.js';
import { AdminServer } from './admin.js';
import { RESOURCE_TYPES, type ResourceType } from '../mesh/snapshot.js';
import { AccessLogWriter } from '../telemetry/access-log.js';
import { ProxyMetrics } from '../telemetry/istio-metrics.js';
import { MetricsServer } from '../telemetry/metrics-server.js';
import { ProxyAudit } from './audit.js';
import { DiscoveryClient } from './discovery-client.js';
import { Sidecar, type SidecarOptions, type UpstreamBinding } from './sidecar.js';
import { DataPlaneTelemetry } from './telemetry.js';

export interface ProxyOptions {
  /** `namespace/name` of this workload's WorkloadEntry. */
  workload: string;
  /** Discovery address, `host:port`. */
  controlPlane: string;
  /** The bundle that authenticates the control plane (e.g. <control plane state>/ca/bundle.pem). */
  caBundle: string;
  joinToken?: string;
  /** Keeps the SVID (key 0600) so a restart needs no new token while it is valid. */
  stateDir?: string;
  /** Application ports by workload port name, or one port for all. */
  appPorts: Record<string, number> | number;
  appHost?: string;
  /** HTTP proxy port for the app (Istio's 15001); 0 picks a free port; undefined: none. */
  outboundPort?: number;
  upstreams?: UpstreamBinding[];
  /** Admin port (Istio's 15000); 0 picks a free port. Loopback only. */
  adminPort: number;
  /** Overrides the inbound bind address (default: the WorkloadEntry address). */
  inboundHost?: string;
  /** Spans over OTLP/HTTP to a collector (Istio's tracing); absent: trace headers pass unchanged. */
  tracing?: Omit<TracingOptions, 'log'>;
  trustDomain?: string;
  rootNamespace?: string;
  /** Requested certificate lifetime (default: the CA's, 1h). */
  svidTtlSeconds?: number;
  /**
   * Prometheus metrics (Istio's 15020): where to serve them; absent: no metrics at all.
   * `required: false` (the CLI's default port) lets the proxy run without them when the port is taken.
   */
  metrics?: { host: string; port: number; required: boolean };
  /** Access log destination: a file path, `stdout` or `stderr`; absent: off. */
  accessLog?: string;
  /** Audit log: local sinks besides the control plane, and this proxy's allow sampling (overrides MeshConfig). */
  audit?: { sinks?: AuditSinkSpec[]; allows?: AllowSampling };
  log: Logger;
}

export interface RunningProxy {
  sidecar: Sidecar;
  client: DiscoveryClient;
  audit: ProxyAudit;
  adminPort: number;
  /** The metrics port, when metrics are served. */
  metricsPort: number | undefined;
  /** The HTTP proxy port, once listening. */
  outboundPort: number | undefined;
  stop(): Promise<void>;
}

/** Starts a proxy and waits until it is ready (listening with a full snapshot) or `readyTimeoutMs` passes. */
export async function startProxy(options: ProxyOptions, readyTimeoutMs = 30_000): Promise<RunningProxy> {
  const log = options.log;
  // Loaded only when tracing is on: the OpenTelemetry SDK stays out of proxies that do not trace.
  const tracer: ProxyTracer | undefined = options.tracing ? new (await import('../telemetry/tracing.js')).ProxyTracer({ ...options.tracing, log }) : undefined;
  const kept = options.stateDir ? loadKeptSvid(options.stateDir, log) : undefined;
  // The sidecar is built once the SVID exists; pushes can only arrive after that (connect()).
  const holder: { sidecar?: Sidecar } = {};
  const newClient = (proof: { joinToken?: string; kept?: NonNullable<typeof kept> }): DiscoveryClient =>
    new DiscoveryClient({
      address: options.controlPlane,
      workload: options.workload,
      bundle: options.caBundle,
      ...(options.trustDomain ? { trustDomain: options.trustDomain } : {}),
      ...(options.rootNamespace ? { rootNamespace: options.rootNamespace } : {}),
      ...(proof.joinToken ? { joinToken: proof.joinToken } : {}),
      ...(proof.kept ? { svid: proof.kept } : {}),
      ...(options.svidTtlSeconds ? { svidTtlSeconds: options.svidTtlSeconds } : {}),
      ...(options.metrics && telemetry.server ? { metricsAddress: hostPort(options.metrics.host, telemetry.server.port) } : {}),
      logger: log,
      apply: (type, resource, version) => (holder.sidecar ? holder.sidecar.apply(type, resource, version) : { ok: false, error: 'the sidecar is not built yet' }),
    });
  // A join token given now comes first: the operator is (re)joining on purpose, e.g. after the
  // kept certificate was revoked. If the token is spent (a restart with the same environment),
  // a still-valid kept certificate takes over.
  // Ports first: a metrics port that cannot open must not cost a join token.
  const telemetry = await startTelemetry(options);
  let client = newClient(options.joinToken ? { joinToken: options.joinToken } : kept ? { kept } : {});
  let svid: Svid;
  try {
    try {
      svid = await client.bootstrap();
    } catch (err) {
      client.stop();
      if (!(options.joinToken && kept && isTrellisError(err, 'TRELLIS_CA_REFUSED'))) throw err;
      log.info({ event: 'bootstrap.kept_certificate', reason: errorMessage(err) }, 'the join token was refused; using the certificate kept in the state directory');
      client = newClient({ kept });
      svid = await client.bootstrap();
    }
  } catch (err) {
    await telemetry.close();
    throw err;
  }
  const reporter = client;
  const audit = new ProxyAudit({
    sinks: options.audit?.sinks ?? [],
    ...(options.audit?.allows === undefined ? {} : { allows: options.audit.allows }),
    report: (records) => reporter.reportAudit(records),
    workload: () => reporter.snapshot?.workload,
    configuredAllows: () => reporter.snapshot?.inbound.audit?.allows,
    log,
  });
  const sidecarOptions: SidecarOptions = {
    telemetry: telemetry.hooks,
    localHost: '127.0.0.1',
    app: { host: options.appHost ?? '127.0.0.1', ports: options.appPorts },
    upstreams: options.upstreams ?? [],
    log,
    ...(tracer ? { tracer } : {}),
    ...(options.outboundPort === undefined ? {} : { outboundPort: options.outboundPort }),
    ...(options.inboundHost ? { inboundHost: options.inboundHost } : {}),
    onDecision: (request, decision) => {
      telemetry.hooks.authzDecision(decision);
      if (decision.decision === 'DENY') {
        log.info(
          // The query is left out: it may carry a token (access_token), and logs must not.
          { event: 'authz.deny', source: request.connection.peer?.identity.toString() ?? request.connection.sourceIp, method: request.method, path: request.path.split('?')[0], policy: decision.policy, stage: decision.stage, reason: decision.reason },
          'request denied',
        );
      }
      audit.onRequest(request, decision);
    },
    onConnectionDecision: (connection, decision) => {
      telemetry.hooks.authzDecision(decision);
      if (decision.decision === 'DENY') {
        log.info({ event: 'authz.deny', protocol: 'tcp', source: connection.peer?.identity.toString() ?? connection.sourceIp, port: connection.destPort, policy: decision.policy, reason: decision.reason }, 'connection denied');
      }
      audit.onConnection(connection, decision);
    },
  };
  const built = new Sidecar(sidecarOptions, svid, client.trustBundle);
  holder.sidecar = built;
  if (tracer) {
    client.on('snapshot', (snapshot, update) => {
      if (update.type === 'workload' && snapshot.workload) tracer.setWorkload(snapshot.workload);
    });
  }
  if (options.stateDir) keepSvid(options.stateDir, svid, client.trustBundle, log);
  // The client logs its own connects, disconnects, NACKs and renewals.
  client.on('svid', (next, bundle) => {
    built.updateSvid(next, bundle);
    if (options.stateDir) keepSvid(options.stateDir, next, bundle, log);
  });
  watchConfig(client, telemetry, svid);

  const admin = new AdminServer(() => built, { connected: () => client.connected });
  let adminPort: number;
  try {
    adminPort = await admin.listen(options.adminPort);
    client.connect();
    await waitUntilReady(built, readyTimeoutMs);
  } catch (err) {
    // Leave nothing running behind a proxy that could not start.
    client.stop();
    await Promise.all([built.close(), admin.close(), telemetry.close(), audit.close()]);
    throw err;
  }
  const metricsPort = telemetry.server?.port;
  log.info({ event: 'proxy.ready', admin: adminPort, metrics: metricsPort ?? null, listening: built.listening, identity: svid.id.toString() }, 'proxy ready');
  return {
    sidecar: built,
    client,
    audit,
    adminPort,
    metricsPort,
    get outboundPort() {
      return built.listening.outbound;
    },
    async stop() {
      await Promise.all([built.close(), admin.close()]);
      // After the listeners drained: the last requests are counted and logged, and the last
      // decisions reach the control plane before the channel closes.
      await Promise.all([telemetry.close(), audit.close()]);
      client.stop();
    },
  };
}

interface RunningTelemetry {
  hooks: DataPlaneTelemetry;
  server: MetricsServer | undefined;
  close(): Promise<void>;
}

/**
 * Metrics registry and server, access log writer. The hooks exist even when both are off: the
 * sidecar still sends its peer metadata, for the metrics of the workloads it calls.
 */
async function startTelemetry(options: ProxyOptions): Promise<RunningTelemetry> {
  const log = options.log;
  const metrics = options.metrics ? new ProxyMetrics({ workload: {} }) : undefined;
  let server: MetricsServer | undefined;
  if (options.metrics && metrics) {
    try {
      server = await MetricsServer.start({ host: options.metrics.host, port: options.metrics.port, registries: [metrics.registry] });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (options.metrics.required || code !== 'EADDRINUSE') {
        throw new TrellisError('TRELLIS_METRICS_PORT', `cannot serve metrics on ${options.metrics.host}:${options.metrics.port}: ${errorMessage(err)}; give another --metrics-port (0: any free port) or --metrics-port off`, { exitCode: 1 });
      }
      log.warn({ event: 'metrics.port_in_use', port: options.metrics.port }, `metrics port ${options.metrics.port} is in use (another proxy on this host?): this proxy serves no metrics; give --metrics-port PORT or 0`);
    }
  }
  let accessLog: AccessLogWriter | undefined;
  try {
    accessLog = options.accessLog === undefined ? undefined : await openAccessLog(options.accessLog);
  } catch (err) {
    await server?.close();
    throw new TrellisError('TRELLIS_ACCESS_LOG', `cannot open the access log ${options.accessLog}: ${errorMessage(err)}`, { exitCode: 1 });
  }
  const hooks = new DataPlaneTelemetry({ workload: options.workload, ...(server && metrics ? { metrics } : {}), ...(accessLog ? { accessLog } : {}) });
  return {
    hooks,
    server,
    async close() {
      await Promise.all([hooks.close(), server?.close()]);
    },
  };
}

function openAccessLog(destination: string): Promise<AccessLogWriter> {
  if (destination === 'stdout') return Promise.resolve(new AccessLogWriter(process.stdout));
  if (destination === 'stderr') return Promise.resolve(new AccessLogWriter(process.stderr));
  return AccessLogWriter.toFile(destination);
}

/** Config version, NACKs, certificate expiry and this workload's own metadata, as they change. */
function watchConfig(client: DiscoveryClient, telemetry: RunningTelemetry, svid: Svid): void {
  const { hooks } = telemetry;
  const metrics = hooks.metrics;
  const certificates = (leaf: Svid, bundle: TrustBundle | undefined): void => {
    metrics?.setCertificateExpiry('leaf', leaf.notAfter);
    const roots = bundle?.roots ?? [];
    if (roots.length > 0) metrics?.setCertificateExpiry('root', new Date(Math.min(...roots.map((root) => root.notAfter.getTime()))));
  };
  certificates(svid, client.trustBundle);
  client.on('svid', (next, bundle) => certificates(next, bundle));
  client.on('nack', () => metrics?.recordConfigRejected());
  client.on('snapshot', (snapshot, update) => {
    if (update.type === 'workload' && snapshot.workload) hooks.setWorkload(snapshot.workload);
    if (update.type === 'outbound' && snapshot.outbound) hooks.setOutbound(snapshot.outbound);
    if (update.type === 'trust') certificates(client.svid ?? svid, client.trustBundle);
    metrics?.recordConfigApplied(configVersion(client.versions));
  });
}

/** One label value for the four resource versions: `workload/inbound/outbound/trust`. */
function configVersion(versions: Partial<Record<ResourceType, string>>): string {
  return RESOURCE_TYPES.map((type) => versions[type] ?? '-').join('/');
}

async function waitUntilReady(sidecar: Sidecar, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!sidecar.ready) {
    if (Date.now() > deadline) throw new Error(`the proxy did not become ready within ${timeoutMs} ms (no complete config from the control plane)`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function loadKeptSvid(dir: string, log: Logger): { svid: Svid; bundle: TrustBundle } | undefined {
  try {
    const kept = readSvidFiles(dir);
    if (kept.svid.notAfter.getTime() > Date.now()) return kept;
    log.info({ event: 'svid.kept_expired' }, 'the kept certificate has expired: a join token is needed');
  } catch {
    // Nothing kept yet.
  }
  return undefined;
}

function keepSvid(dir: string, svid: Svid, bundle: TrustBundle, log: Logger): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeSvidFiles(dir, svid, bundle);
  } catch (err) {
    log.warn({ err: errorMessage(err) }, `cannot keep the certificate in ${dir}`);
  }
}

/** `host:port`, with an IPv6 host in brackets. */
function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
