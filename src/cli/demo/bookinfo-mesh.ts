/**
 * The bookinfo mesh as processes: a control plane on the given config directories (the app's
 * config and a traffic directory that VirtualServices and DestinationRules are dropped into),
 * one `trellis run` per bookinfo WorkloadEntry (examples/bookinfo/app.mjs behind its sidecar) and
 * a `sleep` client proxy whose outbound port the demo calls through. `trellis demo` uses it, and
 * so does the e2e test that applies Istio's bookinfo samples (with its own ports).
 *
 * `applyTraffic` changes the traffic directory and waits, without sleeping, until the control
 * plane accepted the change and every proxy acknowledged the config it was compiled from.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ConfigDiagnostic, formatDiagnostic } from '../../api/diagnostics.js';
import { TrellisError } from '../../api/errors.js';
import { loadConfigPaths } from '../../api/loader.js';
import { readControlPlaneRecord } from '../../controlplane/controlplane.js';
import { MeshCA } from '../../identity/ca.js';
import { freePort } from '../commands/proxy.js';
import { workloadTarget } from '../commands/token.js';
import type { ProcessGroup } from './processes.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const BOOKINFO_CONFIG_DIR = join(ROOT, 'examples', 'bookinfo', 'config');
export const BOOKINFO_SAMPLES_DIR = join(ROOT, 'examples', 'bookinfo', 'networking');
const APP = join(ROOT, 'examples', 'bookinfo', 'app.mjs');
const BIN = join(ROOT, 'bin', 'trellis.js');
const CLIENT = 'default/sleep';
export const PRODUCTPAGE = 'productpage.default.svc.cluster.local:9080';

export interface Workload {
  ref: string;
  name: string;
  app?: string;
  version?: string;
  address: string;
  ports: Record<string, number>;
  identity: string;
  /** The file that declares the WorkloadEntry. */
  file: string;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** What one GET /productpage showed. */
export interface PageView {
  status: number;
  /** `reviews-v1`, …, or undefined when the reviews call failed. */
  reviews?: string;
  stars?: number | null;
  color?: string;
  /** productpage's message when reviews did not answer in time or failed. */
  reviewsError?: string;
  /** reviews' message when ratings failed (v2, v3). */
  ratingsError?: string;
  details?: string;
  body: string;
}

export interface BookinfoMeshOptions {
  /** Config directories for the control plane, in order; the WorkloadEntries are read from them. */
  configDirs: string[];
  /** The watched directory applyTraffic writes into (one of configDirs). */
  trafficDir: string;
  state: string;
  logs: string;
  group: ProcessGroup;
  /** OTLP/HTTP traces endpoint: every proxy exports its spans there, sampling every request. */
  tracingEndpoint?: string;
  /** `http/protobuf` (the proxies' default) or `http/json`. */
  tracingProtocol?: string;
}

export interface PushResult {
  /** The accepted config version every proxy now runs. */
  version: string;
  proxies: number;
  ms: number;
}

export class BookinfoMesh {
  private constructor(
    private readonly options: BookinfoMeshOptions,
    readonly workloads: Workload[],
    readonly admin: string,
    readonly discovery: string,
    readonly clientPort: number,
    readonly client: MeshClient,
  ) {}

  /** Starts the control plane, every workload and the client; resolves when a full page renders. */
  static async start(options: BookinfoMeshOptions): Promise<BookinfoMesh> {
    const { configDirs, state, logs, group } = options;
    const workloads = await readWorkloads(configDirs);
    await checkPortsFree(workloads);
    const configArgs = configDirs.flatMap((dir) => ['--config', dir]);
    group.startNode('controlplane', [BIN, 'controlplane', ...configArgs, '--state', state, '--discovery-port', '0', '--admin-port', '0'], join(logs, 'controlplane.log'));
    const controlPlane = await waitForControlPlane(state, group);

    const clientPort = await freePort();
    for (const workload of workloads) {
      const { caDir, id } = await workloadTarget(state, workload.ref);
      const { token } = await MeshCA.open(caDir).createJoinToken(id, 600_000, 'demo');
      const env = { TRELLIS_JOIN_TOKEN: token };
      // Every proxy serves its metrics on a free port (`trellis top` finds them through the control plane).
      // Each proxy writes an access log next to its log.
      const common = ['--mesh', state, '--workload', workload.ref, '--admin-port', '0', '--metrics-port', '0', '--access-log', join(logs, `${workload.name}.access.log`), '--state', join(state, 'proxies', workload.name)];
      if (options.tracingEndpoint !== undefined) common.push('--tracing-endpoint', options.tracingEndpoint, '--tracing-sampling', '100');
      if (options.tracingProtocol !== undefined) common.push('--tracing-protocol', options.tracingProtocol);
      if (workload.ref === CLIENT) {
        group.startNode(workload.name, [BIN, 'proxy', ...common, '--outbound-port', String(clientPort)], join(logs, `${workload.name}.log`), env);
      } else {
        const args = [BIN, 'run', ...common, '--', process.execPath, APP, workload.app ?? workload.name, workload.version ?? 'v1'];
        group.startNode(workload.name, args, join(logs, `${workload.name}.log`), env);
      }
    }
    await waitForSync(controlPlane.admin, workloads.length, group);
    const client = new MeshClient(clientPort);
    await waitForApp(client, group);
    return new BookinfoMesh(options, workloads, controlPlane.admin, controlPlane.discovery, clientPort, client);
  }

