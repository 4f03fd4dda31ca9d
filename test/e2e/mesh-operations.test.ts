/**
 * Operating a mesh: a trust domain of one's own, moving a workload's port (also onto a busy
 * one), stopping proxies promptly, and a proxy that cannot start giving up instead of hanging.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runTrellis, TRELLIS_BIN } from '../helpers/cli.js';
import { freePorts, httpGet, httpRequest, MeshProcesses, type StartedWorkload, waitFor } from '../helpers/mesh-process.js';

const workloads = (webPort: number): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: shop}
spec:
  hosts: [web.shop.svc.example.org]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-1, namespace: shop}
spec: {address: 127.0.0.1, serviceAccount: web, labels: {app: web}, ports: {http: ${webPort}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: shop}
spec: {address: 127.0.0.1, serviceAccount: client}
`;

describe('operating a mesh', () => {
  let mesh: MeshProcesses;
  let web: StartedWorkload;
  let client: StartedWorkload;
  let ports: number[];

  before(async () => {
    ports = await freePorts(3);
    mesh = await MeshProcesses.start({
      'mesh.yaml': `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec: {trustDomain: example.org, rootNamespace: mesh-system, defaultAuthorization: DENY}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-allow, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {principals: ["example.org/ns/shop/sa/client"]}}]}]
`,
      'workloads.yaml': workloads(ports[0] as number),
    });
    web = await mesh.startWorkload('shop/web-1', { app: 'http-echo.mjs' });
    client = await mesh.startWorkload('shop/client', { outboundPort: true });
    await mesh.waitSynced(2);
  });
  after(async () => {
    await mesh?.stop();
  });

  const call = () => httpRequest({ url: 'http://web.shop.svc.example.org/hello', proxyPort: client.ready.listening.outbound as number });

  it('runs a mesh with its own trust domain and root namespace', async () => {
    const reply = await call();
    assert.equal(reply.status, 200, reply.body);
    assert.match(reply.body, /URI=spiffe:\/\/example\.org\/ns\/shop\/sa\/client/);
    const identity = JSON.parse((await httpGet(`http://127.0.0.1:${web.ready.admin}/identity`)).body) as { spiffeId: string };
    assert.equal(identity.spiffeId, 'spiffe://example.org/ns/shop/sa/web');
  });

  it('refuses to move a workload onto a busy port, keeps serving, and follows a move to a free one', async () => {
    const blocker = net.createServer();
    blocker.listen(ports[1], '127.0.0.1');
    await once(blocker, 'listening');
    try {
      mesh.writeConfig('workloads.yaml', workloads(ports[1] as number));
      await waitFor(async () => {
        const status = await runTrellis(['proxy-status', '--admin', mesh.admin, '-o', 'json']);
        return /NACK/.test(status.stdout) && /cannot open listeners/.test(status.stdout);
      }, 15_000, 'the web proxy to refuse the busy port');
      // The web proxy keeps its previous version: its old port still answers. (Callers already
      // got the new address from the control plane, as they would in Istio.)
      const direct = await httpRequest({ url: `http://127.0.0.1:${ports[0]}/hello` });
      assert.equal(direct.status, 403, 'the old listener still serves (plaintext is PERMISSIVE here; no identity → denied)');
    } finally {
      blocker.close();
    }
    mesh.writeConfig('workloads.yaml', workloads(ports[2] as number));
    await waitFor(async () => (await call()).status === 200 && (await httpGet(`http://127.0.0.1:${web.ready.admin}/config_dump`)).body.includes(String(ports[2])), 15_000, 'the move to a free port');
    assert.equal((await call()).status, 200);
  });

  it('gives up with an error when the proxy cannot become ready, leaving nothing behind', async () => {
    const token = await mesh.token('shop/web-1');
    // A workload with ports but no application port: the inbound config is refused.
    const result = await runTrellis(['proxy', '--mesh', mesh.stateDir, '--workload', 'shop/web-1', '--token', token, '--admin-port', '0', '--ready-timeout', '3s'], { timeoutMs: 30_000 });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stderr, /did not become ready/);
  });

  it('restarts with a spent join token still in its environment, using the kept certificate', async () => {
    const token = await mesh.token('shop/client');
    const stateDir = `${mesh.dir}/restart-client`;
    const args = ['proxy', '--mesh', mesh.stateDir, '--workload', 'shop/client', '--admin-port', '0', '--outbound-port', '0', '--state', stateDir, '--ready-timeout', '20s'];
    const first = await runTrellisUntilReady(args, token);
    first.kill('SIGTERM');
    await once(first, 'exit');
    const second = await runTrellisUntilReady(args, token);
    second.kill('SIGTERM');
    await once(second, 'exit');
  });

  it('stops promptly on SIGTERM even with idle keep-alive connections from peers', async () => {
    assert.equal((await call()).status, 200);
    const exited = once(web.process, 'exit');
    web.process.kill('SIGTERM');
    const [code] = (await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error('the proxy did not stop within 20 s')), 20_000))])) as [number | null];
    assert.equal(code, 0, 'trellis run exits with the application’s own code (the test app exits 0 on SIGTERM)');
  });
});

/** Starts `trellis …` with a join token in its environment and resolves once it is ready. */
function runTrellisUntilReady(args: string[], token: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TRELLIS_BIN, ...args], { env: { ...process.env, TRELLIS_JOIN_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not ready in time:\n${output}`));
    }, 30_000);
    const onData = (data: Buffer): void => {
      output += data.toString();
      if (output.includes('"proxy.ready"')) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}:\n${output}`));
    });
  });
}
