/**
 * The control plane, wired: config store → registry + compile → discovery server, with the
 * mesh CA (created in <state>/ca on first start), its own rotating SVID, a watcher that picks
 * up revocations and rotations made by the CLI, and the loopback admin API.
 *
 * The trust domain and root namespace are fixed for the life of the process (they define the
 * control plane's own identity and every SVID): a config change that alters them is refused.
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { ConfigSet } from '../api/config-set.js';
import type { ConfigDiagnostic } from '../api/diagnostics.js';
import { TrellisError } from '../api/errors.js';
import { CA_FILES } from '../identity/ca-state.js';
import { DEFAULT_TRUST_DOMAIN, MeshCA } from '../identity/ca.js';
import { readFileIfExists, writeFileAtomic } from '../identity/files.js';
import { SvidRotator } from '../identity/rotation.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { CONTROL_PLANE_SERVICE_ACCOUNT, DEFAULT_DISCOVERY_PORT } from '../mesh/discovery-protocol.js';
import type { InboundPolicySelector } from '../mesh/inbound-policy.js';
import { AdminServer } from './admin-server.js';
import { AuditHub } from './audit-hub.js';
import { recordConfigAudit } from './config-audit.js';
import { CaAuditFollower } from './ca-audit-follower.js';
import { CaWatcher } from './ca-watcher.js';
import type { ConfigState, ConfigStoreStatus } from './config-store.js';
import { DiscoveryServer } from './discovery-server.js';
import { ControlPlaneMetrics, type ValidationSubject } from '../telemetry/controlplane-metrics.js';
import { MetricsServer } from '../telemetry/metrics-server.js';
import { type ConfigValidation, FileConfigStore } from './file-store.js';
import type { TrustState } from './peer-auth.js';
import type { ProxySyncStatus } from './proxy-connection.js';

export const DEFAULT_ADMIN_PORT = 15014;
export const CONTROL_PLANE_RECORD = 'controlplane.json';

export interface ControlPlaneOptions {
  /** One config directory, or several merged into one config set (each watched). */
  configDir: string | readonly string[];
  stateDir: string;
  /** Where discovery listens (default 127.0.0.1). The admin API is always on loopback. */
  host?: string;
  discoveryPort?: number;
  adminPort?: number;
  /**
   * A dedicated metrics listener (e.g. on an address a Prometheus on another host reaches);
   * the loopback admin port serves /metrics in any case, like istiod's 15014.
   */
  metrics?: { host: string; port: number };
  /** For a new CA when the config has no MeshConfig trustDomain. */
  trustDomain?: string;
  logger?: Logger;
  /** Timings, for tests. */
  configDebounceMs?: number;
  configRescanIntervalMs?: number;
  pushDebounceMs?: number;
  caPollIntervalMs?: number;
  caTickIntervalMs?: number;
  selectPolicy?: InboundPolicySelector;
}

/** What `GET /status` returns. */
export interface ControlPlaneStatus {
  controlPlane: {
    identity: string;
    trustDomain: string;
    rootNamespace: string;
    discovery: string;
    startedAt: string;
    hostname: string;
    pid: number;
  };
  config: ConfigStoreStatus & { healthy: boolean };
  proxies: number;
  trust: { bundleSequence: number; roots: number; revocationSequence: number; revocations: number };
}

/** <state>/controlplane.json: lets other commands find this control plane's config and CA. */
export interface ControlPlaneRecord {
  /** The first config directory (all of them are in `configDirs`). */
  configDir: string;
  /** Every config directory, in order (absent in records written before it existed). */
  configDirs?: string[];
  caDir: string;
  trustDomain: string;
  rootNamespace: string;
  discovery: string;
  admin: string;
  /** Prometheus scrape URL: the dedicated metrics listener, else the admin port's /metrics. */
  metrics?: string;
  pid: number;
  startedAt: string;
}

