/**
 * The mesh data path, side by side in one run on this machine: the same request (GET answered
 * with a 1 KB body by a tiny node:http upstream on loopback) sent
 *   1. directly to the upstream;
 *   2. through nginx as a plain HTTP reverse proxy (Debian's nginx, installed if missing; one
 *      worker, keep-alive to the upstream, no access log);
 *   3. through two Trellis sidecars: client → client sidecar (explicit upstream port, HTTP) →
 *      mTLS → server sidecar (STRICT mTLS, ALLOW policy on the client's principal, deny by
 *      default) → upstream.
 * Every piece is a real process: upstream, nginx, control plane, each sidecar and the load
 * generator (bench/lib/loadgen.ts), so nothing measured shares an event loop with the load.
 *
 * For each path: p50/p90/p99 latency at a fixed 1,000 requests/s (open loop), the maximum
 * requests/s (closed loop), both over 4 keep-alive connections; CPU seconds per 1,000 requests of
 * each proxy process (/proc/<pid>/stat utime+stime over the fixed-rate run) and its peak RSS
 * (VmHWM). Prints one markdown table. No thresholds: the numbers are reported as measured.
 *
 *   npm run bench                       (all benchmarks; or: node scripts/run-bench.mjs mesh)
 *   TRELLIS_BENCH_QUICK=1 …             short runs, to check that the benchmark itself works
 *   TRELLIS_BENCH_KEEP=1 …              keep the temporary directory (config, logs)
 *   TRELLIS_BENCH_PROFILE=DIR …         run both sidecars with --cpu-prof, profiles written to DIR
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LoadResult, LoadSpec } from './lib/loadgen.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // dist/bench/mesh.js → the checkout
const BIN = join(ROOT, 'bin', 'trellis.js');
const LOADGEN = fileURLToPath(new URL('./lib/loadgen.js', import.meta.url));
const UPSTREAM = fileURLToPath(new URL('./lib/upstream.js', import.meta.url));

const QUICK = process.env['TRELLIS_BENCH_QUICK'] === '1';
const KEEP = process.env['TRELLIS_BENCH_KEEP'] === '1';
const PROFILE_DIR = process.env['TRELLIS_BENCH_PROFILE'];
/** Node flags for the sidecars: a CPU profile each when asked for (written when they stop). */
const SIDECAR_NODE_FLAGS = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : [];
const RATE = 1000;
const CONNECTIONS = 4;
const BODY_BYTES = 1024;
const WARMUP_SECONDS = QUICK ? 1 : 3;
const FIXED_SECONDS = QUICK ? 2 : 10;
const MAX_SECONDS = QUICK ? 2 : 10;
/** The whole run, after nginx is installed; past it everything is stopped and the run fails. */
const DEADLINE_MS = 4 * 60_000;
const REQUEST_PATH = '/1k';

const NAMESPACE = 'bench';
const SERVICE_HOST = `server.${NAMESPACE}.svc.cluster.local`;
const SERVICE_PORT = 8080;
const CLIENT_PRINCIPAL = `cluster.local/ns/${NAMESPACE}/sa/client`;

// ---------------------------------------------------------------------------------------------
// Processes: each in its own process group, so stopping it stops its children too (nginx workers).

class Processes {
  private readonly children: Array<{ name: string; child: ChildProcess }> = [];

  constructor(private readonly logDir: string) {}

  start(name: string, file: string, args: string[], options: { env?: NodeJS.ProcessEnv; pipeStdout?: boolean } = {}): ChildProcess {
    const log = openSync(this.logOf(name), 'a');
    try {
      const child = spawn(file, args, {
        detached: true,
        stdio: ['ignore', options.pipeStdout ? 'pipe' : log, log],
        env: { ...process.env, ...options.env },
      });
      if (child.pid === undefined) throw new Error(`cannot start ${name} (${file})`);
      this.children.push({ name, child });
      return child;
    } finally {
      closeSync(log);
    }
  }

  logOf(name: string): string {
    return join(this.logDir, `${name}.log`);
  }

  /** Names of long-running children that have exited (the load generator is expected to). */
  exited(except: (name: string) => boolean = () => false): string[] {
    return this.children.filter(({ name, child }) => !except(name) && !running(child)).map(({ name }) => name);
  }

