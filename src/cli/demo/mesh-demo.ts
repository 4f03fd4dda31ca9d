/**
 * `trellis demo`: the README's first command. It starts a control plane on the config in
 * examples/bookinfo/config (watched: edit it while the demo runs), the bookinfo-style app with a
 * sidecar per workload and a `sleep` client, then makes allowed and denied calls and shows the
 * decisions. Every piece is a real process talking over real sockets on loopback.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic } from '../../api/diagnostics.js';
import { TrellisError } from '../../api/errors.js';
import { loadConfigPaths } from '../../api/loader.js';
import { readControlPlaneRecord } from '../../controlplane/controlplane.js';
import { MeshCA } from '../../identity/ca.js';
import { freePort } from '../commands/proxy.js';
import { workloadTarget } from '../commands/token.js';
import { printLine } from '../output.js';
import { ProcessGroup } from './processes.js';

export interface MeshDemoOptions {
  /** Run the scenario once and exit (for CI); the exit code says whether every step behaved. */
  once?: boolean;
  /** Where the control plane keeps its state and the logs go (default: a temporary directory). */
  state?: string;
  keep?: boolean;
}

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CONFIG_DIR = join(ROOT, 'examples', 'bookinfo', 'config');
const APP = join(ROOT, 'examples', 'bookinfo', 'app.mjs');
const BIN = join(ROOT, 'bin', 'trellis.js');
const CLIENT = 'default/sleep';

interface Workload {
  ref: string;
  name: string;
  app?: string;
  version?: string;
  address: string;
  ports: Record<string, number>;
  identity: string;
}

export async function meshDemo(opts: MeshDemoOptions): Promise<number> {
  const state = opts.state ?? mkdtempSync(join(tmpdir(), 'trellis-demo-'));
  const logs = join(state, 'logs');
  // The state holds the CA's private key.
  mkdirSync(state, { recursive: true, mode: 0o700 });
  mkdirSync(logs, { recursive: true });
  const group = new ProcessGroup();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  try {
    const workloads = await readWorkloads();
    await checkPortsFree(workloads);
    printLine('Trellis demo: the bookinfo app on a zero-trust mesh (STRICT mTLS, deny by default)');
    printLine(`  config   ${relative(process.cwd(), CONFIG_DIR) || CONFIG_DIR}   (watched: edit it while the demo runs)`);
    printLine(`  state    ${state}`);

    group.startNode('controlplane', [BIN, 'controlplane', '--config', CONFIG_DIR, '--state', state, '--discovery-port', '0', '--admin-port', '0'], join(logs, 'controlplane.log'));
    const controlPlane = await waitForControlPlane(state, group);
    printLine(`  control plane  discovery ${controlPlane.discovery}, admin ${controlPlane.admin}`);

    const clientPort = await freePort();
    for (const workload of workloads) {
      const { caDir, id } = await workloadTarget(state, workload.ref);
      const { token } = await MeshCA.open(caDir).createJoinToken(id, 600_000, 'demo');
      const env = { TRELLIS_JOIN_TOKEN: token };
      const common = ['--mesh', state, '--workload', workload.ref, '--admin-port', '0', '--state', join(state, 'proxies', workload.name)];
      if (workload.ref === CLIENT) {
        group.startNode(workload.name, [BIN, 'proxy', ...common, '--outbound-port', String(clientPort)], join(logs, `${workload.name}.log`), env);
      } else {
        const args = [BIN, 'run', ...common, '--', process.execPath, APP, workload.app ?? workload.name, workload.version ?? 'v1'];
        group.startNode(workload.name, args, join(logs, `${workload.name}.log`), env);
      }
    }
    await waitForSync(controlPlane.admin, workloads.length, group);
    printLine('\nWorkloads (each process: the app + its sidecar; logs in state/logs):');
    for (const workload of workloads) {
      const ports = Object.entries(workload.ports).map(([name, port]) => `${name} ${workload.address}:${port}`).join(', ') || 'no inbound ports (client only)';
      printLine(`  ${workload.name.padEnd(15)} ${workload.identity.padEnd(60)} ${ports}`);
    }
    const client = new MeshClient(clientPort);
    await waitForApp(client, group);

    const failures = await runScenario(client, workloads);
    printLine('\nWhere to look next:');
    printLine(`  trellis proxy-status --admin ${controlPlane.admin}     every proxy, its identity and config versions`);
    printLine(`  trellis status --admin ${controlPlane.admin}           config health (an invalid edit shows here, the old config stays)`);
    printLine(`  ${relative(process.cwd(), join(CONFIG_DIR, 'authorization.yaml'))}   edit a rule: proxies follow within a second`);
    printLine(`  curl -x http://127.0.0.1:${clientPort} http://productpage.default.svc.cluster.local:9080/productpage   (as the sleep workload)`);
    if (failures > 0) printLine(`\n${failures} step(s) did not behave as expected: see ${logs}`);
    if (opts.once) return failures > 0 ? 1 : 0;
    printLine('\nThe mesh is running. Press Ctrl-C to stop it.');
    while (!interrupted) {
      await sleep(200);
      const died = group.exited();
      if (died.length > 0) throw new TrellisError('TRELLIS_DEMO', `${died.join(', ')} stopped unexpectedly: see ${logs}`);
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    await group.stopAll();
    if (!opts.keep && !opts.state) rmSync(state, { recursive: true, force: true });
    else printLine(`State and logs kept in ${state}`);
  }
}

/** The scripted calls: each says what it shows, what happened, and whether that was expected. */
async function runScenario(client: MeshClient, workloads: Workload[]): Promise<number> {
  let failures = 0;
  const step = (title: string, result: Reply, expectedStatus: number, detail: string): void => {
    const ok = result.status === expectedStatus;
    if (!ok) failures += 1;
    printLine(`\n${ok ? '✓' : '✗'} ${title}`);
    printLine(`    ${result.status} ${detail}${ok ? '' : `   (expected ${expectedStatus})`}`);
  };

  printLine('\nCalls from the sleep workload (spiffe://cluster.local/ns/default/sa/sleep):');
  const seen = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const page = await client.get('productpage.default.svc.cluster.local:9080', '/productpage');
    const body = json(page.body);
    const reviews = body?.['reviews'] as { podname?: string; reviews?: Array<{ rating?: { stars?: number; color?: string } }> } | undefined;
    const rating = reviews?.reviews?.[0]?.rating;
    const served = reviews?.podname ?? 'no reviews';
    seen.add(served);
    step(
      `GET /productpage (allowed: productpage-viewer admits sleep)`,
      page,
      200,
      `productpage → details (${(body?.['details'] as { servedBy?: string } | undefined)?.servedBy ?? 'error'}) and ${served}${rating ? `, ${rating.stars ?? '?'} ${rating.color ?? ''} stars from ratings` : ''}`,
    );
  }
  printLine(`    reviews versions seen: ${[...seen].sort().join(', ')} (DestinationRule reviews: round robin over the endpoints)`);

  const direct = await client.get('ratings.default.svc.cluster.local:9080', '/ratings/0');
  step('GET ratings directly (denied: only reviews may call ratings)', direct, 403, describeDenial(direct));
  const post = await client.request('POST', 'productpage.default.svc.cluster.local:9080', '/productpage');
  step('POST /productpage (denied: the policy allows GET only)', post, 403, describeDenial(post));
  const details = await client.get('details.default.svc.cluster.local:9080', '/details/0');
  step('GET details directly (denied: details admits productpage only)', details, 403, describeDenial(details));
  const unknown = await client.get('example.com', '/');
  step('GET http://example.com/ (egress is closed: not a registered service)', unknown, 502, unknown.body.trim());

  const productpage = workloads.find((workload) => workload.app === 'productpage');
  const port = productpage?.ports['http'];
  if (productpage && port !== undefined) {
    const plaintext = await plaintextRequest(productpage.address, port);
    const refused = plaintext === 'closed';
    if (!refused) failures += 1;
    printLine(`\n${refused ? '✓' : '✗'} plaintext HTTP straight to productpage's sidecar (${productpage.address}:${port}), no certificate`);
    printLine(`    ${refused ? 'connection closed: mTLS is STRICT' : `answered: ${plaintext}`}`);
  }
  return failures;
}

