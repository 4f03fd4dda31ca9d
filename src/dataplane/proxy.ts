/**
 * A running sidecar proxy: bootstrap the SVID (join token, or the one kept in the state
 * directory), build the sidecar around it, follow the control plane's pushes, and serve the admin
 * endpoint. While the control plane is away the proxy keeps serving with what it has.
 */
import { mkdirSync } from 'node:fs';
import type { ProxyTracer, TracingOptions } from '../telemetry/tracing.js';
import type { Logger } from 'pino';
import { errorMessage, isTrellisError } from '../api/errors.js';
import type { TrustBundle } from '../identity/bundle.js';
import { readSvidFiles, type Svid, writeSvidFiles } from '../identity/svid.js';
import { AdminServer } from './admin.js';
import { DiscoveryClient } from './discovery-client.js';
import { Sidecar, type SidecarOptions, type UpstreamBinding } from './sidecar.js';

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
  log: Logger;
}

export interface RunningProxy {
  sidecar: Sidecar;
  client: DiscoveryClient;
  adminPort: number;
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
      logger: log,
      apply: (type, resource, version) => (holder.sidecar ? holder.sidecar.apply(type, resource, version) : { ok: false, error: 'the sidecar is not built yet' }),
    });
  // A join token given now comes first: the operator is (re)joining on purpose, e.g. after the
  // kept certificate was revoked. If the token is spent (a restart with the same environment),
  // a still-valid kept certificate takes over.
  let client = newClient(options.joinToken ? { joinToken: options.joinToken } : kept ? { kept } : {});
  let svid: Svid;
  try {
    svid = await client.bootstrap();
  } catch (err) {
    client.stop();
    if (!(options.joinToken && kept && isTrellisError(err, 'TRELLIS_CA_REFUSED'))) throw err;
    log.info({ event: 'bootstrap.kept_certificate', reason: errorMessage(err) }, 'the join token was refused; using the certificate kept in the state directory');
    client = newClient({ kept });
    svid = await client.bootstrap();
  }
  const sidecarOptions: SidecarOptions = {
    localHost: '127.0.0.1',
    app: { host: options.appHost ?? '127.0.0.1', ports: options.appPorts },
    upstreams: options.upstreams ?? [],
    log,
    ...(tracer ? { tracer } : {}),
    ...(options.outboundPort === undefined ? {} : { outboundPort: options.outboundPort }),
    ...(options.inboundHost ? { inboundHost: options.inboundHost } : {}),
    onDecision: (request, decision) => {
      if (decision.decision === 'DENY') {
        log.info(
          // The query is left out: it may carry a token (access_token), and logs must not.
          { event: 'authz.deny', source: request.connection.peer?.identity.toString() ?? request.connection.sourceIp, method: request.method, path: request.path.split('?')[0], policy: decision.policy, stage: decision.stage, reason: decision.reason },
          'request denied',
        );
      }
    },
    onConnectionDecision: (connection, decision) => {
      if (decision.decision === 'DENY') {
        log.info({ event: 'authz.deny', protocol: 'tcp', source: connection.peer?.identity.toString() ?? connection.sourceIp, port: connection.destPort, policy: decision.policy, reason: decision.reason }, 'connection denied');
      }
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

  const admin = new AdminServer(() => built, { connected: () => client.connected });
  let adminPort: number;
  try {
    adminPort = await admin.listen(options.adminPort);
    client.connect();
    await waitUntilReady(built, readyTimeoutMs);
  } catch (err) {
    // Leave nothing running behind a proxy that could not start.
    client.stop();
    await Promise.all([built.close(), admin.close()]);
    throw err;
  }
  log.info({ event: 'proxy.ready', admin: adminPort, listening: built.listening, identity: svid.id.toString() }, 'proxy ready');
  return {
    sidecar: built,
    client,
    adminPort,
    get outboundPort() {
      return built.listening.outbound;
    },
    async stop() {
      client.stop();
      await Promise.all([built.close(), admin.close()]);
    },
  };
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
