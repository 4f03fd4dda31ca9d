/**
 * A mesh started the way a user starts one: `trellis controlplane` and `trellis run` /
 * `trellis proxy` as separate processes, with config files in a temp directory the test can edit
 * live. Every process is stopped by `stop()`; their logs are kept for failure messages.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTrellis, TRELLIS_BIN } from './cli.js';

export const FIXTURE_APPS = fileURLToPath(new URL('../../../test/fixtures/apps/', import.meta.url));

export interface ProxyReady {
  admin: number;
  /** The metrics port (every proxy gets a free one here), null when off. */
  metrics?: number | null;
  listening: { inbound: Record<string, number>; outbound?: number; upstreams: Record<string, number> };
  identity: string;
}

export interface StartedWorkload {
  ref: string;
  process: ChildProcess;
  ready: ProxyReady;
  log: string;
}

export interface WorkloadOptions {
  /** The app to run under `trellis run` (a file in test/fixtures/apps, or an absolute path), or none: `trellis proxy`. */
  app?: string;
  /** Arguments for the app, e.g. bookinfo's service and version. */
  appArgs?: string[];
  outboundPort?: boolean;
  upstreams?: string[];
  svidTtl?: string;
  extraArgs?: string[];
}

/** Generous: on a loaded 2-core machine a proxy's start (key generation, join, first push) can take many seconds. */
const START_TIMEOUT_MS = 90_000;

