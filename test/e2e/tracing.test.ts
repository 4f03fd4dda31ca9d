/**
 * Distributed tracing through the bookinfo mesh, as a user runs it: the control plane, the four
 * bookinfo services (examples/bookinfo/app.mjs, which forwards `traceparent` like Istio's
 * bookinfo) under `trellis run`, and a `sleep` client proxy, every sidecar exporting spans over
 * OTLP/HTTP (JSON) to a local receiver. One request with a known `traceparent` must come back as
 * one trace: sleep → productpage → {details, reviews → ratings}, a CLIENT and a SERVER span per
 * hop, each the child of the one before.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { runTrellis } from '../helpers/cli.js';
import { freePorts, httpRequest, MeshProcesses, type StartedWorkload } from '../helpers/mesh-process.js';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';

const BOOKINFO_APP = fileURLToPath(new URL('../../../examples/bookinfo/app.mjs', import.meta.url));
const SERVICES = ['productpage', 'details', 'reviews', 'ratings'] as const;
const SERVER = 2;
const CLIENT = 3;

function config(ports: Record<(typeof SERVICES)[number], number>): Record<string, string> {
  const serviceEntries = SERVICES.map(
    (name) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: ${name}}}
`,
  );
  const version = (name: string): string => (name === 'reviews' ? 'v2' : 'v1'); // reviews v2 calls ratings
  const workloadEntries = SERVICES.map(
    (name) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}-${version(name)}, namespace: default}
spec:
  address: 127.0.0.1
  ports: {http: ${ports[name]}}
  labels: {app: ${name}, version: ${version(name)}}
  serviceAccount: bookinfo-${name}
`,
  );
  const allow = (app: string, caller: string): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${app}-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: ${app}}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/${caller}"]}}]
    to: [{operation: {methods: ["GET"]}}]
`;
  return {
    'mesh.yaml': `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec:
  trustDomain: cluster.local
  defaultAuthorization: DENY
`,
    'peer-authentication.yaml': `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`,
    'services.yaml': serviceEntries.join('---\n'),
    'workloads.yaml': [
      ...workloadEntries,
      `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: sleep, namespace: default}
spec:
  address: 127.0.0.1
  labels: {app: sleep}
  serviceAccount: sleep
`,
    ].join('---\n'),
    'authorization.yaml': [allow('productpage', 'sleep'), allow('details', 'bookinfo-productpage'), allow('reviews', 'bookinfo-productpage'), allow('ratings', 'bookinfo-reviews')].join('---\n'),
  };
}

function hex(length: number): string {
  let out = '';
  while (out.length < length) out += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return out.slice(0, length);
}

/** The one span of `trace` with this service, kind and parent. */
function spanOf(spans: ReceivedSpan[], service: string, kind: number, parent: ReceivedSpan | { spanId: string }, name?: string): ReceivedSpan {
  const found = spans.filter((span) => span.service === service && span.kind === kind && span.parentSpanId === parent.spanId && (name === undefined || span.name === name));
  assert.equal(found.length, 1, `one ${kind === SERVER ? 'SERVER' : 'CLIENT'} span of ${service}${name ? ` named ${name}` : ''} under ${parent.spanId}; the trace has:\n${describeSpans(spans)}`);
  return found[0] as ReceivedSpan;
}

function describeSpans(spans: ReceivedSpan[]): string {
  return spans.map((span) => `  ${span.spanId} ← ${span.parentSpanId || 'root'} ${span.kind === SERVER ? 'SERVER' : 'CLIENT'} ${span.service} ${span.name} ${span.attributes['http.status_code']}`).join('\n');
}

