/**
 * Egress control and rate limiting through real sidecars (issue 5): a mesh closed to
 * unregistered destinations (MeshConfig REGISTRY_ONLY), opened for one host by a ServiceEntry,
 * passed through for one workload by a Sidecar with ALLOW_ANY, narrowed by Sidecar egress hosts;
 * and trellis.dev RateLimit token buckets on a workload's inbound side, per workload and per
 * caller. The "external" server is a plain HTTP server of the test, on loopback.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePorts, MeshProcesses, type StartedWorkload, waitFor } from '../helpers/mesh-process.js';
import { type AppReply, appOf, serviceEntry, TrafficApp, via, workloadEntry } from '../helpers/traffic-app.js';

const MESH = `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`;

/** `free` may call anything; `narrow` sees only its own namespace's services (plus what `extraHosts` adds). */
function sidecars(extraHosts: string[] = []): string {
  return `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: free, namespace: default}
spec:
  workloadSelector: {labels: {app: free}}
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: narrow, namespace: default}
spec:
  workloadSelector: {labels: {app: narrow}}
  egress:
  - hosts: [${['./*', ...extraHosts].map((h) => `"${h}"`).join(', ')}]
`;
}

function externalServices(port: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api-external, namespace: default}
spec:
  hosts: [api.external.test]
  location: MESH_EXTERNAL
  ports: [{number: ${port}, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: localhost, namespace: default}
spec:
  hosts: [localhost]
  location: MESH_EXTERNAL
  ports: [{number: ${port}, name: http, protocol: HTTP}]
  resolution: DNS
`;
}

const RATE_LIMITS = `apiVersion: trellis.dev/v1alpha1
kind: RateLimit
metadata: {name: near-limits, namespace: default}
spec:
  selector: {matchLabels: {app: near}}
  rules:
  - match: {paths: ["/workload/*"]}
    per: workload
    tokenBucket: {maxTokens: 3, tokensPerFill: 3, fillInterval: 1h}
  - match: {paths: ["/caller/*"]}
    per: caller
    tokenBucket: {maxTokens: 2, tokensPerFill: 2, fillInterval: 1h}
  - match: {paths: ["/refill/*"]}
    tokenBucket: {maxTokens: 1, tokensPerFill: 1, fillInterval: 2s}
`;

describe('egress control and rate limits through sidecars', () => {
  let mesh: MeshProcesses;
  let client: StartedWorkload;
  let free: StartedWorkload;
  let narrow: StartedWorkload;
  let near: TrafficApp;
  let far: TrafficApp;
  let external: TrafficApp;
  let fromClient: ReturnType<typeof via>;
  let fromFree: ReturnType<typeof via>;
  let fromNarrow: ReturnType<typeof via>;

  before(async () => {
    [near, far, external] = await Promise.all([TrafficApp.start('near'), TrafficApp.start('far'), TrafficApp.start('external')]);
    const [nearPort, farPort] = (await freePorts(2)) as [number, number];
    mesh = await MeshProcesses.start({
      'mesh.yaml': MESH,
      'workloads.yaml': [
        workloadEntry('client', { app: 'client' }, undefined),
        workloadEntry('free', { app: 'free' }, undefined),
        workloadEntry('narrow', { app: 'narrow' }, undefined),
        workloadEntry('near', { app: 'near' }, nearPort),
        workloadEntry('far', { app: 'far' }, farPort, { namespace: 'other' }),
      ].join('---\n'),
      'services.yaml': [serviceEntry('near', { app: 'near' }), serviceEntry('far', { app: 'far' }, { namespace: 'other' })].join('---\n'),
      'sidecars.yaml': sidecars(),
      'rate-limits.yaml': RATE_LIMITS,
    });
    [client, free, narrow] = await Promise.all([
      mesh.startWorkload('default/client', { outboundPort: true }),
      mesh.startWorkload('default/free', { outboundPort: true }),
      mesh.startWorkload('default/narrow', { outboundPort: true }),
      mesh.startWorkload('default/near', { outboundPort: true, extraArgs: ['--app-port', String(near.port)] }),
      mesh.startWorkload('other/far', { outboundPort: true, extraArgs: ['--app-port', String(far.port)] }),
    ]);
    await mesh.waitSynced(5);
    fromClient = via(client.ready.listening.outbound as number);
    fromFree = via(free.ready.listening.outbound as number);
    fromNarrow = via(narrow.ready.listening.outbound as number);
  });

  after(async () => {
    await mesh?.stop();
    await Promise.all([near?.close(), far?.close(), external?.close()]);
  });

  it('REGISTRY_ONLY refuses an unregistered host with 502 and the reason; a ServiceEntry opens it; ALLOW_ANY passes through', async () => {
    const byName = `http://localhost:${external.port}/hello`;
    const byStaticEntry = `http://api.external.test:${external.port}/hello`;
    for (const target of [byName, byStaticEntry, `http://127.0.0.1:${external.port}/hello`]) {
      const blocked = await fromClient(target);
      assert.equal(blocked.status, 502, `${target}: ${blocked.body}`);
      assert.match(blocked.body, /is not a registered service and outboundTrafficPolicy REGISTRY_ONLY \(MeshConfig mesh\)/);
    }
    assert.equal(external.seen.length, 0, 'nothing reached the external server');

    // A workload whose Sidecar says ALLOW_ANY goes straight to the address it asked for.
    const passed = await fromFree(`http://127.0.0.1:${external.port}/passthrough`);
    assert.equal(passed.status, 200, passed.body);
    assert.equal(appOf(passed), 'external');
    assert.equal(external.seen.length, 1);

    // Register the hosts (resolution DNS for localhost, STATIC with an endpoint for a made-up name).
    mesh.writeConfig('external.yaml', externalServices(external.port));
    await waitFor(async () => (await fromClient(byName)).status === 200, 15_000, 'the ServiceEntry to open localhost');
    const viaDns = await fromClient(byName);
    assert.equal(appOf(viaDns), 'external');
    assert.equal((JSON.parse(viaDns.body) as AppReply).authority, `localhost:${external.port}`);
    const viaStatic = await fromClient(byStaticEntry);
    assert.equal(viaStatic.status, 200, viaStatic.body);
    assert.equal((JSON.parse(viaStatic.body) as AppReply).authority, `api.external.test:${external.port}`);
    // HTTPS-style CONNECT tunnels follow the same policy: a registered host gets a tunnel.
    const tunnelled = await connectThrough(client.ready.listening.outbound as number, `localhost:${external.port}`);
    assert.match(tunnelled, /^HTTP\/1\.1 200 /);
    assert.match(tunnelled, /"app":"external"/);
    const refused = await connectThrough(client.ready.listening.outbound as number, `127.0.0.1:${external.port}`);
    assert.match(refused, /^HTTP\/1\.1 502 /);
    // Still closed for anything else.
    const stillBlocked = await fromClient(`http://127.0.0.1:${external.port}/hello`);
    assert.equal(stillBlocked.status, 502);
  });

  it('narrows what a workload sees with Sidecar egress hosts', async () => {
    const nearUrl = 'http://near.default.svc.cluster.local/hi';
    const farUrl = 'http://far.other.svc.cluster.local/hi';
    // Without a Sidecar of its own, the client sees both namespaces.
    assert.equal(appOf(await fromClient(farUrl)), 'far');
    // ./* : only default's services.
    assert.equal(appOf(await fromNarrow(nearUrl)), 'near');
    const blocked = await fromNarrow(farUrl);
    assert.equal(blocked.status, 502, blocked.body);
    assert.match(blocked.body, /far\.other\.svc\.cluster\.local is not a registered service/);

    // Add the other namespace's service to its egress hosts.
    mesh.writeConfig('sidecars.yaml', sidecars(['other/far.other.svc.cluster.local']));
    await waitFor(async () => (await fromNarrow(farUrl)).status === 200, 15_000, 'the Sidecar edit to open far');
    assert.equal(appOf(await fromNarrow(farUrl)), 'far');
    assert.equal(appOf(await fromNarrow(nearUrl)), 'near');
  });

  it('rate limits a workload with 429 and retry-after, per workload and per caller', async () => {
    const statuses = async (call: ReturnType<typeof via>, path: string, count: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < count; i++) out.push((await call(`http://near.default.svc.cluster.local${path}`)).status);
      return out;
    };
    // per: workload — one bucket of 3 for all callers.
    assert.deepEqual(await statuses(fromClient, '/workload/a', 2), [200, 200]);
    assert.deepEqual(await statuses(fromNarrow, '/workload/b', 3), [200, 429, 429]);
    const limited = await fromClient('http://near.default.svc.cluster.local/workload/c');
    assert.equal(limited.status, 429);
    assert.equal(limited.body, 'local_rate_limited');
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 3600, `retry-after: ${String(limited.headers['retry-after'])}`);
    assert.match(String(limited.headers['x-trellis-rate-limited']), /default\/near-limits rule 0 \(per workload\)/);
    // Unmatched paths are not limited.
    assert.deepEqual(await statuses(fromClient, '/free', 5), [200, 200, 200, 200, 200]);

    // per: caller — each identity has its own bucket of 2.
    assert.deepEqual(await statuses(fromClient, '/caller/x', 3), [200, 200, 429]);
    assert.deepEqual(await statuses(fromNarrow, '/caller/x', 3), [200, 200, 429]);
    assert.equal((await fromClient('http://near.default.svc.cluster.local/caller/y')).status, 429);

    // A bucket refills: one token every 2 s.
    assert.equal((await fromClient('http://near.default.svc.cluster.local/refill/1')).status, 200);
    const empty = await fromClient('http://near.default.svc.cluster.local/refill/2');
    if (empty.status === 429) {
      await waitFor(async () => (await fromClient('http://near.default.svc.cluster.local/refill/3')).status === 200, 10_000, 'the bucket to refill');
    }
  });
});

/**
 * CONNECT through a sidecar's HTTP proxy port, then one plain HTTP request inside the tunnel.
 * Returns the CONNECT status line when refused, else the inner response.
 */
function connectThrough(proxyPort: number, authority: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: authority, headers: { host: authority } });
    req.setTimeout(10_000, () => req.destroy(new Error(`CONNECT ${authority} timed out`)));
    req.once('error', reject);
    req.once('connect', (res: http.IncomingMessage, socket: net.Socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        resolve(`HTTP/1.1 ${res.statusCode ?? 0} ${res.statusMessage ?? ''}`);
        return;
      }
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (data += chunk));
      socket.once('error', reject);
      socket.once('close', () => resolve(data));
      socket.write(`GET /tunnelled HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
    });
    req.end();
  });
}