  get trafficDir(): string {
    return this.options.trafficDir;
  }

  /**
   * Writes `text` to `<traffic dir>/<file>` (atomically: a dot-file renamed into place), or removes
   * the file when `text` is null, then waits until the control plane accepted the new config set
   * and every proxy acknowledged the snapshot compiled from it. A refused change throws with
   * the control plane's errors.
   */
  async applyTraffic(file: string, text: string | null, timeoutMs = 30_000): Promise<PushResult> {
    const started = Date.now();
    const before = await configStatus(this.admin);
    const target = join(this.options.trafficDir, file);
    if (text === null) {
      rmSync(target, { force: true });
    } else {
      const temporary = join(this.options.trafficDir, `.${file}.tmp`);
      writeFileSync(temporary, text);
      renameSync(temporary, target);
    }
    const deadline = started + timeoutMs;
    let version: string | undefined;
    while (version === undefined) {
      const now = await configStatus(this.admin);
      if (now.version !== undefined && now.version !== before.version) version = now.version;
      // Undoing a refused change brings back the live version itself: the refusal clears.
      else if (now.version !== undefined && before.refusedVersion !== undefined && now.refusedVersion === undefined) version = now.version;
      else if (now.refusedVersion !== undefined && now.refusedVersion !== before.refusedVersion) {
        throw new TrellisError('TRELLIS_DEMO', `the control plane refused ${target}:\n${now.errors.map(formatDiagnostic).join('\n')}`);
      } else if (Date.now() > deadline) {
        throw new TrellisError('TRELLIS_DEMO', `the control plane did not pick up ${target} within ${timeoutMs / 1000} s`);
      }
      if (version === undefined) await sleep(50);
    }
    for (;;) {
      this.checkAlive();
      const syncz = (await getJson(`${this.admin}/debug/syncz`)) as Syncz;
      const nacked = syncz.proxies.find((proxy) => Object.values(proxy.types).some((type) => type.status === 'NACKED'));
      if (syncz.configVersion === version && nacked !== undefined) {
        throw new TrellisError('TRELLIS_DEMO', `proxy ${nacked.workload} refused (NACK) the config of ${target}: ${Object.values(nacked.types).find((type) => type.nack)?.nack?.message ?? ''}`);
      }
      const synced = syncz.proxies.filter((proxy) => Object.values(proxy.types).every((type) => type.status === 'SYNCED'));
      if (syncz.configVersion === version && synced.length === syncz.proxies.length && synced.length >= this.workloads.length) {
        return { version, proxies: synced.length, ms: Date.now() - started };
      }
      if (Date.now() > deadline) throw new TrellisError('TRELLIS_DEMO', `the proxies did not acknowledge config ${version} within ${timeoutMs / 1000} s`);
      await sleep(50);
    }
  }

  /** GET /productpage as the sleep workload. */
  async productpage(headers: Record<string, string> = {}): Promise<PageView> {
    const reply = await this.client.request('GET', PRODUCTPAGE, '/productpage', headers);
    return pageView(reply);
  }

  private checkAlive(): void {
    const died = this.options.group.exited();
    if (died.length > 0) throw new TrellisError('TRELLIS_DEMO', `${died.join(', ')} stopped unexpectedly: see ${this.options.logs}`);
  }
}

interface Syncz {
  configVersion?: string | null;
  proxies: Array<{ workload: string; types: Record<string, { status: string; nack?: { message: string } }> }>;
}

/** Empties a traffic directory of YAML files (it belongs to the demo), creating it if needed. */
export function resetTrafficDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) if (/\.ya?ml$/.test(name) || name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
}

export function pageView(reply: Reply): PageView {
  const body = json(reply.body);
  const reviews = body?.['reviews'] as { podname?: string; error?: string; reviews?: Array<{ rating?: { stars?: number | null; color?: string; error?: string } }> } | undefined;
  const rating = reviews?.reviews?.[0]?.rating;
  const details = (body?.['details'] as { servedBy?: string; error?: string } | undefined);
  return {
    status: reply.status,
    ...(reviews?.podname ? { reviews: reviews.podname } : {}),
    ...(rating ? { stars: rating.stars ?? null, ...(rating.color ? { color: rating.color } : {}) } : {}),
    ...(reviews?.error ? { reviewsError: reviews.error } : {}),
    ...(rating?.error ? { ratingsError: rating.error } : {}),
    ...(details?.servedBy ? { details: details.servedBy } : details?.error ? { details: details.error } : {}),
    body: reply.body,
  };
}

/** HTTP through the sleep workload's sidecar: absolute-form requests to its proxy port. */
export class MeshClient {
  private readonly agent = new http.Agent({ keepAlive: true });