  /** SIGTERM to every process group, SIGKILL to what is left after `graceMs`. */
  async stopAll(graceMs = 3_000): Promise<void> {
    const live = this.children.filter(({ child }) => running(child));
    const exits = live.map(({ child }) => new Promise<void>((resolve) => child.once('exit', () => resolve())));
    for (const { child } of live) signalGroup(child, 'SIGTERM');
    const timer = setTimeout(() => this.killNow(), graceMs);
    await Promise.all(exits);
    clearTimeout(timer);
    // A group leader's exit does not prove its children are gone: make sure.
    for (const { child } of this.children) signalGroup(child, 'SIGKILL');
  }

  /** Synchronous last resort (e.g. on process exit): SIGKILL the groups of children still running. */
  killNow(): void {
    for (const { child } of this.children) if (running(child)) signalGroup(child, 'SIGKILL');
  }

  tails(lines = 15): string {
    return this.children
      .map(({ name }) => {
        let text = '';
        try {
          text = readFileSync(this.logOf(name), 'utf8');
        } catch {
          return '';
        }
        const tail = text.trimEnd().split('\n').slice(-lines).join('\n');
        return tail ? `--- ${name} (last ${lines} lines of its log)\n${tail}` : '';
      })
      .filter(Boolean)
      .join('\n');
  }
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** Resolves with the first stdout line of `child` parsed as JSON. */
function firstJsonLine<T>(child: ChildProcess, what: string, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const timer = setTimeout(() => reject(new Error(`${what} printed nothing within ${timeoutMs} ms`)), timeoutMs);
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line) as T);
      } catch (err) {
        reject(new Error(`${what} printed ${JSON.stringify(line)}: ${(err as Error).message}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (code ${code}) before printing its port`)));
  });
}

// ---------------------------------------------------------------------------------------------
// /proc

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of a process (all its threads), in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of proc(5)
}

function sampleCpu(pids: readonly number[]): Map<number, number> {
  const sample = new Map<number, number>();
  for (const pid of pids) {
    try {
      sample.set(pid, cpuTicks(pid));
    } catch {
      // The process is gone; it will show as missing.
    }
  }
  return sample;
}

/** Busy time of the whole machine (all CPUs, /proc/stat: everything but idle and iowait), in clock ticks. */
function machineBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
}

/** Peak resident set size (VmHWM) in bytes. */
function peakRss(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** Direct children of `pid` (e.g. nginx's workers). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Small HTTP helpers (setup and checks only; never used for measuring).

interface Reply {
  status: number;
  body: string;
}

function get(url: string, timeoutMs = 5_000): Promise<Reply> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (err) => resolve({ status: 0, body: err.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

/** Sends a plaintext HTTP request; 'closed' if the peer closed without answering. */
function plaintextAttempt(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(`GET ${REQUEST_PATH} HTTP/1.1\r\nHost: ${SERVICE_HOST}\r\n\r\n`));
    let received = '';
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(received === '' ? 'closed' : (received.split('\r\n')[0] ?? received)));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, alive: () => void): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    alive();
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// nginx

function findNginx(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, 'nginx'))) return join(dir, 'nginx');
  }
  return undefined;
}

/** Debian's nginx; installed with apt-get when missing (needs root). */
function ensureNginx(): string {
  const found = findNginx();
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error('nginx is not installed and this is not root: install it with "apt-get install -y nginx", then run the benchmark again');
  process.stderr.write('nginx is not installed: installing Debian\'s nginx (apt-get install -y nginx)…\n');
  const options = { stdio: ['ignore', 'ignore', 'inherit'] as ('ignore' | 'inherit')[], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 240_000 };
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx'], options);
  } catch {
    // The package lists may be missing or stale on a fresh machine.
    execFileSync('apt-get', ['update'], options);
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx'], options);
  }
  const installed = findNginx();
  if (!installed) throw new Error('apt-get installed nginx, but no nginx binary was found');
  return installed;
}

