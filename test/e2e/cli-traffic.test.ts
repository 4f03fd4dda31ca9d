/**
 * `trellis route check` and `trellis init` as a user runs them: the real binary on the bookinfo
 * config plus VirtualServices written here (Istio's bookinfo samples, by content), checking the
 * text, the JSON contract and the exit codes; then a new mesh from `trellis init` served by a
 * real control plane.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runTrellis, TRELLIS_BIN } from '../helpers/cli.js';
import { until } from '../helpers/mesh.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const BOOKINFO = join(root, 'examples/bookinfo/config');
const FROM = 'default/productpage-v1';

/** Istio's virtual-service-reviews-80-20.yaml. */
const REVIEWS_80_20 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 80
    - destination:
        host: reviews
        subset: v2
      weight: 20
`;

/** Istio's virtual-service-reviews-test-v2.yaml. */
const REVIEWS_JASON = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
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
`;

/** Istio's virtual-service-ratings-test-delay.yaml and -abort.yaml in one, without the catch-all: jason only. */
const RATINGS_FAULT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
  namespace: default
spec:
  hosts:
  - ratings
  http:
  - name: jason-fault
    match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 7s
      abort:
        percentage:
          value: 10
        httpStatus: 500
    route:
    - destination:
        host: ratings
    timeout: 10s
`;

const EXTERNAL = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin
  namespace: default
spec:
  hosts: [httpbin.org]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - number: 80
    name: http
    protocol: HTTP
`;

interface Explanation {
  virtualService: string | null;
  route: string | number | null;
  destinations: Array<{ host: string; subset: string | null; port: number; weight: number; cluster: string; loadBalancer: unknown; endpoints: Array<{ workload: string }> }>;
  timeout: string | null;
  retries: { attempts: number; default: boolean } | null;
  fault: unknown;
  mirror: unknown[];
  egress: string;
  outcome: string;
  explanation: string;
  noMatch: Array<{ route: string; failures: string[] }> | null;
  egressPolicy: { mode: string; source: string };
}

