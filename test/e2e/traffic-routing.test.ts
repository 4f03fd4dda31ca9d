/**
 * Traffic routing through real sidecars (issue 5): a client workload's sidecar calls services
 * whose VirtualServices and DestinationRules split, match, hash, mirror and rewrite, and the
 * test looks at which endpoint answered. Two endpoints (labels version: v1 / v2) back every
 * service here; each scenario has its own service host, so they do not disturb one another.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePorts, httpGet, httpRequest, MeshProcesses, type StartedWorkload, waitFor } from '../helpers/mesh-process.js';
import { type AppReply, appOf, assertBinomial, many, serviceEntry, TrafficApp, via, workloadEntry } from '../helpers/traffic-app.js';

const SERVICES = ['split', 'reviews', 'canary', 'mirror', 'hash', 'hashq', 'hashc', 'misc'];

function subsets(host: string, trafficPolicy = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${host}, namespace: default}
spec:
  host: ${host}
${trafficPolicy}  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;
}

function canary(subset: 'v1' | 'v2'): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: canary, namespace: default}
spec:
  hosts: [canary]
  http:
  - route:
    - destination: {host: canary, subset: ${subset}}
`;
}

const ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: split, namespace: default}
spec:
  hosts: [split.default.svc.cluster.local]
  http:
  - route:
    - destination: {host: split.default.svc.cluster.local, subset: v1}
      weight: 80
    - destination: {host: split.default.svc.cluster.local, subset: v2}
      weight: 20
---
# Istio's samples/bookinfo/networking/virtual-service-reviews-test-v2.yaml, unchanged.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mirror, namespace: default}
spec:
  hosts: [mirror]
  http:
  - match: [{uri: {prefix: /partial}}]
    route:
    - destination: {host: mirror, subset: v1}
    mirror: {host: mirror, subset: v2}
    mirrorPercentage: {value: 50}
  - route:
    - destination: {host: mirror, subset: v1}
    mirrors:
    - destination: {host: mirror, subset: v2}
      percentage: {value: 100}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: misc, namespace: default}
spec:
  hosts: [misc]
  http:
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: elsewhere.example}
  - match: [{uri: {prefix: /teapot}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - match: [{uri: {prefix: /api/v1/}}]
    rewrite: {uri: /v2/}
    headers:
      request:
        set: {x-routed-by: trellis}
        remove: [x-secret]
      response:
        add: {x-served-by: misc}
        remove: [x-app]
    route:
    - destination: {host: misc, subset: v2}
  - corsPolicy:
      allowOrigins: [{exact: "https://app.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-custom]
      maxAge: 1h
    route:
    - destination: {host: misc, subset: v1}
`;

describe('traffic routing through sidecars', () => {
  let mesh: MeshProcesses;
  let client: StartedWorkload;
  let v1: TrafficApp;
  let v2: TrafficApp;
  let get: ReturnType<typeof via>;
  const url = (service: string, path = '/'): string => `http://${service}.default.svc.cluster.local${path}`;

  before(async () => {
    [v1, v2] = await Promise.all([TrafficApp.start('ver-v1', 'v1'), TrafficApp.start('ver-v2', 'v2')]);
    const [p1, p2] = (await freePorts(2)) as [number, number];
    mesh = await MeshProcesses.start({
      'workloads.yaml': [
        workloadEntry('client', { app: 'client' }, undefined),
        workloadEntry('ver-v1', { app: 'ver', version: 'v1' }, p1, { serviceAccount: 'ver' }),
        workloadEntry('ver-v2', { app: 'ver', version: 'v2' }, p2, { serviceAccount: 'ver' }),
      ].join('---\n'),
      'services.yaml': SERVICES.map((name) => serviceEntry(name, { app: 'ver' })).join('---\n'),
      'destination-rules.yaml': [
        ...['split', 'reviews', 'canary', 'mirror', 'misc'].map((host) => subsets(host)),
        subsets('hash', '  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}\n'),
        subsets('hashq', '  trafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: user}}}\n'),
        subsets('hashc', '  trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: session, ttl: 60s}}}}\n'),
      ].join('---\n'),
      'routes.yaml': ROUTES,
      'canary.yaml': canary('v1'),
    });
    [client] = await Promise.all([
      mesh.startWorkload('default/client', { outboundPort: true, upstreams: ['reviews.default.svc.cluster.local:80=0'] }),
      mesh.startWorkload('default/ver-v1', { outboundPort: true, extraArgs: ['--app-port', String(v1.port)] }),
      mesh.startWorkload('default/ver-v2', { outboundPort: true, extraArgs: ['--app-port', String(v2.port)] }),
    ]);
    await mesh.waitSynced(3);
    get = via(client.ready.listening.outbound as number);
  });

  after(async () => {
    await mesh?.stop();
    await Promise.all([v1?.close(), v2?.close()]);
  });

  it('splits 80/20 between subsets v1 and v2', async (t) => {
    const n = 400;
    const replies = await many(n, 8, () => get(url('split', '/split')));
    assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
    const toV2 = replies.filter((r) => appOf(r) === 'ver-v2').length;
    const toV1 = replies.filter((r) => appOf(r) === 'ver-v1').length;
    assert.equal(toV1 + toV2, n);
    // Each request picks v2 with probability 0.2 independently: v2's count is Binomial(400, 0.2),
    // mean 80, σ = 8. 5σ (40..120) fails a correct split with probability < 10⁻⁶ and still
    // rejects a 50/50 or 100/0 split (15σ and 10σ off).
    assertBinomial(toV2, n, 0.2, 5, 'requests to v2');
    t.diagnostic(`80/20 split: v1 ${toV1}, v2 ${toV2} of ${n}`);
  });

  it('routes end-user: jason to reviews v2 and everyone else to v1 (bookinfo)', async () => {
    for (let i = 0; i < 10; i++) {
      const jason = await get(url('reviews', '/reviews/0'), { 'end-user': 'jason' });
      assert.equal(jason.status, 200);
      assert.equal(appOf(jason), 'ver-v2');
      const other = await get(url('reviews', '/reviews/0'), i % 2 === 0 ? { 'end-user': 'alice' } : {});
      assert.equal(other.status, 200);
      assert.equal(appOf(other), 'ver-v1');
    }
    // Exact match: a different case of the value is another user.
    assert.equal(appOf(await get(url('reviews', '/reviews/0'), { 'end-user': 'Jason' })), 'ver-v1');
    // The short name, as bookinfo's productpage calls it.
    assert.equal(appOf(await get('http://reviews/reviews/0', { 'end-user': 'jason' })), 'ver-v2');
    assert.equal(appOf(await get('http://reviews:80/reviews/0')), 'ver-v1');
    // An explicit upstream port for reviews follows the same routes.
    const upstream = `http://127.0.0.1:${client.ready.listening.upstreams['reviews.default.svc.cluster.local:80']}/reviews/0`;
    assert.equal(appOf(await httpRequest({ url: upstream, headers: { 'end-user': 'jason' } })), 'ver-v2');
    assert.equal(appOf(await httpRequest({ url: upstream })), 'ver-v1');
  });

  it('keeps a consistent-hash key on one endpoint and spreads different keys (header, query, cookie)', async () => {
    const keys = Array.from({ length: 24 }, (_, i) => `user-${i}`);
    const cases: Array<{ service: string; send: (key: string) => Promise<string> }> = [
      { service: 'hash', send: async (key) => appOf(await get(url('hash', '/h'), { 'x-user': key })) },
      { service: 'hashq', send: async (key) => appOf(await get(url('hashq', `/h?user=${key}`))) },
      { service: 'hashc', send: async (key) => appOf(await get(url('hashc', '/h'), { cookie: `other=1; session=${key}` })) },
    ];
    for (const { service, send } of cases) {
      const placement = new Map<string, string>();
      for (let round = 0; round < 4; round++) {
        for (const key of keys) {
          const app = await send(key);
          assert.ok(app === 'ver-v1' || app === 'ver-v2', `${service}: answered by ${app}`);
          const first = placement.get(key);
          if (first === undefined) placement.set(key, app);
          else assert.equal(app, first, `${service}: key ${key} moved from ${first} to ${app} in round ${round}`);
        }
      }
      // 24 keys on a two-endpoint ring: all on one side has probability ~2⁻²³.
      const used = new Set(placement.values());
      assert.equal(used.size, 2, `${service}: every key went to ${[...used].join()}`);
    }

    // A cookie policy with a ttl generates the cookie when the request has none; sending it back sticks.
    const first = await get(url('hashc', '/h'));
    assert.equal(first.status, 200);
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    assert.match(setCookie, /^session=[^;]+/);
    assert.match(setCookie, /Max-Age=60/i);
    const cookie = setCookie.split(';')[0] as string;
    for (let i = 0; i < 10; i++) {
      const again = await get(url('hashc', '/h'), { cookie });
      assert.equal(appOf(again), appOf(first), 'the generated cookie keeps the client on its endpoint');
      assert.equal(again.headers['set-cookie'], undefined, 'no new cookie once the client has one');
    }
  });

  it('mirrors requests to v2 with the -shadow authority while v1 answers', async (t) => {
    const host = 'mirror.default.svc.cluster.local';
    const before2 = v2.seen.length;
    const replies = await many(20, 4, (i) => get(url('mirror', `/full/${i}`)));
    for (const reply of replies) {
      assert.equal(reply.status, 200);
      assert.equal(appOf(reply), 'ver-v1', 'the primary response comes from v1');
    }
    // Fire and forget: the copies arrive on their own time.
    await waitFor(() => v2.seen.slice(before2).filter((r) => r.path.startsWith('/full/')).length >= 20, 10_000, 'the mirrored requests');
    const shadows = v2.seen.slice(before2).filter((r) => r.path.startsWith('/full/'));
    assert.equal(shadows.length, 20);
    for (const shadow of shadows) assert.equal(shadow.authority, `${host}-shadow`);
    assert.equal(v1.seen.filter((r) => r.path.startsWith('/full/')).length, 20, 'v1 saw each request once');
    assert.ok(v1.seen.filter((r) => r.path.startsWith('/full/')).every((r) => r.authority === host));

    // A request body goes to the mirror too.
    const posted = await get(url('mirror', '/full/post'), { 'content-type': 'text/plain' }, { method: 'POST', body: 'mirrored payload' });
    assert.equal(posted.status, 200);
    await waitFor(() => v2.seen.some((r) => r.path === '/full/post'), 10_000, 'the mirrored POST');
    assert.equal(v2.seen.find((r) => r.path === '/full/post')?.body, 'mirrored payload');
    assert.equal(v1.seen.find((r) => r.path === '/full/post')?.body, 'mirrored payload');

    // mirrorPercentage 50 over 100 requests: Binomial(100, 0.5), σ = 5; checked loosely (5σ).
    await many(100, 8, (i) => get(url('mirror', `/partial/${i}`)));
    const v1Partial = (): number => v1.seen.filter((r) => r.path.startsWith('/partial/')).length;
    assert.equal(v1Partial(), 100);
    // Wait until the mirror has been quiet for a moment: the copies of the last requests may still be on their way.
    let last = -1;
    await waitFor(() => {
      const now = v2.seen.filter((r) => r.path.startsWith('/partial/')).length;
      const settled = now === last;
      last = now;
      return settled;
    }, 10_000, 'the partial mirror to settle');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const mirrored = v2.seen.filter((r) => r.path.startsWith('/partial/')).length;
    assertBinomial(mirrored, 100, 0.5, 5, 'requests mirrored at 50%');
    t.diagnostic(`mirror: 20 of 20 at 100%, ${mirrored} of 100 at 50%`);
  });

  it('shifts traffic when the VirtualService is edited, without restarting any proxy', async () => {
    const answeredBy = async (): Promise<string> => appOf(await get(url('canary', '/canary')));
    for (let i = 0; i < 10; i++) assert.equal(await answeredBy(), 'ver-v1');
    const outboundVersion = async (): Promise<string | undefined> => (JSON.parse((await httpGet(`http://127.0.0.1:${client.ready.admin}/stats`)).body) as { versions: { outbound?: string } }).versions.outbound;
    const versionBefore = await outboundVersion();
    const pid = client.process.pid;

    // Traffic keeps flowing during the edit: every request succeeds, first on v1, then on v2.
    const seenDuring: string[] = [];
    let running = true;
    const traffic = (async () => {
      while (running) {
        const reply = await get(url('canary', '/canary'));
        seenDuring.push(reply.status === 200 ? appOf(reply) : `status ${reply.status}`);
      }
    })();
    try {
      mesh.writeConfig('canary.yaml', canary('v2'));
      await waitFor(() => seenDuring.slice(-5).length === 5 && seenDuring.slice(-5).every((app) => app === 'ver-v2'), 15_000, 'traffic to shift to v2');
    } finally {
      running = false;
      await traffic;
    }
    assert.deepEqual([...new Set(seenDuring)].filter((app) => app !== 'ver-v1' && app !== 'ver-v2'), [], 'no request failed during the shift');
    const firstV2 = seenDuring.indexOf('ver-v2');
    assert.ok(seenDuring.slice(firstV2).every((app) => app === 'ver-v2'), 'once shifted, it stays on v2');
    for (let i = 0; i < 10; i++) assert.equal(await answeredBy(), 'ver-v2');
    assert.equal(client.process.exitCode, null, 'the client proxy kept running');
    assert.equal(client.process.pid, pid);
    assert.notEqual(await outboundVersion(), versionBefore, 'the proxy applied a new outbound version');
  });

  it('answers redirects and direct responses itself', async () => {
    const before1 = v1.seen.length + v2.seen.length;
    const redirect = await get(url('misc', '/old'));
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, 'http://elsewhere.example/new');
    const teapot = await get(url('misc', '/teapot'));
    assert.equal(teapot.status, 418);
    assert.equal(teapot.body, 'short and stout');
    assert.equal(v1.seen.length + v2.seen.length, before1, 'neither reached an endpoint');
  });

  it('rewrites the path and applies request and response header operations', async () => {
    const reply = await get(url('misc', '/api/v1/items?id=7'), { 'x-secret': 'hunter2', 'x-keep': 'yes' });
    assert.equal(reply.status, 200, reply.body);
    const seen = JSON.parse(reply.body) as AppReply;
    assert.equal(seen.app, 'ver-v2');
    assert.equal(seen.path, '/v2/items?id=7');
    assert.equal(seen.headers['x-routed-by'], 'trellis');
    assert.equal(seen.headers['x-secret'], undefined);
    assert.equal(seen.headers['x-keep'], 'yes');
    assert.equal(reply.headers['x-served-by'], 'misc');
    assert.equal(reply.headers['x-app'], undefined, 'response header removed');
  });

  it('answers a CORS preflight from an allowed origin and forwards simple requests with CORS headers', async () => {
    const before1 = v1.seen.length;
    const preflight = await get(url('misc', '/cors'), { origin: 'https://app.example', 'access-control-request-method': 'POST' }, { method: 'OPTIONS' });
    assert.equal(preflight.status, 200);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
    assert.match(String(preflight.headers['access-control-allow-headers']), /x-custom/);
    assert.equal(preflight.headers['access-control-max-age'], '3600');
    assert.equal(v1.seen.length, before1, 'the preflight was answered by the client sidecar');

    const simple = await get(url('misc', '/cors'), { origin: 'https://app.example' });
    assert.equal(simple.status, 200);
    assert.equal(appOf(simple), 'ver-v1');
    assert.equal(simple.headers['access-control-allow-origin'], 'https://app.example');
    const foreign = await get(url('misc', '/cors'), { origin: 'https://evil.example' });
    assert.equal(foreign.status, 200);
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);
  });
});
