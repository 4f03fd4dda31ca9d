import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runTrellis } from '../helpers/cli.js';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';

/** A trace in which productpage's server span leads to reviews' and on to ratings'. */
function productpageToRatings(spans: readonly ReceivedSpan[]): boolean {
  const byTrace = new Map<string, ReceivedSpan[]>();
  for (const span of spans) byTrace.set(span.traceId, [...(byTrace.get(span.traceId) ?? []), span]);
  return [...byTrace.values()].some((trace) => {
    const byId = new Map(trace.map((span) => [span.spanId, span]));
    const serverOf = (service: string): ReceivedSpan[] => trace.filter((span) => span.kind === 2 && span.service === service);
    /** Whether `span` descends from `ancestor` through parent links. */
    const under = (span: ReceivedSpan, ancestor: ReceivedSpan): boolean => {
      for (let at = byId.get(span.parentSpanId); at; at = byId.get(at.parentSpanId)) if (at === ancestor) return true;
      return false;
    };
    return serverOf('productpage.default').some((page) =>
      serverOf('reviews.default').some((reviews) => under(reviews, page) && serverOf('ratings.default').some((ratings) => under(ratings, reviews))),
    );
  });
}

describe('trellis demo --once (the README first command, minus the install)', () => {
  it('brings up the bookinfo mesh, makes the allowed and denied calls, and stops everything', async () => {
    const collector = await OtlpReceiver.start();
    let result: Awaited<ReturnType<typeof runTrellis>>;
    try {
      result = await runTrellis(['demo', '--once', '--tracing-endpoint', collector.url, '--tracing-protocol', 'http/json'], { timeoutMs: 240_000 });
      // Tracing through the demo: a trace spans productpage → reviews → ratings (v2 and v3 call ratings).
      assert.ok(productpageToRatings(collector.spans), `no productpage → reviews → ratings trace among ${collector.spans.length} spans`);
    } finally {
      await collector.close();
    }
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /trellis top --admin http:\/\/127\.0\.0\.1:\d+/);
    assert.doesNotMatch(result.stdout, /✗/);
    assert.match(result.stdout, /✓ GET \/productpage/);
    // With no VirtualService, Istio's default load balancer (LEAST_REQUEST) picks any version.
    assert.match(result.stdout, /reviews versions seen: reviews-v[123](, reviews-v[123])* \(no VirtualService yet/);
    assert.match(result.stdout, /✓ GET ratings directly \(denied[^\n]*\n\s+403 RBAC: access denied\n\s+why: [^\n]*principals/);
    assert.match(result.stdout, /✓ plaintext HTTP straight to productpage's sidecar[^\n]*\n\s+connection closed: mTLS is STRICT/);
    // The canary: each step is pushed and acknowledged before its calls; 100% steps are exact,
    // the split steps must show both versions (the demo's calls make a miss a 2e-10 event).
    assert.match(result.stdout, /✓ every service to v1: examples\/bookinfo\/networking\/virtual-service-all-v1\.yaml[^\n]*\n\s+config [0-9a-f]+ acknowledged by all 7 proxies[^\n]*\n\s+20 calls: reviews-v1 ×20\n/);
    assert.match(result.stdout, /✓ canary: 20% of reviews to v3[^\n]*\n[^\n]*\n\s+100 calls: reviews-v1 ×\d+, reviews-v3 ×\d+\n/);
    assert.match(result.stdout, /✓ canary: half of reviews to v3[^\n]*\n[^\n]*\n\s+100 calls: reviews-v1 ×\d+, reviews-v3 ×\d+\n/);
    assert.match(result.stdout, /✓ shift done: every reviews call to v3[^\n]*\n[^\n]*\n\s+20 calls: reviews-v3 ×20 \(red stars\)\n/);
    assert.match(result.stdout, /✓ jason tests v2[^\n]*virtual-service-reviews-test-v2\.yaml[^\n]*\n[^\n]*\n\s+10 calls with end-user: jason: reviews-v2 ×10 \(black stars\)\n\s+10 calls without: reviews-v1 ×10\n/);
    // Every piece stopped, and the temporary state (with the traffic directory) is gone.
    const state = /^ {2}state {4}(\S+)$/m.exec(result.stdout)?.[1];
    assert.ok(state !== undefined && !existsSync(state), `state ${state ?? '(not printed)'} was removed`);
  });

  it('walks through identities alone', async () => {
    const result = await runTrellis(['demo', 'identity']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /server says: hello spiffe:\/\/cluster\.local\/ns\/shop\/sa\/db/);
    assert.match(result.stdout, /connection refused by the server/);
  });
});