void describe('trellis route check', () => {
  let dir: string;
  const file = (name: string): string => join(dir, name);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-route-'));
    writeFileSync(file('reviews-80-20.yaml'), REVIEWS_80_20);
    writeFileSync(file('reviews-jason.yaml'), REVIEWS_JASON);
    writeFileSync(file('ratings-fault.yaml'), RATINGS_FAULT);
    writeFileSync(file('external.yaml'), EXTERNAL);
    writeFileSync(file('broken.yaml'), REVIEWS_80_20.replace('weight: 20', 'wieght: 20'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  async function routeJson(extra: string[], ...args: string[]): Promise<{ code: number; json: Explanation }> {
    const result = await runTrellis(['route', 'check', '-f', BOOKINFO, ...extra.flatMap((f) => ['-f', file(f)]), '--from', FROM, '-o', 'json', ...args]);
    assert.equal(result.stderr, '');
    return { code: result.code, json: JSON.parse(result.stdout) as Explanation };
  }

  void it('the 80/20 split: JSON with both destinations, exit 0', async () => {
    const { code, json } = await routeJson(['reviews-80-20.yaml'], '--host', 'reviews:9080', '--path', '/reviews/0');
    assert.equal(code, 0);
    assert.deepEqual(Object.keys(json).slice(0, 8), ['virtualService', 'route', 'destinations', 'timeout', 'retries', 'fault', 'mirror', 'egress']);
    assert.equal(json.virtualService, 'default/reviews');
    assert.equal(json.route, 0);
    assert.deepEqual(
      json.destinations.map((d) => ({ host: d.host, subset: d.subset, port: d.port, weight: d.weight })),
      [
        { host: 'reviews.default.svc.cluster.local', subset: 'v1', port: 9080, weight: 80 },
        { host: 'reviews.default.svc.cluster.local', subset: 'v2', port: 9080, weight: 20 },
      ],
    );
    assert.deepEqual(json.destinations.map((d) => d.cluster), ['outbound|9080|v1|reviews.default.svc.cluster.local', 'outbound|9080|v2|reviews.default.svc.cluster.local']);
    // examples/bookinfo/config has Istio's destination-rule-all.yaml: no loadBalancer, so Istio's default.
    assert.deepEqual(json.destinations[0]?.loadBalancer, { simple: 'LEAST_REQUEST' });
    assert.deepEqual(json.destinations.map((d) => d.endpoints.map((e) => e.workload)), [['default/reviews-v1'], ['default/reviews-v2']]);
    assert.equal(json.timeout, null);
    assert.equal(json.retries?.attempts, 2);
    assert.equal(json.retries?.default, true);
    assert.equal(json.fault, null);
    assert.deepEqual(json.mirror, []);
    assert.equal(json.egress, 'allowed');
  });

  void it('the 80/20 split in text', async () => {
    const result = await runTrellis(['route', 'check', '-f', BOOKINFO, '-f', file('reviews-80-20.yaml'), '--from', FROM, '--host', 'reviews']);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `ROUTED: GET / to reviews from ${FROM} → reviews.default.svc.cluster.local:9080 (HTTP, MESH_INTERNAL)`);
    assert.equal(lines[1], '  VirtualService default/reviews, route http[0] (no match conditions)');
    assert.match(result.stdout, /^ {5}80% {2}reviews\.default\.svc\.cluster\.local:9080 subset v1 {2}cluster outbound\|9080\|v1\|reviews\.default\.svc\.cluster\.local$/m);
    assert.match(result.stdout, /^ {5}20% {2}reviews\.default\.svc\.cluster\.local:9080 subset v2 /m);
    assert.match(result.stdout, /load balancer: LEAST_REQUEST \(DestinationRule default\/reviews\)/);
    assert.match(result.stdout, /^ {2}timeout: none \(Istio's default for HTTP routes\)$/m);
    assert.match(result.stdout, /^ {2}retries: Istio's default \(the route sets none\): 2 retries on connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes;/m);
    assert.match(result.stdout, /^ {2}egress: allowed \(reviews\.default\.svc\.cluster\.local is a registered service\)$/m);
  });

  void it('header routing: end-user jason → v2, everyone else → v1', async () => {
    const jason = await routeJson(['reviews-jason.yaml'], '--host', 'reviews', '--header', 'end-user: jason');
    assert.equal(jason.code, 0);
    assert.equal(jason.json.route, 0);
    assert.deepEqual(jason.json.destinations.map((d) => [d.subset, d.weight]), [['v2', 100]]);
    assert.equal(jason.json.explanation, 'VirtualService default/reviews, route http[0] (match): headers[end-user]: "jason" = exact "jason"');
    const other = await routeJson(['reviews-jason.yaml'], '--host', 'reviews', '--header', 'end-user: alice');
    assert.equal(other.json.route, 1);
    assert.deepEqual(other.json.destinations.map((d) => d.subset), ['v1']);
  });

  void it('a fault route: delay and abort with their percentages, and the route timeout', async () => {
    const { code, json } = await routeJson(['ratings-fault.yaml'], '--host', 'ratings.default.svc.cluster.local', '--port', '9080', '--path', '/ratings/0', '--header', 'end-user: jason');
    assert.equal(code, 0);
    assert.equal(json.route, 'jason-fault');
    assert.deepEqual(json.fault, { delay: { fixedDelay: '7s', percentage: 100 }, abort: { httpStatus: 500, percentage: 10 } });
    assert.equal(json.timeout, '10s');
    const text = await runTrellis(['route', 'check', '-f', BOOKINFO, '-f', file('ratings-fault.yaml'), '--from', FROM, '--host', 'ratings', '--header', 'end-user: jason']);
    assert.match(text.stdout, /^ {2}fault: delay 7s for 100% of requests; abort with HTTP 500 for 10% of requests$/m);
  });

  void it('no route matches: why, route by route, and exit 3', async () => {
    const { code, json } = await routeJson(['ratings-fault.yaml'], '--host', 'ratings', '--header', 'end-user: alice');
    assert.equal(code, 3);
    assert.equal(json.outcome, 'no-route');
    assert.equal(json.route, null);
    assert.deepEqual(json.destinations, []);
    assert.deepEqual(json.noMatch, [{ route: '"jason-fault"', failures: ['headers[end-user]: "alice" ≠ exact "jason"'] }]);
    const text = await runTrellis(['route', 'check', '-f', BOOKINFO, '-f', file('ratings-fault.yaml'), '--from', FROM, '--host', 'ratings']);
    assert.equal(text.code, 3);
    assert.equal(
      text.stdout,
      [
        `NO ROUTE: GET / to ratings from ${FROM} → ratings.default.svc.cluster.local:9080 (HTTP, MESH_INTERNAL)`,
        '  no route of VirtualService default/ratings matched:',
        '    route "jason-fault": headers[end-user]: absent ≠ exact "jason"',
        '  the proxy answers: 404 (route not found, flag NR)',
        '  egress: allowed (ratings.default.svc.cluster.local is a registered service)',
        '',
      ].join('\n'),
    );
  });

  void it('REGISTRY_ONLY blocks an unregistered host: the reason and its source, exit 3', async () => {
    const { code, json } = await routeJson([], '--host', 'httpbin.org');
    assert.equal(code, 3);
    assert.equal(json.outcome, 'blocked');
    assert.equal(json.egress, 'httpbin.org is not a registered service and outboundTrafficPolicy REGISTRY_ONLY (MeshConfig mesh)');
    assert.deepEqual(json.egressPolicy, { allowed: false, reason: json.egress, mode: 'REGISTRY_ONLY', source: 'MeshConfig mesh' });
    const text = await runTrellis(['route', 'check', '-f', BOOKINFO, '--from', FROM, '--host', 'httpbin.org']);
    assert.equal(text.code, 3);
    assert.match(text.stdout, /^BLOCKED: GET \/ to httpbin\.org from default\/productpage-v1 → httpbin\.org:80 \(not registered\)\n {2}egress: BLOCKED: httpbin\.org is not a registered service and outboundTrafficPolicy REGISTRY_ONLY \(MeshConfig mesh\)\n {2}the proxy answers: 502 \(flag NR\)\n$/);
  });

  void it('a ServiceEntry opens that external host: allowed, exit 0', async () => {
    const { code, json } = await routeJson(['external.yaml'], '--host', 'httpbin.org', '--path', '/get');
    assert.equal(code, 0);
    assert.equal(json.outcome, 'routed');
    assert.equal(json.egress, 'allowed');
    assert.equal(json.virtualService, null);
    assert.equal(json.route, 'default');
    assert.deepEqual(json.destinations.map((d) => [d.host, d.port, d.cluster]), [['httpbin.org', 80, 'outbound|80||httpbin.org']]);
  });

  void it('an invalid config: its errors with file:line on stderr, nothing evaluated, exit 2', async () => {
    const result = await runTrellis(['route', 'check', '-f', BOOKINFO, '-f', file('broken.yaml'), '--from', FROM, '--host', 'reviews']);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, new RegExp(`${file('broken.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:18:7: error: VirtualService default/reviews: spec\\.http\\[0\\]\\.route\\[1\\]\\.wieght: unknown field "wieght"`));
    // The misspelled weight also leaves the weights adding up to 80.
    assert.match(result.stderr, /broken\.yaml:10:5: error: VirtualService default\/reviews: spec\.http\[0\]\.route: destination weights add up to 80/);
    assert.match(result.stderr, /trellis: the config is invalid \(2 errors\): nothing was evaluated \[TRELLIS_USAGE\]/);
  });

  void it('usage errors exit 2 and say what to fix', async () => {
    const unknown = await runTrellis(['route', 'check', '-f', BOOKINFO, '--from', 'default/nope', '--host', 'reviews']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--from "default\/nope": no WorkloadEntry default\/nope in the config \(known: default\/details-v1, default\/productpage-v1, /);
    const ports = await runTrellis(['route', 'check', '-f', BOOKINFO, '--from', FROM, '--host', 'reviews:9080', '--port', '80']);
    assert.equal(ports.code, 2);
    assert.match(ports.stderr, /name different ports/);
    const url = await runTrellis(['route', 'check', '-f', BOOKINFO, '--from', FROM, '--host', 'http://reviews/x']);
    assert.equal(url.code, 2);
    assert.match(url.stderr, /put the path in --path/);
    const tcp = await runTrellis(['route', 'check', '-f', BOOKINFO, '--from', FROM, '--host', 'reviews', '--tcp', '--path', '/']);
    assert.equal(tcp.code, 2);
    const missing = await runTrellis(['route', 'check', '-f', BOOKINFO, '--host', 'reviews']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /route check needs --from NAMESPACE\/WORKLOADENTRY/);
  });
});

void describe('trellis init', () => {
  let dir: string;
  let proc: ChildProcess | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-init-'));
  });

  after(async () => {
    if (proc !== undefined && proc.exitCode === null) {
      proc.kill('SIGKILL');
      await once(proc, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  void it('creates a closed mesh: REGISTRY_ONLY egress, DENY by default, STRICT mTLS, commented examples', async () => {
    const mesh = join(dir, 'mesh');
    const result = await runTrellis(['init', mesh, '--trust-domain', 'example.org']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Created a mesh config in .*mesh \(trust domain example\.org\):$/m);
    for (const name of ['README.md', 'mesh.yaml', 'peer-authentication.yaml', 'examples.yaml']) assert.ok(existsSync(join(mesh, name)), name);
    const meshYaml = readFileSync(join(mesh, 'mesh.yaml'), 'utf8');
    assert.match(meshYaml, /^ {2}trustDomain: example\.org$/m);
    assert.match(meshYaml, /^ {2}defaultAuthorization: DENY$/m);
    assert.match(meshYaml, /^ {4}mode: REGISTRY_ONLY$/m);
    assert.match(readFileSync(join(mesh, 'examples.yaml'), 'utf8'), /^# kind: WorkloadEntry$/m);

    const validate = await runTrellis(['validate', '-f', mesh, '-o', 'json']);
    assert.equal(validate.code, 0, validate.stdout);
    const summary = (JSON.parse(validate.stdout) as { summary: Record<string, number> }).summary;
    assert.deepEqual(summary, { MeshConfig: 1, PeerAuthentication: 1 });

    // Egress is closed in the new mesh: once a workload exists, an unregistered host is blocked.
    writeFileSync(join(dir, 'client.yaml'), 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: client\n  namespace: shop\nspec:\n  address: 127.0.0.1\n');
    const blocked = await runTrellis(['route', 'check', '-f', mesh, '-f', join(dir, 'client.yaml'), '--from', 'shop/client', '--host', 'example.com', '-o', 'json']);
    assert.equal(blocked.code, 3, blocked.stderr);
    assert.equal((JSON.parse(blocked.stdout) as Explanation).egress, 'example.com is not a registered service and outboundTrafficPolicy REGISTRY_ONLY (MeshConfig mesh)');
  });

  void it('refuses a non-empty directory unless --force, which replaces only its own files', async () => {
    const target = join(dir, 'busy');
    mkdirSync(target);
    writeFileSync(join(target, 'mine.yaml'), '# keep me\n');
    writeFileSync(join(target, 'mesh.yaml'), '# old\n');
    const refused = await runTrellis(['init', target]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /busy is not empty \(mesh\.yaml, mine\.yaml\): choose a new directory, or add --force .*\[TRELLIS_INIT_EXISTS\]/);
    assert.equal(readFileSync(join(target, 'mesh.yaml'), 'utf8'), '# old\n');
    const forced = await runTrellis(['init', target, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /mesh\.yaml +\(replaced\)/);
    assert.equal(readFileSync(join(target, 'mine.yaml'), 'utf8'), '# keep me\n');
    assert.match(readFileSync(join(target, 'mesh.yaml'), 'utf8'), /kind: MeshConfig/);
    const bad = await runTrellis(['init', join(dir, 'bad'), '--trust-domain', 'Not_Valid']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--trust-domain "Not_Valid"/);
  });

  void it('the control plane accepts the new directory: status shows it valid and healthy', async () => {
    const mesh = join(dir, 'served');
    const init = await runTrellis(['init', mesh]);
    assert.equal(init.code, 0, init.stderr);
    const logs: Array<Record<string, unknown>> = [];
    proc = spawn(process.execPath, [TRELLIS_BIN, 'controlplane', '--config', mesh, '--state', join(dir, 'served-state'), '--discovery-port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ text: line });
      }
    });
    await until(() => logs.some((l) => l['event'] === 'controlplane.ready'), 20_000, 'the control plane to start');
    const ready = logs.find((l) => l['event'] === 'controlplane.ready') as { admin: string; identity: string };
    assert.equal(ready.identity, 'spiffe://cluster.local/ns/istio-system/sa/trellis-controlplane');

    const status = await runTrellis(['status', '--admin', ready.admin, '-o', 'json']);
    assert.equal(status.code, 0, status.stderr);
    const json = JSON.parse(status.stdout) as { config: { healthy: boolean; resources: number; errors: unknown[]; version?: string } };
    assert.equal(json.config.healthy, true);
    assert.equal(json.config.resources, 2);
    assert.deepEqual(json.config.errors, []);
    assert.ok(json.config.version);
    const text = await runTrellis(['status', '--admin', ready.admin]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ {2}health {8}OK$/m);

    proc.kill('SIGTERM');
    const [code] = (await once(proc, 'exit')) as [number | null];
    assert.equal(code, 0);
  });
});
