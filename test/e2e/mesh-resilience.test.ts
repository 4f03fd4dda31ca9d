/**
 * The mesh keeps serving while its control plane dies and comes back, and while certificates
 * rotate under traffic: no request fails in either case.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { freePorts, httpGet, httpRequest, MeshProcesses, type StartedWorkload, waitFor } from '../helpers/mesh-process.js';
import { ZERO_TRUST_MESH } from '../helpers/mesh-yaml.js';

async function configFor(webPort: number): Promise<Record<string, string>> {
  return {
    'mesh.yaml': ZERO_TRUST_MESH,
    'web.yaml': `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-v1, namespace: default}
spec: {address: 127.0.0.1, serviceAccount: web, labels: {app: web}, ports: {http: ${webPort}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: 127.0.0.1, serviceAccount: client}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-allow, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]}]
`,
  };
}

/** Sends requests back to back (over keep-alive connections, with a fresh one now and then) until stopped. */
function startTraffic(proxyPort: number): { sent: () => number; stop: () => Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  const result = { ok: 0, failed: [] as string[] };
  const loop = async (): Promise<void> => {
    let agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    for (let i = 0; running; i++) {
      if (i % 50 === 0) {
        agent.destroy();
        agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
      }
      try {
        const reply = await httpRequest({ url: 'http://web.default.svc.cluster.local/ping', proxyPort, agent });
        if (reply.status === 200) result.ok += 1;
        else result.failed.push(`${reply.status} ${reply.body.slice(0, 120)}`);
      } catch (err) {
        result.failed.push((err as Error).message);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    agent.destroy();
  };
  const done = loop();
  return {
    sent: () => result.ok + result.failed.length,
    stop: async () => {
      running = false;
      await done;
      return result;
    },
  };
}

describe('mesh resilience', () => {
  describe('the control plane goes away and comes back', () => {
    let mesh: MeshProcesses;
    let client: StartedWorkload;

    before(async () => {
      const [webPort] = (await freePorts(1)) as [number];
      mesh = await MeshProcesses.start(await configFor(webPort));
      await mesh.startWorkload('default/web-v1', { app: 'http-echo.mjs' });
      client = await mesh.startWorkload('default/client', { outboundPort: true });
      await mesh.waitSynced(2);
    });
    after(async () => {
      await mesh?.stop();
    });

    it('serves every request while the control plane is killed and restarted', async () => {
      const traffic = startTraffic(client.ready.listening.outbound as number);
      const connected = async (): Promise<boolean> => (JSON.parse((await httpGet(`http://127.0.0.1:${client.ready.admin}/stats`)).body) as { connected: boolean }).connected;
      try {
        await new Promise((resolve) => setTimeout(resolve, 500));
        await mesh.killControlPlane();
        // Fail static: the proxies keep their config and certificate.
        await waitFor(async () => !(await connected()), 10_000, 'the proxy to notice the control plane is gone');
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        await mesh.startControlPlane();
        await mesh.waitSynced(2);
        await waitFor(connected, 30_000, 'the proxy to reconnect');
        await new Promise((resolve) => setTimeout(resolve, 500));
      } finally {
        await traffic.stop();
      }
      const { ok, failed } = await traffic.stop();
      assert.deepEqual(failed, [], `${failed.length} of ${ok + failed.length} requests failed`);
      assert.ok(ok > 50, `only ${ok} requests were sent`);
    });
  });

  describe('certificates rotate under traffic', () => {
    let mesh: MeshProcesses;
    let client: StartedWorkload;
    let web: StartedWorkload;

    before(async () => {
      const [webPort] = (await freePorts(1)) as [number];
      mesh = await MeshProcesses.start(await configFor(webPort));
      web = await mesh.startWorkload('default/web-v1', { app: 'http-echo.mjs', svidTtl: '3s' });
      client = await mesh.startWorkload('default/client', { outboundPort: true, svidTtl: '3s' });
      await mesh.waitSynced(2);
    });
    after(async () => {
      await mesh?.stop();
    });

    it('renews both sides several times without failing a request', async () => {
      const serials = new Set<string>();
      const identity = async (): Promise<string> => (JSON.parse((await httpGet(`http://127.0.0.1:${web.ready.admin}/identity`)).body) as { serial: string }).serial;
      serials.add(await identity());
      const traffic = startTraffic(client.ready.listening.outbound as number);
      try {
        // Both: two renewals, and enough requests around them (a loaded machine sends fewer per second).
        await waitFor(async () => {
          serials.add(await identity());
          return serials.size >= 3 && traffic.sent() > 50;
        }, 30_000, 'the server to renew its certificate twice under traffic');
      } finally {
        await traffic.stop();
      }
      const { ok, failed } = await traffic.stop();
      assert.deepEqual(failed, [], `${failed.length} of ${ok + failed.length} requests failed`);
      assert.ok(ok > 50, `only ${ok} requests were sent`);
    });
  });
});