void describe('tracing through the bookinfo mesh (OTLP to a local receiver)', () => {
  let mesh: MeshProcesses;
  let receiver: OtlpReceiver;
  let sleep: StartedWorkload;

  before(async () => {
    receiver = await OtlpReceiver.start();
    const [productpage, details, reviews, ratings] = (await freePorts(4)) as [number, number, number, number];
    mesh = await MeshProcesses.start(config({ productpage, details, reviews, ratings }));
    const tracing = ['--tracing-endpoint', receiver.url, '--tracing-sampling', '100', '--tracing-protocol', 'http/json'];
    const started = await Promise.all([
      ...SERVICES.map((name) => mesh.startWorkload(`default/${name}-${name === 'reviews' ? 'v2' : 'v1'}`, { app: BOOKINFO_APP, appArgs: [name, name === 'reviews' ? 'v2' : 'v1'], extraArgs: tracing })),
      mesh.startWorkload('default/sleep', { outboundPort: true, extraArgs: tracing }),
    ]);
    sleep = started[4] as StartedWorkload;
    await mesh.waitSynced(5);
  });

  after(async () => {
    await mesh?.stop();
    await receiver?.close();
  });

  function callProductpage(traceparent: string): ReturnType<typeof httpRequest> {
    return httpRequest({ url: 'http://productpage.default.svc.cluster.local:9080/productpage', proxyPort: sleep.ready.listening.outbound as number, headers: { traceparent } });
  }

  void it('one request is one trace: sleep → productpage → details, reviews → ratings, each span the child of the one before', async (t) => {
    const traceId = hex(32);
    const root = hex(16);
    const reply = await callProductpage(`00-${traceId}-${root}-01`);
    assert.equal(reply.status, 200, reply.body);
    const page = JSON.parse(reply.body) as { reviews: { reviews: Array<{ rating?: { stars: number } }> }; details: { author?: string } };
    assert.equal(page.details.author, 'William Shakespeare');
    assert.equal(page.reviews.reviews[0]?.rating?.stars, 5, 'reviews v2 called ratings');

    // Four hops, a CLIENT and a SERVER span each. Proxies export in batches (≤ 1 s apart).
    await receiver.waitFor(() => receiver.spansOf(traceId).length >= 8, 20_000, `8 spans of trace ${traceId}`);
    const spans = receiver.spansOf(traceId);
    assert.equal(spans.length, 8, describeSpans(spans));

    const sleepClient = spanOf(spans, 'sleep.default', CLIENT, { spanId: root }, 'productpage.default.svc.cluster.local:9080/*');
    const productpageServer = spanOf(spans, 'productpage.default', SERVER, sleepClient);
    const toDetails = spanOf(spans, 'productpage.default', CLIENT, productpageServer, 'details.default.svc.cluster.local:9080/*');
    const detailsServer = spanOf(spans, 'details.default', SERVER, toDetails);
    const toReviews = spanOf(spans, 'productpage.default', CLIENT, productpageServer, 'reviews.default.svc.cluster.local:9080/*');
    const reviewsServer = spanOf(spans, 'reviews.default', SERVER, toReviews);
    const toRatings = spanOf(spans, 'reviews.default', CLIENT, reviewsServer, 'ratings.default.svc.cluster.local:9080/*');
    const ratingsServer = spanOf(spans, 'ratings.default', SERVER, toRatings);
    const all = [sleepClient, productpageServer, toDetails, detailsServer, toReviews, reviewsServer, toRatings, ratingsServer];

    for (const span of all) {
      assert.equal(span.attributes['http.status_code'], '200', `${span.service} ${span.name}`);
      assert.equal(span.attributes['response_flags'], '-');
      assert.equal(span.attributes['http.method'], 'GET');
      assert.equal(span.attributes['istio.mesh_id'], 'cluster.local');
      assert.equal(span.statusCode, 0);
      assert.equal(span.attributes['istio.canonical_service'], span.service.split('.')[0]);
    }
    // Envoy's x-request-id: made once (by the client sidecar) and carried through the whole trace.
    const requestIds = new Set(all.map((span) => span.attributes['guid:x-request-id']));
    assert.equal(requestIds.size, 1, [...requestIds].join(', '));
    assert.match(String([...requestIds][0]), /^[0-9a-f-]{36}$/);

    // Who called whom, as the mTLS identities say.
    assert.equal(ratingsServer.attributes['source.principal'], 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    assert.equal(ratingsServer.attributes['destination.principal'], 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings');
    assert.equal(toRatings.attributes['source.principal'], 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    assert.equal(toRatings.attributes['destination.principal'], 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings');
    assert.equal(toRatings.attributes['upstream_cluster'], 'outbound|9080||ratings.default.svc.cluster.local');
    assert.match(String(ratingsServer.attributes['upstream_cluster']), /^inbound\|\d+\|\|$/);
    assert.equal(reviewsServer.attributes['istio.canonical_revision'], 'v2');
    assert.match(String(toRatings.attributes['peer.address']), /^127\.0\.0\.1:\d+$/);
    t.diagnostic(`trace ${traceId} (root ${root}):\n${describeSpans(all)}`);
  });

  void it('an unsampled request (flag 00) produces no spans anywhere, and a denial is traced with its reason', async () => {
    const unsampled = hex(32);
    const reply = await callProductpage(`00-${unsampled}-${hex(16)}-00`);
    assert.equal(reply.status, 200, reply.body);

    // sleep may not call ratings: the denial shows up as a 403 span with Envoy's RBAC flag.
    const denied = hex(32);
    const refused = await httpRequest({ url: 'http://ratings.default.svc.cluster.local:9080/ratings/0', proxyPort: sleep.ready.listening.outbound as number, headers: { traceparent: `00-${denied}-${hex(16)}-01` } });
    assert.equal(refused.status, 403);
    // A later sampled request through every proxy: each proxy exports in order, so once its spans
    // are in, any span of the unsampled request would be too.
    const barrier = hex(32);
    assert.equal((await callProductpage(`00-${barrier}-${hex(16)}-01`)).status, 200);
    await receiver.waitFor(() => receiver.spansOf(denied).length >= 2 && receiver.spansOf(barrier).length >= 8, 20_000, 'the spans of the denied and the later sampled request');
    const spans = receiver.spansOf(denied);
    const server = spans.find((span) => span.kind === SERVER);
    assert.equal(server?.service, 'ratings.default');
    assert.equal(server?.attributes['http.status_code'], '403');
    assert.equal(server?.attributes['response_flags'], 'RBAC');
    assert.equal(server?.attributes['source.principal'], 'spiffe://cluster.local/ns/default/sa/sleep');
    assert.equal(spans.find((span) => span.kind === CLIENT)?.attributes['http.status_code'], '403');

    assert.deepEqual(receiver.spansOf(unsampled), [], 'no proxy recorded the unsampled trace');
  });
});

void describe('tracing flags', () => {
  void it('refuses malformed tracing flags before doing anything', async () => {
    const base = ['proxy', '--workload', 'default/x', '--control-plane', '127.0.0.1:1', '--ca-bundle', '/nonexistent'];
    const cases: Array<[string[], RegExp]> = [
      [['--tracing-sampling', '5'], /need --tracing-endpoint/],
      [['--tracing-endpoint', 'ftp://collector'], /http:\/\/ or https:\/\//],
      [['--tracing-endpoint', 'http://127.0.0.1:4318/v1/traces', '--tracing-sampling', '101'], /percentage from 0 to 100/],
      [['--tracing-endpoint', 'http://127.0.0.1:4318/v1/traces', '--tracing-protocol', 'grpc'], /http\/protobuf or http\/json/],
    ];
    for (const [flags, message] of cases) {
      const result = await runTrellis([...base, ...flags]);
      assert.equal(result.code, 2, flags.join(' '));
      assert.match(result.stderr, message);
      assert.match(result.stderr, /TRELLIS_USAGE/);
    }
  });
});