export interface ControlPlane {
  readonly identity: string;
  readonly trustDomain: string;
  readonly rootNamespace: string;
  /** `host:port` proxies connect to. */
  readonly discoveryAddress: string;
  readonly discoveryPort: number;
  readonly adminPort: number;
  /** `http://127.0.0.1:<admin port>` */
  readonly adminUrl: string;
  /** Where Prometheus scrapes this control plane. */
  readonly metricsUrl: string;
  readonly metrics: ControlPlaneMetrics;
  readonly caDir: string;
  /** The bundle file operators hand to proxies for bootstrap (<state>/ca/bundle.pem). */
  readonly bundleFile: string;
  readonly ca: MeshCA;
  status(): ControlPlaneStatus;
  syncz(): ProxySyncStatus[];
  /** Re-reads bundle and revocations now (the watcher also does, within a second). */
  refreshTrust(): Promise<void>;
  /** Re-reads the config directory now (the watcher also does). */
  reloadConfig(): Promise<void>;
  stop(): Promise<void>;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const logger = options.logger ?? pino({ name: 'trellis-controlplane', level: process.env['TRELLIS_LOG_LEVEL'] ?? 'info' });
  const stateDir = resolve(options.stateDir);
  const configDirs = [...new Set((typeof options.configDir === 'string' ? [options.configDir] : options.configDir).map((dir) => resolve(dir)))];
  const configDir = configDirs[0];
  if (configDir === undefined) throw new TrellisError('TRELLIS_CONFIG_DIR', 'no config directory given: pass at least one --config DIR', { exitCode: 2 });
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const caDir = join(stateDir, 'ca');
  const startedAt = new Date();
  const host = options.host ?? '127.0.0.1';
  const metrics = new ControlPlaneMetrics();

  // Settings fixed at startup; later config sets must agree with them.
  let pinned: { trustDomain: string; rootNamespace: string } | undefined;
  const store = new FileConfigStore({
    dir: configDirs,
    stateDir,
    logger,
    validate: (config) => (pinned ? checkPinnedSettings(config, pinned.trustDomain, pinned.rootNamespace, configDir) : []),
    onValidated: (outcome) => recordValidation(metrics, outcome),
    ...(options.configDebounceMs === undefined ? {} : { debounceMs: options.configDebounceMs }),
    ...(options.configRescanIntervalMs === undefined ? {} : { rescanIntervalMs: options.configRescanIntervalMs }),
  });
  const cleanup: Array<() => Promise<void> | void> = [];
  const stopAll = async (): Promise<void> => {
    for (const step of cleanup.reverse()) await step();
    cleanup.length = 0;
  };

  // The mesh's audit log: closed last, so the events of the shutdown itself are written.
  const audit = new AuditHub({ stateDir, logger });
  cleanup.push(() => audit.close());
  const auditConfig = recordConfigAudit(store, (record) => audit.record(record));
  cleanup.push(auditConfig);