  constructor(private readonly proxyPort: number) {}

  get(authority: string, path: string): Promise<Reply> {
    return this.request('GET', authority, path);
  }

  request(method: string, authority: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
    return new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: this.proxyPort, method, path: `http://${authority}${path}`, headers: { ...headers, host: authority }, agent: this.agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.setTimeout(20_000, () => req.destroy(new Error('timed out')));
      req.on('error', (err) => resolve({ status: 0, headers: {}, body: err.message }));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

async function readWorkloads(configDirs: string[]): Promise<Workload[]> {
  const loaded = await loadConfigPaths(configDirs);
  if (!loaded.config) {
    throw new TrellisError('TRELLIS_CONFIG_INVALID', `the config in ${configDirs.join(', ')} is invalid:\n${loaded.errors.map(formatDiagnostic).join('\n')}`);
  }
  const trustDomain = loaded.config.mesh.trustDomain;
  return loaded.config.workloadEntries.map((entry) => {
    const namespace = entry.metadata.namespace ?? 'default';
    const labels = entry.spec.labels ?? {};
    return {
      ref: `${namespace}/${entry.metadata.name}`,
      name: entry.metadata.name,
      ...(labels['app'] ? { app: labels['app'] } : {}),
      ...(labels['version'] ? { version: labels['version'] } : {}),
      address: entry.spec.address ?? '127.0.0.1',
      ports: entry.spec.ports ?? {},
      identity: `spiffe://${trustDomain}/ns/${namespace}/sa/${entry.spec.serviceAccount ?? 'default'}`,
      file: entry.source.file,
    };
  });
}

async function checkPortsFree(workloads: Workload[]): Promise<void> {
  for (const workload of workloads) {
    for (const port of Object.values(workload.ports)) {
      const free = await new Promise<boolean>((resolve) => {
        const server = net.createServer();
        server.once('error', () => resolve(false));
        server.listen(port, workload.address, () => server.close(() => resolve(true)));
      });
      if (!free) {
        throw new TrellisError('TRELLIS_DEMO', `port ${workload.address}:${port} (WorkloadEntry ${workload.ref}) is in use: stop what uses it, or change the port in ${workload.file}`);
      }
    }
  }
}

async function waitForControlPlane(state: string, group: ProcessGroup): Promise<{ discovery: string; admin: string }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (group.exited().includes('controlplane')) throw new TrellisError('TRELLIS_DEMO', `the control plane stopped: see ${join(state, 'logs', 'controlplane.log')}`);
    if (existsSync(join(state, 'controlplane.json'))) {
      const record = readControlPlaneRecord(state);
      const status = await getJson(`${record.admin}/healthz/ready`).catch(() => undefined);
      if (status !== undefined) return { discovery: record.discovery, admin: record.admin };
    }
    if (Date.now() > deadline) throw new TrellisError('TRELLIS_DEMO', 'the control plane did not start within 30 s');
    await sleep(100);
  }
}

/** Waits until every workload's proxy is connected and has acknowledged all four resource types. */
async function waitForSync(admin: string, expected: number, group: ProcessGroup): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const died = group.exited();
    if (died.length > 0) throw new TrellisError('TRELLIS_DEMO', `${died.join(', ')} stopped during startup: see its log in the state directory`);
    const answer = (await getJson(`${admin}/debug/syncz`).catch(() => ({ proxies: [] }))) as Syncz;
    const synced = answer.proxies.filter((proxy) => Object.values(proxy.types).every((type) => type.status === 'SYNCED'));
    if (synced.length >= expected) return;
    if (Date.now() > deadline) throw new TrellisError('TRELLIS_DEMO', `only ${synced.length} of ${expected} proxies synced within 60 s`);
    await sleep(100);
  }
}

/** The apps start after their sidecars: wait until a full page renders. */
async function waitForApp(client: MeshClient, group: ProcessGroup): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const died = group.exited();
    if (died.length > 0) throw new TrellisError('TRELLIS_DEMO', `${died.join(', ')} stopped during startup`);
    const page = await client.get(PRODUCTPAGE, '/productpage');
    if (page.status === 200 && !page.body.includes('"error"')) return;
    if (Date.now() > deadline) throw new TrellisError('TRELLIS_DEMO', `the app did not come up within 30 s (last answer: ${page.status} ${page.body.slice(0, 200)})`);
    await sleep(200);
  }
}

async function configStatus(admin: string): Promise<{ version?: string; refusedVersion?: string; errors: ConfigDiagnostic[] }> {
  const status = (await getJson(`${admin}/status`)) as { config: { version?: string; refusedVersion?: string; errors: ConfigDiagnostic[] } };
  return status.config;
}

export function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => {
          if ((res.statusCode ?? 500) >= 400) return reject(new Error(`${url}: ${res.statusCode}`));
          try {
            resolve(JSON.parse(body));
          } catch (err) {
            reject(err as Error);
          }
        });
      })
      .on('error', reject);
  });
}

export function json(text: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