function describeDenial(reply: Reply): string {
  const reason = reply.headers['x-trellis-denied'];
  return `${reply.body.trim()}${typeof reason === 'string' ? `\n    why: ${reason}` : ''}`;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** HTTP through the sleep workload's sidecar: absolute-form requests to its proxy port. */
class MeshClient {
  private readonly agent = new http.Agent({ keepAlive: true });

  constructor(private readonly proxyPort: number) {}

  get(authority: string, path: string): Promise<Reply> {
    return this.request('GET', authority, path);
  }

  request(method: string, authority: string, path: string): Promise<Reply> {
    return new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: this.proxyPort, method, path: `http://${authority}${path}`, headers: { host: authority }, agent: this.agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
      req.on('error', (err) => resolve({ status: 0, headers: {}, body: err.message }));
      req.end();
    });
  }
}

async function readWorkloads(): Promise<Workload[]> {
  const loaded = await loadConfigPaths([CONFIG_DIR]);
  if (!loaded.config) {
    throw new TrellisError('TRELLIS_CONFIG_INVALID', `the demo config in ${CONFIG_DIR} is invalid:\n${loaded.errors.map(formatDiagnostic).join('\n')}`);
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
        throw new TrellisError('TRELLIS_DEMO', `port ${workload.address}:${port} (WorkloadEntry ${workload.ref}) is in use: stop what uses it, or change the port in ${join(CONFIG_DIR, 'workloads.yaml')}`);
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
    const answer = (await getJson(`${admin}/debug/syncz`).catch(() => ({ proxies: [] }))) as { proxies: Array<{ types: Record<string, { status: string }> }> };
    const proxies = answer.proxies;
    const synced = proxies.filter((proxy) => Object.values(proxy.types).every((type) => type.status === 'SYNCED'));
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
    const page = await client.get('productpage.default.svc.cluster.local:9080', '/productpage');
    if (page.status === 200 && !page.body.includes('"error"')) return;
    if (Date.now() > deadline) throw new TrellisError('TRELLIS_DEMO', `the app did not come up within 30 s (last answer: ${page.status} ${page.body.slice(0, 200)})`);
    await sleep(200);
  }
}

function plaintextRequest(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => socket.write('GET /productpage HTTP/1.1\r\nHost: productpage\r\n\r\n'));
    let received = '';
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('data', (data: Buffer) => (received += data.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(received === '' ? 'closed' : received.split('\r\n')[0] ?? received));
  });
}

function getJson(url: string): Promise<unknown> {
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

function json(text: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
