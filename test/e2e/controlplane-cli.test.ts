/**
 * `trellis controlplane` as a process, driven with the CLI as a user would: a join token for a
 * WorkloadEntry, a proxy (the discovery client) connecting, `trellis status` and
 * `trellis proxy-status`, an invalid edit, `trellis ca revoke`, and a clean SIGTERM shutdown.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { DiscoveryClient } from '../../src/dataplane/discovery-client.js';
import { runTrellis, TRELLIS_BIN } from '../helpers/cli.js';
import { meshYaml, TRUST_DOMAIN, until } from '../helpers/mesh.js';

describe('trellis controlplane, status and proxy-status, as a user runs them', () => {
  let dir: string;
  let configDir: string;
  let stateDir: string;
  let proc: ChildProcess;
  let admin: string;
  let discovery: string;
  let client: DiscoveryClient | undefined;
  const logs: Array<Record<string, unknown>> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-cp-cli-'));
    configDir = join(dir, 'config');
    stateDir = join(dir, 'state');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'mesh.yaml'), meshYaml());
    proc = spawn(process.execPath, [TRELLIS_BIN, 'up', '--config', configDir, '--state', stateDir, '--discovery-port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ text: line });
      }
    });
    await until(() => logs.some((l) => l['event'] === 'controlplane.ready'), 20_000, 'the control plane to start');
    const ready = logs.find((l) => l['event'] === 'controlplane.ready') as { admin: string; discovery: string };
    admin = ready.admin;
    discovery = ready.discovery;
  });

  after(async () => {
    client?.stop();
    if (proc.exitCode === null) {
      proc.kill('SIGKILL');
      await once(proc, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('issues a join token for a WorkloadEntry and serves that proxy; proxy-status lists it', async () => {
    const token = await runTrellis(['token', 'create', '--state', stateDir, '--workload', 'shop/web']);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stderr, new RegExp(`join token for spiffe://${TRUST_DOMAIN}/ns/shop/sa/web`));
    const unknown = await runTrellis(['token', 'create', '--state', stateDir, '--workload', 'shop/nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no WorkloadEntry shop\/nope/);

    client = new DiscoveryClient({ address: discovery, workload: 'shop/web', bundle: join(stateDir, 'ca', 'bundle.pem'), trustDomain: TRUST_DOMAIN, joinToken: token.stdout.trim(), apply: () => ({ ok: true }), backoff: { initialMs: 100, maxMs: 400 } });
    await client.start();
    await client.waitForSnapshot();

    let json: { proxies: Array<{ workload: string; types: Record<string, { status: string; acked?: string }> }> } = { proxies: [] };
    await until(async () => {
      const result = await runTrellis(['proxy-status', '--admin', admin, '-o', 'json']);
      assert.equal(result.code, 0, result.stderr);
      json = JSON.parse(result.stdout) as typeof json;
      return json.proxies.length === 1 && Object.values(json.proxies[0]?.types ?? {}).every((t) => t.status === 'SYNCED');
    }, 10_000, 'proxy-status to show web SYNCED');
    assert.equal(json.proxies[0]?.types['outbound']?.acked, client.versions.outbound);

    const text = await runTrellis(['proxy-status', '--admin', admin]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^NAME\s+IDENTITY\s+WORKLOAD\s+INBOUND\s+OUTBOUND\s+TRUST\s+CONNECTED SINCE/m);
    assert.match(text.stdout, new RegExp(`shop/web\\s+spiffe://${TRUST_DOMAIN}/ns/shop/sa/web\\s+SYNCED ${client.versions.workload ?? ''}`));
  });

  it('reports config health, and an invalid edit with its file and line', async () => {
    const healthy = await runTrellis(['status', '--admin', admin]);
    assert.equal(healthy.code, 0, healthy.stderr);
    assert.match(healthy.stdout, /health\s+OK/);
    assert.match(healthy.stdout, /Proxies:\s+1 connected/);

    writeFileSync(join(configDir, 'broken.yaml'), 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: bad\n  namespace: shop\nspec:\n  action: ALLOWED\n');
    let result = await runTrellis(['status', '--admin', admin]);
    await until(async () => {
      result = await runTrellis(['status', '--admin', admin]);
      return result.code === 1;
    }, 10_000, 'status to report the refused edit');
    assert.match(result.stdout, /health\s+ERRORS/);
    assert.ok(result.stdout.includes(`${join(configDir, 'broken.yaml')}:7:11: error: AuthorizationPolicy shop/bad: spec.action:`), result.stdout);
    const json = JSON.parse((await runTrellis(['status', '--admin', admin, '-o', 'json'])).stdout) as { config: { healthy: boolean; errors: Array<{ line: number }> } };
    assert.equal(json.config.healthy, false);
    assert.equal(json.config.errors[0]?.line, 7);
    rmSync(join(configDir, 'broken.yaml'));
  });

  it('pushes a `trellis ca revoke` to the connected proxy within a second', async () => {
    const revoke = await runTrellis(['ca', 'revoke', '--dir', join(stateDir, 'ca'), '--serial', '0123abcd']);
    assert.equal(revoke.code, 0, revoke.stderr);
    // Counted from the end of the CLI command (its own start-up is not the control plane's doing).
    const revokedAt = Date.now();
    await until(() => client?.snapshot?.trust.revocations.serials.includes('0123abcd') === true, 5_000, 'the revocation at the proxy');
    assert.ok(Date.now() - revokedAt < 1_000, `seen ${Date.now() - revokedAt} ms after the revocation`);
    const changed = logs.find((l) => l['event'] === 'ca.trust-changed');
    assert.ok(changed, 'the control plane logged the trust change');
  });

  it('fails with a clear message when no control plane answers', async () => {
    const result = await runTrellis(['status', '--admin', 'http://127.0.0.1:1']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot reach the control plane admin API at http:\/\/127\.0\.0\.1:1.*TRELLIS_ADMIN_UNREACHABLE/);
  });

  it('shuts down cleanly on SIGTERM', async () => {
    proc.kill('SIGTERM');
    const [code] = (await once(proc, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.ok(logs.some((l) => l['event'] === 'controlplane.stopped'));
  });
});