function nginxVersion(binary: string): string {
  // `nginx -v` writes "nginx version: nginx/1.22.1" to stderr.
  const result = spawnSync(binary, ['-v'], { encoding: 'utf8' });
  return `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().replace(/^nginx version: /, '');
}

function nginxConfig(dir: string, port: number, upstreamPort: number): string {
  return `# Written by bench/mesh.ts: a plain HTTP reverse proxy, one worker (a sidecar is one process too).
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream app {
    server 127.0.0.1:${upstreamPort};
    keepalive 16;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

// ---------------------------------------------------------------------------------------------
// The Trellis mesh: one service ("server") and one client, both on loopback.

function meshConfig(serverInboundPort: number): string {
  return `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec: {trustDomain: cluster.local, rootNamespace: istio-system, defaultAuthorization: DENY}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: server, namespace: ${NAMESPACE}}
spec:
  hosts: [${SERVICE_HOST}]
  location: MESH_INTERNAL
  ports:
  - {number: ${SERVICE_PORT}, name: http, protocol: HTTP}
  resolution: STATIC
  workloadSelector:
    labels: {app: server}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: server, namespace: ${NAMESPACE}}
spec:
  address: 127.0.0.1
  ports: {http: ${serverInboundPort}}
  labels: {app: server}
  serviceAccount: server
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: ${NAMESPACE}}
spec:
  address: 127.0.0.1
  labels: {app: client}
  serviceAccount: client
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: server-allow-client, namespace: ${NAMESPACE}}
spec:
  selector:
    matchLabels: {app: server}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["${CLIENT_PRINCIPAL}"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["${REQUEST_PATH}", "/whoami"]
`;
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface ProxyProcess {
  label: string;
  pid: number;
}

interface PathSetup {
  name: string;
  url: string;
  /** Processes that carry the requests of this path, besides the upstream. */
  proxies: ProxyProcess[];
  /** Shown in the per-process CPU table but not part of the per-request cost (e.g. nginx's master). */
  idle?: ProxyProcess[];
}

interface Measured {
  load: LoadResult;
  /** CPU ticks per pid between the generator's "started" and "finished". */
  ticks: Map<number, number>;
  /** Busy ticks of the whole machine over the same time. */
  machineTicks: number;
  wallSeconds: number;
  loadgenPid: number;
}

interface PathResult {
  setup: PathSetup;
  warmup: LoadResult;
  fixed: Measured;
  max: Measured;
  rss: Map<number, number>;
}

async function runLoad(procs: Processes, spec: LoadSpec, watch: readonly number[], name: string): Promise<Measured> {
  const child = procs.start(name, process.execPath, [LOADGEN, JSON.stringify(spec)], { pipeStdout: true });
  const pid = child.pid as number;
  const pids = [...watch, pid];
  let before = new Map<number, number>();
  let after = new Map<number, number>();
  let machineBefore = 0;
  let machineAfter = 0;
  let startedAt = 0;
  let finishedAt = 0;
  let result: LoadResult | undefined;
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const limit = (spec.seconds + 30) * 1000;
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), limit);
  for await (const line of lines) {
    const message = JSON.parse(line) as { event: string } & Partial<LoadResult>;
    if (message.event === 'started') {
      before = sampleCpu(pids);
      machineBefore = machineBusyTicks();
      startedAt = performance.now();
    } else if (message.event === 'finished') {
      after = sampleCpu(pids);
      machineAfter = machineBusyTicks();
      finishedAt = performance.now();
    } else if (message.event === 'result') {
      const { event: _event, ...rest } = message;
      result = rest as LoadResult;
    }
  }
  const code = await exited;
  clearTimeout(timer);
  if (!result || finishedAt === 0) throw new Error(`the load generator (${name}) ended without a result (exit code ${code}): see ${procs.logOf(name)}`);
  const ticks = new Map<number, number>();
  for (const [p, value] of after) ticks.set(p, value - (before.get(p) ?? value));
  return { load: result, ticks, machineTicks: machineAfter - machineBefore, wallSeconds: (finishedAt - startedAt) / 1000, loadgenPid: pid };
}

async function measurePath(procs: Processes, setup: PathSetup, watch: readonly number[], check: () => void): Promise<PathResult> {
  const slug = setup.name.split(' ')[0]?.toLowerCase() ?? 'path';
  process.stderr.write(`measuring ${setup.name}: warm-up ${WARMUP_SECONDS} s, ${FIXED_SECONDS} s at ${RATE} req/s, ${MAX_SECONDS} s closed loop\n`);
  const base = { url: setup.url, connections: CONNECTIONS, bodyBytes: BODY_BYTES };
  const warmup = await runLoad(procs, { ...base, mode: 'max', seconds: WARMUP_SECONDS }, watch, `loadgen-${slug}-warmup`);
  check();
  const fixed = await runLoad(procs, { ...base, mode: 'fixed', rate: RATE, seconds: FIXED_SECONDS }, watch, `loadgen-${slug}-fixed`);
  check();
  const max = await runLoad(procs, { ...base, mode: 'max', seconds: MAX_SECONDS }, watch, `loadgen-${slug}-max`);
  check();
  const rss = new Map<number, number>();
  for (const proxy of [...setup.proxies, ...(setup.idle ?? [])]) rss.set(proxy.pid, peakRss(proxy.pid));
  return { setup, warmup: warmup.load, fixed, max, rss };
}

// ---------------------------------------------------------------------------------------------
// Report

function ms(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return `${value < 1 ? value.toFixed(3) : value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
}

function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function mib(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? 'n/a' : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
  return `${(a / b).toFixed(2)}×`;
}

function seconds(ticks: number | undefined): number {
  return (ticks ?? Number.NaN) / CLOCK_TICKS;
}

/** CPU seconds per 1,000 ok requests of one process over a measured run. */
function cpuPer1000(measured: Measured, pid: number): number {
  return seconds(measured.ticks.get(pid)) / (measured.load.ok / 1000);
}

function problems(load: LoadResult): string[] {
  const found: string[] = [];
  const bad = Object.entries(load.statusCodes).filter(([code]) => code !== '200');
  if (load.non2xx > 0 || bad.length > 0) found.push(`${load.non2xx} non-2xx (${bad.map(([code, n]) => `${code}×${n}`).join(', ')})`);
  if (load.wrongBody > 0) found.push(`${load.wrongBody} wrong body size`);
  if (load.errors > 0) found.push(`${load.errors} errors`);
  if (load.timeouts > 0) found.push(`${load.timeouts} timeouts`);
  return found;
}

function errorCell(result: PathResult): string {
  const parts: string[] = [];
  for (const [label, load] of [['warm-up', result.warmup], ['fixed', result.fixed.load], ['max', result.max.load]] as const) {
    const found = problems(load);
    if (found.length > 0) parts.push(`${label}: ${found.join(', ')}`);
  }
  const total = result.warmup.requests + result.fixed.load.requests + result.max.load.requests;
  return parts.length === 0 ? `0 of ${count(total)}` : `**${parts.join('; ')}** (of ${count(total)})`;
}

function proxyCpuCell(result: PathResult): string {
  if (result.setup.proxies.length === 0) return '–';
  const each = result.setup.proxies.map((proxy) => ({ label: proxy.label, value: cpuPer1000(result.fixed, proxy.pid) }));
  const total = each.reduce((sum, { value }) => sum + value, 0);
  if (each.length === 1) return total.toFixed(3);
  return `${total.toFixed(3)} (${each.map(({ label, value }) => `${label} ${value.toFixed(3)}`).join(' + ')})`;
}

function rssCell(result: PathResult): string {
  const all = [...result.setup.proxies, ...(result.setup.idle ?? [])];
  if (all.length === 0) return '–';
  return all.map((proxy) => `${proxy.label} ${mib(result.rss.get(proxy.pid))}`).join(', ');
}

function report(results: PathResult[], context: { nginx: string; checks: string[]; upstreamPid: number; controlPlanePid: number; loadAverage: number[] }): string {
  const cpus = os.cpus();
  const out: string[] = [];
  const now = new Date();
  out.push(`## Mesh data path: direct vs nginx vs Trellis`);
  out.push('');
  out.push(`- Date: ${now.toISOString().replace('T', ' ').slice(0, 16)} UTC`);
  out.push(`- Machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, Linux ${os.release()}; load average before the run ${context.loadAverage.map((v) => v.toFixed(2)).join(' ')}`);
  out.push(`- Software: node ${process.version}, ${context.nginx || 'nginx (version unknown)'}, autocannon (closed loop) and an open-loop node:http generator, in their own process`);
  out.push(
    `- Load: GET ${REQUEST_PATH} → 200 with a ${BODY_BYTES}-byte body, ${CONNECTIONS} keep-alive HTTP/1.1 connections. Latency: ${FIXED_SECONDS} s open loop at ${count(RATE)} req/s (issue → last byte; a request waiting for its busy connection counts its wait), after a ${WARMUP_SECONDS} s closed-loop warm-up. Max: ${MAX_SECONDS} s closed loop.`,
  );
  out.push(`- Trellis path checks: ${context.checks.join('; ')}`);
  out.push('');
  out.push('| path | p50 | p90 | p99 | max req/s | proxy CPU s per 1,000 req | proxy peak RSS | failed requests |');
  out.push('| --- | ---: | ---: | ---: | ---: | --- | --- | --- |');
  for (const result of results) {
    const latency = result.fixed.load.latencyMs;
    // Below the target rate, the latencies are those of an overloaded path: say so in the row.
    const achieved = result.fixed.load.okPerSecond;
    const name = achieved < RATE * 0.99 ? `${result.setup.name} — **only ${count(achieved)} req/s achieved of ${count(RATE)}**` : result.setup.name;
    out.push(`| ${name} | ${ms(latency?.p50)} | ${ms(latency?.p90)} | ${ms(latency?.p99)} | ${count(result.max.load.okPerSecond)} | ${proxyCpuCell(result)} | ${rssCell(result)} | ${errorCell(result)} |`);
  }
  const [direct, nginx, trellis] = results;
  const ratioRow = (label: string, base: PathResult | undefined): string => {
    const t = trellis?.fixed.load.latencyMs;
    const b = base?.fixed.load.latencyMs;
    return `| ${label} | ${ratio(t?.p50, b?.p50)} | | ${ratio(t?.p99, b?.p99)} | ${ratio(trellis?.max.load.okPerSecond, base?.max.load.okPerSecond)} | | | |`;
  };
  out.push(ratioRow('Trellis / direct', direct));
  out.push(ratioRow('Trellis / nginx', nginx));
  out.push('');

  out.push(
    `Where the CPU goes (% of one core over each measured run, from /proc; ${cpus.length} cores in all). "Rest of the machine" is busy time charged to none of these processes: kernel softirq work and anything else running, such as another build.`,
  );
  out.push('');
  out.push('| path | run | achieved req/s | load generator | upstream | proxies | control plane | rest of the machine |');
  out.push('| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |');
  for (const result of results) {
    for (const [label, measured] of [[`${count(RATE)} req/s`, result.fixed], ['closed loop', result.max]] as const) {
      const percent = (ticks: number): string => `${((seconds(ticks) / measured.wallSeconds) * 100).toFixed(0)}%`;
      const pct = (pid: number): string => percent(measured.ticks.get(pid) ?? Number.NaN);
      // Everything else that ran: kernel softirq work not charged to a process, and other people's processes.
      const ours = [...measured.ticks.values()].reduce((sum, ticks) => sum + ticks, 0);
      const proxies = [...result.setup.proxies, ...(result.setup.idle ?? [])].map((proxy) => `${proxy.label} ${pct(proxy.pid)}`).join(', ') || '–';
      out.push(`| ${result.setup.name} | ${label} | ${count(measured.load.okPerSecond)} | ${pct(measured.loadgenPid)} | ${pct(context.upstreamPid)} | ${proxies} | ${pct(context.controlPlanePid)} | ${percent(Math.max(0, measured.machineTicks - ours))} |`);
    }
  }
  out.push('');
  out.push(
    `Open-loop generator, per path (${results.map((result) => result.setup.name.split(' ')[0]).join(' / ')}): requests issued late against the schedule by p99 ${results
      .map((result) => ms(result.fixed.load.scheduleLagMs?.p99))
      .join(' / ')}; connections opened while measuring ${results.map((result) => String(result.fixed.load.connectionsOpenedWhileMeasuring ?? 'n/a')).join(' / ')}.`,
  );
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const nginxBinary = ensureNginx();
  const loadAverage = os.loadavg();
  const tmp = mkdtempSync(join(os.tmpdir(), 'trellis-bench-'));
  const logs = join(tmp, 'logs');
  mkdirSync(logs);
  const procs = new Processes(logs);
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await procs.stopAll();
    if (KEEP) process.stderr.write(`kept ${tmp}\n`);
    else rmSync(tmp, { recursive: true, force: true });
  };
  const fail = (why: string): void => {
    process.stderr.write(`\nmesh benchmark stopped: ${why}\n${procs.tails()}\n`);
    void cleanup().finally(() => process.exit(1));
  };
  const onSignal = (signal: NodeJS.Signals): void => fail(`received ${signal}`);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => procs.killNow());
  const watchdog = setTimeout(() => fail(`the run took longer than ${DEADLINE_MS / 60_000} minutes`), DEADLINE_MS);

  try {
    // Upstream.
    const upstream = procs.start('upstream', process.execPath, [UPSTREAM, String(BODY_BYTES)], { pipeStdout: true });
    const { port: upstreamPort } = await firstJsonLine<{ port: number }>(upstream, 'the upstream');
    // Load generators end by design; everything else must run until the end.
    const mayExit = (name: string): boolean => name.startsWith('loadgen');
    const alive = (): void => {
      const died = procs.exited(mayExit);
      if (died.length > 0) throw new Error(`${died.join(', ')} stopped unexpectedly`);
    };

    // nginx.
    const nginxDir = join(tmp, 'nginx');
    mkdirSync(nginxDir);
    const nginxPort = await freePort();
    writeFileSync(join(nginxDir, 'nginx.conf'), nginxConfig(nginxDir, nginxPort, upstreamPort));
    const nginx = procs.start('nginx', nginxBinary, ['-p', nginxDir, '-c', join(nginxDir, 'nginx.conf')]);
    const nginxUrl = `http://127.0.0.1:${nginxPort}${REQUEST_PATH}`;
    await until('nginx answering', 15_000, async () => ((await get(nginxUrl)).status === 200 ? true : undefined), alive);
    const nginxWorkers = childrenOf(nginx.pid as number);
    if (nginxWorkers.length !== 1) throw new Error(`expected one nginx worker, found ${nginxWorkers.length}`);

    // Trellis: control plane, then the two sidecars.
    const configDir = join(tmp, 'config');
    const stateDir = join(tmp, 'state');
    mkdirSync(configDir);
    const serverInbound = await freePort();
    const clientPort = await freePort();
    writeFileSync(join(configDir, 'mesh.yaml'), meshConfig(serverInbound));
    const controlPlane = procs.start('controlplane', process.execPath, [BIN, 'controlplane', '--config', configDir, '--state', stateDir, '--discovery-port', '0', '--admin-port', '0']);
    const admin = await until(
      'the control plane ready',
      30_000,
      async () => {
        const record = join(stateDir, 'controlplane.json');
        if (!existsSync(record)) return undefined;
        const { admin: url } = JSON.parse(readFileSync(record, 'utf8')) as { admin: string };
        return (await get(`${url}/healthz/ready`)).status === 200 ? url : undefined;
      },
      alive,
    );
    const token = (workload: string): string =>
      execFileSync(process.execPath, [BIN, 'token', 'create', '--state', stateDir, '--workload', workload], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 }).trim();
    const proxyArgs = (name: string): string[] => [...SIDECAR_NODE_FLAGS, BIN, 'proxy', '--mesh', stateDir, '--workload', `${NAMESPACE}/${name}`, '--admin-port', '0', '--outbound-port', '0', '--state', join(stateDir, 'proxies', name)];
    const server = procs.start('server-sidecar', process.execPath, [...proxyArgs('server'), '--app-port', String(upstreamPort)], { env: { TRELLIS_JOIN_TOKEN: token(`${NAMESPACE}/server`) } });
    const client = procs.start('client-sidecar', process.execPath, [...proxyArgs('client'), '--upstream', `${SERVICE_HOST}:${SERVICE_PORT}=${clientPort}`], {
      env: { TRELLIS_JOIN_TOKEN: token(`${NAMESPACE}/client`) },
    });
    await until(
      'both sidecars synced',
      60_000,
      async () => {
        const reply = await get(`${admin}/debug/syncz`);
        if (reply.status !== 200) return undefined;
        const { proxies } = JSON.parse(reply.body) as { proxies: Array<{ types: Record<string, { status: string }> }> };
        return proxies.filter((proxy) => Object.values(proxy.types).every((type) => type.status === 'SYNCED')).length >= 2 ? true : undefined;
      },
      alive,
    );
    const trellisUrl = `http://127.0.0.1:${clientPort}${REQUEST_PATH}`;
    await until('a request through both sidecars', 30_000, async () => ((await get(trellisUrl)).status === 200 ? true : undefined), alive);

    // Check that the Trellis path does what it claims: mTLS with the client's identity, authz on.
    const checks: string[] = [];
    const whoami = await get(`http://127.0.0.1:${clientPort}/whoami`);
    const xfcc = (JSON.parse(whoami.body) as { xfcc: string | null }).xfcc ?? '';
    if (!xfcc.includes(`URI=spiffe://${CLIENT_PRINCIPAL}`)) throw new Error(`the upstream did not see the client's identity through the mesh (x-forwarded-client-cert: ${xfcc || 'none'})`);
    checks.push(`the upstream sees \`URI=spiffe://${CLIENT_PRINCIPAL}\` in x-forwarded-client-cert`);
    const denied = await get(`http://127.0.0.1:${clientPort}/not-allowed`);
    if (denied.status !== 403) throw new Error(`a path outside the policy was answered ${denied.status}, not 403: is authorization on?`);
    checks.push('a path outside the ALLOW policy gets 403');
    const plaintext = await plaintextAttempt(serverInbound);
    if (plaintext !== 'closed') throw new Error(`plaintext to the server sidecar was answered (${plaintext}): is mTLS STRICT?`);
    checks.push("plaintext to the server sidecar's inbound port is refused (STRICT)");
    for (const [name, url] of [['direct', `http://127.0.0.1:${upstreamPort}${REQUEST_PATH}`], ['nginx', nginxUrl], ['Trellis', trellisUrl]] as const) {
      const reply = await get(url);
      if (reply.status !== 200 || reply.body.length !== BODY_BYTES) throw new Error(`${name}: expected 200 with ${BODY_BYTES} bytes, got ${reply.status} with ${reply.body.length}`);
    }

    const upstreamPid = upstream.pid as number;
    const controlPlanePid = controlPlane.pid as number;
    const nginxMaster = nginx.pid as number;
    const workerPid = nginxWorkers[0] as number;
    const paths: PathSetup[] = [
      { name: 'direct', url: `http://127.0.0.1:${upstreamPort}${REQUEST_PATH}`, proxies: [] },
      { name: 'nginx (1 worker)', url: nginxUrl, proxies: [{ label: 'worker', pid: workerPid }], idle: [{ label: 'master', pid: nginxMaster }] },
      {
        name: 'Trellis (2 sidecars, mTLS + authz)',
        url: trellisUrl,
        proxies: [
          { label: 'client', pid: client.pid as number },
          { label: 'server', pid: server.pid as number },
        ],
      },
    ];
    const watch = [upstreamPid, controlPlanePid, nginxMaster, workerPid, client.pid as number, server.pid as number];
    const results: PathResult[] = [];
    for (const path of paths) results.push(await measurePath(procs, path, watch, alive));

    const text = report(results, { nginx: nginxVersion(nginxBinary), checks, upstreamPid, controlPlanePid, loadAverage });
    process.stdout.write(`${text}\n`);
    const failed = results.some((result) => problems(result.warmup).length + problems(result.fixed.load).length + problems(result.max.load).length > 0);
    if (failed) process.stderr.write('\nThe benchmark ran to the end, but some requests failed: see the "failed requests" column.\n');
    return failed ? 1 : 0;
  } catch (err) {
    process.stderr.write(`\nmesh benchmark failed: ${(err as Error).message}\n${procs.tails()}\n`);
    return 1;
  } finally {
    clearTimeout(watchdog);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

process.exitCode = await main().catch((err: unknown) => {
  process.stderr.write(`mesh benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});
