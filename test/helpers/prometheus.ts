/**
 * A real Prometheus server for tests: Debian's `prometheus` binary (installed by .ci/run; a
 * test never installs it), with a generated config, its own storage in a temp directory and a
 * free loopback port. `query` runs an instant query through the HTTP API.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, httpGet, waitFor } from './mesh-process.js';

export const PROMETHEUS_BIN = process.env['TRELLIS_PROMETHEUS'] ?? '/usr/bin/prometheus';

export interface ScrapeJob {
  name: string;
  /** `host:port` targets. */
  targets: string[];
  path?: string;
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export class PrometheusServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
  ) {}

  /** Throws a message that says what to install when the binary is missing. */
  static async start(jobs: ScrapeJob[], scrapeInterval = '1s'): Promise<PrometheusServer> {
    if (!existsSync(PROMETHEUS_BIN)) {
      throw new Error(`${PROMETHEUS_BIN} not found: this test needs Debian's Prometheus server ("apt-get install prometheus", as .ci/run does), or set TRELLIS_PROMETHEUS to a prometheus binary`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'trellis-prometheus-'));
    const [port] = (await freePorts(1)) as [number];
    const config = [
      'global:',
      `  scrape_interval: ${scrapeInterval}`,
      `  evaluation_interval: ${scrapeInterval}`,
      'scrape_configs:',
      ...jobs.flatMap((job) => [
        `  - job_name: ${JSON.stringify(job.name)}`,
        `    metrics_path: ${JSON.stringify(job.path ?? '/metrics')}`,
        `    scrape_timeout: ${scrapeInterval}`,
        '    static_configs:',
        `      - targets: [${job.targets.map((target) => JSON.stringify(target)).join(', ')}]`,
      ]),
      '',
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const log = openSync(join(dir, 'prometheus.log'), 'a');
    let child: ChildProcess;
    try {
      child = spawn(
        PROMETHEUS_BIN,
        [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
        { stdio: ['ignore', log, log] },
      );
    } finally {
      closeSync(log);
    }
    const server = new PrometheusServer(child, dir, `http://127.0.0.1:${port}`);
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${server.logTail()}`);
        return (await httpGet(`${server.url}/-/ready`).catch(() => undefined))?.status === 200;
      }, 30_000, 'prometheus ready');
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  /** An instant query; the samples of a vector result (a scalar becomes one sample). */
  async query(expr: string): Promise<Sample[]> {
    const reply = await httpGet(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = JSON.parse(reply.body) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
    if (body.status !== 'success' || !body.data) throw new Error(`query ${expr} failed: ${body.error ?? reply.body}`);
    if (body.data.resultType === 'scalar') return [{ metric: {}, value: Number((body.data.result as [number, string])[1]) }];
    return (body.data.result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** Queries until `accept` holds for the result (bounded); returns the last result. */
  async until(expr: string, accept: (samples: Sample[]) => boolean, timeoutMs = 30_000): Promise<Sample[]> {
    let last: Sample[] = [];
    try {
      await waitFor(async () => accept((last = await this.query(expr))), timeoutMs, `prometheus: ${expr}`);
    } catch (err) {
      throw new Error(`${(err as Error).message}; last result: ${JSON.stringify(last)}`);
    }
    return last;
  }

  /** Every target's health, for failure messages. */
  async targets(): Promise<string> {
    return (await httpGet(`${this.url}/api/v1/targets`)).body;
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(join(this.dir, 'prometheus.log'), 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