  try {
    await store.start();
    cleanup.push(() => store.stop());
    audit.configure(store.current()?.config.mesh.audit?.sinks ?? []);
    const ca = await openOrCreateCa(caDir, store.current()?.config, options.trustDomain, store.errors().length > 0);
    const caAudit = new CaAuditFollower(join(caDir, CA_FILES.audit), (record) => audit.record(record), logger);
    await caAudit.start();
    cleanup.push(() => caAudit.stop());
    const trustDomain = await ca.trustDomain();
    // With no valid config yet, keep the root namespace of the last run rather than assume the default.
    const rootNamespace = store.current()?.config.mesh.rootNamespace ?? previousRootNamespace(stateDir) ?? 'istio-system';
    const configured = store.current()?.config.mesh.trustDomain;
    if (configured !== undefined && store.current()?.config.meshConfig?.spec.trustDomain !== undefined && configured !== trustDomain) {
      throw new TrellisError('TRELLIS_TRUST_DOMAIN_MISMATCH', `MeshConfig says trustDomain "${configured}" but the CA in ${caDir} is for "${trustDomain}": fix the MeshConfig, or use another --state directory`, { exitCode: 2 });
    }
    pinned = { trustDomain, rootNamespace };
    const pin = pinned;
    // Without an explicit MeshConfig trustDomain the CA's is the mesh's (e.g. from --trust-domain).
    const effective = (state: ConfigState): ConfigState => (state.config.mesh.trustDomain === pin.trustDomain ? state : { ...state, config: { ...state.config, mesh: { ...state.config.mesh, trustDomain: pin.trustDomain } } });
    const identity = SpiffeId.forServiceAccount(trustDomain, rootNamespace, CONTROL_PLANE_SERVICE_ACCOUNT);

    // Set once the server runs; the CA watcher and SVID rotator start before it.
    const late: { discovery?: DiscoveryServer } = {};
    let revocations: number | undefined;
    const trustMetrics = (trust: TrustState): void => {
      const roots = trust.bundle.roots;
      if (roots.length > 0) metrics.setRootExpiry(new Date(Math.min(...roots.map((root) => root.notAfter.getTime()))));
      const size = trust.revocations.size;
      if (revocations !== undefined && size !== revocations) metrics.recordRevocation(size > revocations ? 'added' : 'lifted', size);
      revocations = size;
    };
    const watcher = new CaWatcher({
      ca,
      logger,
      onChange: (trust) => {
        trustMetrics(trust);
        late.discovery?.setTrust(trust);
      },
      ...(options.caPollIntervalMs === undefined ? {} : { pollIntervalMs: options.caPollIntervalMs }),
      ...(options.caTickIntervalMs === undefined ? {} : { tickIntervalMs: options.caTickIntervalMs }),
    });
    const trust = await watcher.start();
    cleanup.push(() => watcher.stop());
    trustMetrics(trust);

    // The control plane holds the CA, so it issues its own SVID directly.
    const rotator = new SvidRotator({
      id: identity,
      sign: async (csrPem) => {
        metrics.recordCsr();
        const issued = await ca.signCsr(csrPem, { kind: 'authenticated', id: identity }, { actor: 'controlplane' });
        metrics.recordCertificateIssued(Math.max(0, (issued.notAfter.getTime() - Date.now()) / 1000));
        return { chainPem: issued.chainPem, bundle: issued.bundle };
      },
    });
    const svid = await rotator.start();
    cleanup.push(() => rotator.stop());
    rotator.on('rotated', (next, bundle) => {
      logger.info({ event: 'controlplane.svid-rotated', serial: next.leaf.serialNumber, notAfter: next.notAfter.toISOString() }, 'control plane SVID renewed');
      late.discovery?.setServingSvid(next, bundle);
    });
    rotator.on('renewalFailed', (error, attempt, retryInMs) => logger.error({ event: 'controlplane.svid-renewal-failed', err: error.message, attempt, retryInMs }, 'renewing the control plane SVID failed'));

    const initial = store.current();
    const server = await DiscoveryServer.start(
      {
        ca,
        svid,
        trust,
        logger,
        host,
        port: options.discoveryPort ?? DEFAULT_DISCOVERY_PORT,
        metrics,
        ...(options.pushDebounceMs === undefined ? {} : { debounceMs: options.pushDebounceMs }),
        ...(options.selectPolicy === undefined ? {} : { selectPolicy: options.selectPolicy }),
        onAudit: (record) => audit.record(record),
      },
      initial === undefined ? undefined : effective(initial),
    );
    late.discovery = server;
    cleanup.push(() => server.stop());
    const unsubscribe = store.onChange((state) => {
      server.setConfig(effective(state));
      audit.configure(state.config.mesh.audit?.sinks ?? []);
    });
    cleanup.push(unsubscribe);

    const discoveryAddress = `${host.includes(':') ? `[${host}]` : host}:${server.port}`;
    const status = (): ControlPlaneStatus => {
      const config = store.status();
      const current = watcher.current;
      return {
        controlPlane: { identity: identity.toString(), trustDomain, rootNamespace, discovery: discoveryAddress, startedAt: startedAt.toISOString(), hostname: hostname(), pid: process.pid },
        config: { ...config, healthy: config.errors.length === 0 && config.version !== undefined },
        proxies: server.syncz().length,
        trust: { bundleSequence: current.bundle.sequence, roots: current.bundle.roots.length, revocationSequence: current.revocations.sequence, revocations: current.revocations.size },
      };
    };
    const admin = await AdminServer.start({
      host: '127.0.0.1',
      port: options.adminPort ?? DEFAULT_ADMIN_PORT,
      logger,
      routes: { status, syncz: () => ({ configVersion: server.configVersion ?? null, proxies: server.syncz() }), ready: () => store.current() !== undefined, metrics: () => metrics.exposition(), audit: (req, res) => audit.serve(req, res) },
    });
    cleanup.push(() => admin.stop());
    const adminUrl = `http://127.0.0.1:${admin.port}`;
    let metricsServer: MetricsServer | undefined;
    if (options.metrics) {
      try {
        metricsServer = await MetricsServer.start({ host: options.metrics.host, port: options.metrics.port, registries: [metrics.registry] });
      } catch (err) {
        throw new TrellisError('TRELLIS_METRICS_PORT', `cannot serve metrics on ${options.metrics.host}:${options.metrics.port}: ${(err as Error).message}; give another --metrics-port (0: any free port)`, { exitCode: 1 });
      }
      const started = metricsServer;
      cleanup.push(() => started.close());
    }
    const metricsUrl = metricsServer ? metricsServer.url() : `${adminUrl}/metrics`;

    const record: ControlPlaneRecord = { configDir, configDirs, caDir, trustDomain, rootNamespace, discovery: discoveryAddress, admin: adminUrl, metrics: metricsUrl, pid: process.pid, startedAt: startedAt.toISOString() };
    writeFileAtomic(join(stateDir, CONTROL_PLANE_RECORD), `${JSON.stringify(record, null, 2)}\n`);
    logger.info({ event: 'controlplane.ready', identity: identity.toString(), discovery: discoveryAddress, admin: adminUrl, metrics: metricsUrl, config: configDirs, ca: caDir, configVersion: store.current()?.version ?? null }, 'control plane ready');

    return {
      identity: identity.toString(),
      trustDomain,
      rootNamespace,
      discoveryAddress,
      discoveryPort: server.port,
      adminPort: admin.port,
      adminUrl,
      metricsUrl,
      metrics,
      caDir,
      bundleFile: join(caDir, CA_FILES.bundlePem),
      ca,
      status,
      syncz: () => server.syncz(),
      refreshTrust: () => watcher.refresh(),
      reloadConfig: () => store.reload(),
      stop: async () => {
        await stopAll();
        logger.info({ event: 'controlplane.stopped' }, 'control plane stopped');
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** galley_validation_* per resource of a changed config set, and the set's outcome. */
function recordValidation(metrics: ControlPlaneMetrics, outcome: ConfigValidation): void {
  metrics.recordConfigChange(outcome.accepted ? 'accepted' : 'refused');
  // Diagnostics name their resource as `Kind namespace/name` (or `Kind name`).
  const failed = new Map<string, string>();
  for (const error of outcome.errors) if (!failed.has(error.resource ?? '')) failed.set(error.resource ?? '', error.code);
  const matched = new Set<string>();
  for (const resource of outcome.resources) {
    const { name, namespace } = resource.metadata;
    const label = `${resource.kind} ${namespace === undefined ? name : `${namespace}/${name}`}`;
    const subject = validationSubject(resource.apiVersion, resource.kind);
    const code = failed.get(label);
    if (code === undefined) {
      metrics.recordValidationPassed(subject);
    } else {
      matched.add(label);
      metrics.recordValidationFailed(subject, code);
    }
  }
  // Errors with no parsed resource behind them (YAML syntax, unknown kinds, unreadable files).
  for (const [label, code] of failed) {
    if (matched.has(label)) continue;
    const kind = label.split(' ')[0] ?? '';
    metrics.recordValidationFailed({ group: 'unknown', version: 'unknown', resource: kind === '' ? 'unknown' : pluralOf(kind) }, code);
  }
}

function validationSubject(apiVersion: string, kind: string): ValidationSubject {
  const slash = apiVersion.indexOf('/');
  return { group: slash < 0 ? '' : apiVersion.slice(0, slash), version: slash < 0 ? apiVersion : apiVersion.slice(slash + 1), resource: pluralOf(kind) };
}

/** Kubernetes' lower-case plural resource name: AuthorizationPolicy → authorizationpolicies. */
function pluralOf(kind: string): string {
  const lower = kind.toLowerCase();
  if (/[^aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  if (/(s|x|ch|sh)$/.test(lower)) return `${lower}es`;
  return `${lower}s`;
}

/** Reads <state>/controlplane.json, written by a running (or the last) control plane. */
export function readControlPlaneRecord(stateDir: string): ControlPlaneRecord {
  const path = join(stateDir, CONTROL_PLANE_RECORD);
  const text = readFileIfExists(path);
  if (text === undefined) {
    throw new TrellisError('TRELLIS_STATE_DIR', `${path} not found: start the control plane once with "trellis controlplane --state ${stateDir} --config DIR"`, { exitCode: 2 });
  }
  try {
    return JSON.parse(text) as ControlPlaneRecord;
  } catch (err) {
    throw new TrellisError('TRELLIS_STATE_DIR', `${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function previousRootNamespace(stateDir: string): string | undefined {
  try {
    return readControlPlaneRecord(stateDir).rootNamespace;
  } catch {
    return undefined;
  }
}

async function openOrCreateCa(caDir: string, config: ConfigSet | undefined, flagTrustDomain: string | undefined, configInvalid: boolean): Promise<MeshCA> {
  if (readFileIfExists(join(caDir, CA_FILES.state)) !== undefined) {
    const ca = MeshCA.open(caDir);
    const existing = await ca.trustDomain();
    if (flagTrustDomain !== undefined && flagTrustDomain !== existing) {
      throw new TrellisError('TRELLIS_TRUST_DOMAIN_MISMATCH', `--trust-domain ${flagTrustDomain} differs from the trust domain of the existing CA in ${caDir} (${existing})`, { exitCode: 2 });
    }
    return ca;
  }
  const fromConfig = config?.meshConfig?.spec.trustDomain;
  if (fromConfig !== undefined && flagTrustDomain !== undefined && fromConfig !== flagTrustDomain) {
    throw new TrellisError('TRELLIS_TRUST_DOMAIN_MISMATCH', `--trust-domain ${flagTrustDomain} differs from MeshConfig trustDomain ${fromConfig}: give one of them`, { exitCode: 2 });
  }
  // A CA's trust domain is for life: do not guess it from a config that did not load.
  if (configInvalid && flagTrustDomain === undefined) {
    throw new TrellisError('TRELLIS_CONFIG_INVALID', 'the config is invalid (see the errors above) and there is no CA yet, whose trust domain comes from the MeshConfig: fix the config, or pass --trust-domain', { exitCode: 1 });
  }
  return MeshCA.init(caDir, { trustDomain: fromConfig ?? flagTrustDomain ?? DEFAULT_TRUST_DOMAIN, actor: 'controlplane' });
}

/** A config may not move the mesh to another trust domain or root namespace while it runs. */
function checkPinnedSettings(config: ConfigSet, trustDomain: string, rootNamespace: string, configDir: string): ConfigDiagnostic[] {
  const source = config.meshConfig?.source ?? { file: configDir, line: 1, column: 1 };
  const resource = config.meshConfig ? `MeshConfig ${config.meshConfig.metadata.name}` : undefined;
  const checks = [
    // An absent trustDomain means the CA's.
    { field: 'trustDomain', value: config.meshConfig?.spec.trustDomain ?? trustDomain, pinned: trustDomain },
    { field: 'rootNamespace', value: config.mesh.rootNamespace, pinned: rootNamespace },
  ];
  return checks
    .filter((check) => check.value !== check.pinned)
    .map((check) => ({
      severity: 'error' as const,
      code: 'TRELLIS_CONFIG_INVALID_VALUE' as const,
      ...source,
      ...(resource ? { resource } : {}),
      path: `spec.${check.field}`,
      message: `${check.field} "${check.value}" differs from "${check.pinned}", which the running control plane and every SVID use: changing it needs a new mesh (CA) and a restart`,
    }));
}