export class MeshProcesses {
  readonly dir: string;
  readonly configDir: string;
  readonly stateDir: string;
  private controlPlane: ChildProcess | undefined;
  private readonly workloads: StartedWorkload[] = [];
  private readonly spawned = new Set<ChildProcess>();
  private stopping = false;
  admin = '';
  discovery = '';
  /** The control plane's Prometheus scrape URL. */
  metrics = '';

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'trellis-e2e-'));
    this.configDir = join(this.dir, 'config');
    this.stateDir = join(this.dir, 'state');
    mkdirSync(this.configDir);
    mkdirSync(join(this.dir, 'logs'));
  }

  static async start(files: Record<string, string>): Promise<MeshProcesses> {
    const mesh = new MeshProcesses();
    for (const [name, text] of Object.entries(files)) mesh.writeConfig(name, text);
    await mesh.startControlPlane();
    return mesh;
  }

  /** Writes a config file atomically (temp file + rename): the store never reads half of it. */
  writeConfig(name: string, text: string): void {
    const temp = join(this.configDir, `.${name}.tmp`);
    writeFileSync(temp, text);
    renameSync(temp, join(this.configDir, name));
  }

  async startControlPlane(): Promise<void> {
    const record = join(this.stateDir, 'controlplane.json');
    const previous = existsSync(record) ? (JSON.parse(readFileSync(record, 'utf8')) as { discovery: string }).discovery : undefined;
    // A restart keeps its discovery port: proxies reconnect to the address they know.
    const port = previous ? previous.split(':')[1] ?? '0' : '0';
    this.controlPlane = this.spawnLogged('controlplane', [TRELLIS_BIN, 'controlplane', '--config', this.configDir, '--state', this.stateDir, '--discovery-port', port, '--admin-port', '0']);
    const started = this.controlPlane;
    await waitFor(async () => {
      if (started.exitCode !== null) throw new Error(`the control plane exited:\n${this.logTail('controlplane')}`);
      if (!existsSync(record)) return false;
      const info = JSON.parse(readFileSync(record, 'utf8')) as { discovery: string; admin: string; metrics?: string; pid: number };
      if (info.pid !== started.pid) return false;
      this.admin = info.admin;
      this.metrics = info.metrics ?? `${info.admin}/metrics`;
      this.discovery = info.discovery;
      return (await httpGet(`${info.admin}/healthz/ready`).catch(() => undefined))?.status === 200;
    }, START_TIMEOUT_MS, 'control plane start');
  }

  /** Kills the control plane (SIGKILL: no goodbye to the proxies). */
  async killControlPlane(): Promise<void> {
    const child = this.controlPlane;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async token(ref: string): Promise<string> {
    const result = await runTrellis(['token', 'create', '--state', this.stateDir, '--workload', ref]);
    if (result.code !== 0) throw new Error(`token create ${ref}: ${result.stderr}`);
    return result.stdout.trim();
  }

  async startWorkload(ref: string, options: WorkloadOptions = {}): Promise<StartedWorkload> {
    const name = ref.replace('/', '_');
    const token = await this.token(ref);
    const args = [TRELLIS_BIN, options.app ? 'run' : 'proxy', '--mesh', this.stateDir, '--workload', ref, '--admin-port', '0', '--state', join(this.dir, 'proxies', name)];
    if (options.outboundPort) args.push('--outbound-port', '0');
    // Many proxies share this host: each gets its own metrics port.
    if (!options.extraArgs?.includes('--metrics-port')) args.push('--metrics-port', '0');
    for (const upstream of options.upstreams ?? []) args.push('--upstream', upstream);
    if (options.svidTtl) args.push('--svid-ttl', options.svidTtl);
    args.push(...(options.extraArgs ?? []));
    if (options.app) args.push('--', process.execPath, isAbsolute(options.app) ? options.app : join(FIXTURE_APPS, options.app), ...(options.appArgs ?? []));
    const child = this.spawnLogged(name, args, { TRELLIS_JOIN_TOKEN: token });
    const log = join(this.dir, 'logs', `${name}.log`);
    let ready: ProxyReady | undefined;
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`${ref} exited:\n${this.logTail(name)}`);
      ready = readyLine(log);
      return ready !== undefined;
    }, START_TIMEOUT_MS, `${ref} ready`);
    const started = { ref, process: child, ready: ready as ProxyReady, log };
    this.workloads.push(started);
    return started;
  }

  /** Waits until `count` proxies have acknowledged every resource type. */
  async waitSynced(count: number): Promise<void> {
    await waitFor(async () => {
      const body = await httpGet(`${this.admin}/debug/syncz`).catch(() => undefined);
      if (!body || body.status !== 200) return false;
      const proxies = (JSON.parse(body.body) as { proxies: Array<{ types: Record<string, { status: string }> }> }).proxies;
      return proxies.filter((proxy) => Object.values(proxy.types).every((type) => type.status === 'SYNCED')).length >= count;
    }, START_TIMEOUT_MS, `${count} proxies synced`);
  }

  logTail(name: string, lines = 30): string {
    try {
      return readFileSync(join(this.dir, 'logs', `${name}.log`), 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Every process ever spawned, including one whose start timed out or is still starting.
    const children = [...this.spawned];
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    // TRELLIS_TEST_KEEP=1 keeps config, state and logs for a post-mortem.
    if (process.env['TRELLIS_TEST_KEEP']) process.stderr.write(`kept ${this.dir}\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }

  private spawnLogged(name: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    if (this.stopping) throw new Error(`the mesh is stopping: not starting ${name}`);
    const fd = openSync(join(this.dir, 'logs', `${name}.log`), 'a');
    try {
      const child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
      this.spawned.add(child);
      return child;
    } finally {
      closeSync(fd);
    }
  }
}

function readyLine(log: string): ProxyReady | undefined {
  if (!existsSync(log)) return undefined;
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (!line.includes('"proxy.ready"')) continue;
    try {
      return JSON.parse(line) as ProxyReady;
    } catch {
      // a partial line: read again later
    }
  }
  return undefined;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function httpGet(url: string): Promise<HttpReply> {
  return httpRequest({ url });
}

/** One HTTP/1.1 request; `proxyPort` sends it in absolute form through a sidecar's HTTP proxy port. */
export function httpRequest(options: { url: string; method?: string; headers?: Record<string, string>; proxyPort?: number; body?: string; agent?: http.Agent }): Promise<HttpReply> {
  const target = new URL(options.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: options.proxyPort ? '127.0.0.1' : target.hostname,
        port: options.proxyPort ?? target.port,
        method: options.method ?? 'GET',
        path: options.proxyPort ? target.href : `${target.pathname}${target.search}`,
        headers: { host: target.host, ...(options.headers ?? {}) },
        ...(options.agent ? { agent: options.agent } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`request to ${options.url} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Server>((resolve) => {
      const server = net.createServer();
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
