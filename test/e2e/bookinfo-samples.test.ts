/**
 * Istio's bookinfo networking samples, unchanged, against the bookinfo demo app: each sample file
 * is copied as-is into a watched traffic directory, the test waits until every proxy acknowledged
 * the config it produced (control plane /debug/syncz, no sleeping), and productpage shows what
 * Istio's tasks (request routing, traffic shifting, fault injection) describe.
 *
 * The mesh is the demo's (src/cli/demo/bookinfo-mesh.ts: a control plane process, one
 * `trellis run` per workload, a `sleep` client proxy), on free ports instead of the demo's fixed
 * 19080–19085, with the app config of examples/bookinfo/config minus its destination-rule-all.yaml
 * (the DestinationRule samples are applied here, as Istio's tasks do first).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BOOKINFO_CONFIG_DIR, BOOKINFO_SAMPLES_DIR, BookinfoMesh, type PageView } from '../../src/cli/demo/bookinfo-mesh.js';
import { ProcessGroup } from '../../src/cli/demo/processes.js';
import { freePorts } from '../helpers/mesh-process.js';

const JASON = { 'end-user': 'jason' };

describe("Istio's bookinfo networking samples, unchanged, against the demo app", { timeout: 300_000 }, () => {
  let dir: string;
  let group: ProcessGroup;
  let mesh: BookinfoMesh;

  const sample = (name: string): string => readFileSync(join(BOOKINFO_SAMPLES_DIR, name), 'utf8');
  /** Copies Istio's sample into the traffic directory under its own name and waits for the push. */
  const apply = (name: string): Promise<unknown> => mesh.applyTraffic(name, sample(name));
  const remove = (name: string): Promise<unknown> => mesh.applyTraffic(name, null);
  const pages = async (count: number, headers: Record<string, string> = {}): Promise<PageView[]> => {
    const result: PageView[] = [];
    for (let i = 0; i < count; i++) result.push(await mesh.productpage(headers));
    return result;
  };
  const tally = (views: PageView[]): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const view of views) {
      const key = view.status === 200 && view.reviews !== undefined && view.ratingsError === undefined ? view.reviews : `${view.status} ${view.reviewsError ?? view.ratingsError ?? view.body.slice(0, 200)}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-bookinfo-samples-'));
    const config = join(dir, 'config');
    const traffic = join(dir, 'traffic');
    const state = join(dir, 'state');
    const logs = join(dir, 'logs');
    for (const path of [config, traffic, state, logs]) mkdirSync(path, { recursive: true });
    // The demo's fixed ports, replaced by free ones: this test can run next to `trellis demo`.
    const fixed = [19080, 19081, 19082, 19083, 19084, 19085];
    const ports = await freePorts(fixed.length);
    for (const file of readdirSync(BOOKINFO_CONFIG_DIR)) {
      if (file === 'destination-rule-all.yaml') continue;
      let text = readFileSync(join(BOOKINFO_CONFIG_DIR, file), 'utf8');
      fixed.forEach((port, i) => (text = text.replaceAll(`http: ${port}}`, `http: ${ports[i]}}`)));
      writeFileSync(join(config, file), text);
    }
    assert.ok(!readFileSync(join(config, 'workloads.yaml'), 'utf8').includes('1908'), 'every demo port was replaced');
    group = new ProcessGroup();
    mesh = await BookinfoMesh.start({ configDirs: [config, traffic], trafficDir: traffic, state, logs, group });
  });

  after(async () => {
    mesh?.client.close();
    await group?.stopAll();
    if (process.env['TRELLIS_TEST_KEEP']) process.stderr.write(`kept ${dir}\n`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('destination-rule-all.yaml: the subsets load and every page renders (no VirtualService yet)', async () => {
    await apply('destination-rule-all.yaml');
    const views = await pages(12);
    for (const view of views) {
      assert.equal(view.status, 200, view.body);
      assert.match(view.reviews ?? '', /^reviews-v[123]$/, view.body);
      assert.equal(view.details, 'details-v1');
      assert.equal(view.ratingsError, undefined, view.body);
    }
  });

  it('virtual-service-all-v1.yaml: every reviews call goes to v1 (no stars)', async () => {
    await apply('virtual-service-all-v1.yaml');
    const views = await pages(30);
    assert.deepEqual(tally(views), { 'reviews-v1': 30 });
    assert.ok(views.every((view) => view.color === undefined && view.details === 'details-v1'));
  });

  it('virtual-service-reviews-80-20.yaml: about 80% v1 and 20% v2', async () => {
    await remove('virtual-service-all-v1.yaml');
    await apply('virtual-service-reviews-80-20.yaml');
    const n = 200;
    const counts = tally(await pages(n));
    assert.deepEqual(Object.keys(counts).sort(), ['reviews-v1', 'reviews-v2'], JSON.stringify(counts));
    // v2 answers X ~ Binomial(200, 0.2) times (mean 40, sd 5.7): X outside [15, 70] has
    // probability 5.1e-7 (exact binomial tails), so a failure means the weights are wrong.
    const v2 = counts['reviews-v2'] ?? 0;
    assert.ok(v2 >= 15 && v2 <= 70, `reviews-v2 answered ${v2} of ${n} calls: ${JSON.stringify(counts)}`);
  });

  it('virtual-service-reviews-test-v2.yaml: jason gets v2 (black stars), everyone else v1', async () => {
    await remove('virtual-service-reviews-80-20.yaml');
    await apply('virtual-service-reviews-test-v2.yaml');
    const jason = await pages(10, JASON);
    assert.deepEqual(tally(jason), { 'reviews-v2': 10 });
    assert.ok(jason.every((view) => view.color === 'black' && view.stars === 5), jason[0]?.body);
    assert.deepEqual(tally(await pages(10)), { 'reviews-v1': 10 });
    assert.deepEqual(tally(await pages(5, { 'end-user': 'someone' })), { 'reviews-v1': 5 });
  });

  it('virtual-service-ratings-test-delay.yaml: ratings waits 7 s for jason, productpage gives up on reviews (3 s, one retry); others are served', async () => {
    await apply('virtual-service-ratings-test-delay.yaml');
    // Istio's fault-injection task: reviews v2 would wait up to 10 s for ratings, but productpage
    // gives reviews 3 s and retries once, so jason sees "product reviews are currently unavailable".
    const [jason] = await pages(1, JASON);
    assert.equal(jason?.status, 200, jason?.body);
    assert.equal(jason?.reviews, undefined, jason?.body);
    assert.match(jason?.reviewsError ?? '', /^Sorry, product reviews are currently unavailable for this book \(no answer within 3 s\)$/, jason?.body);
    assert.equal(jason?.details, 'details-v1');
    assert.deepEqual(tally(await pages(5)), { 'reviews-v1': 5 });
    await remove('virtual-service-ratings-test-delay.yaml');
  });

  it('virtual-service-ratings-test-abort.yaml: ratings answers jason 500 (fault filter abort), reviews v2 reports ratings unavailable', async () => {
    await apply('virtual-service-ratings-test-abort.yaml');
    const jason = await pages(5, JASON);
    for (const view of jason) {
      assert.equal(view.status, 200, view.body);
      assert.equal(view.reviews, 'reviews-v2', view.body);
      assert.equal(view.ratingsError, 'Ratings service is currently unavailable (500 fault filter abort)', view.body);
    }
    assert.deepEqual(tally(await pages(5)), { 'reviews-v1': 5 });
    await remove('virtual-service-ratings-test-abort.yaml');
  });

  it('destination-rule-all-mtls.yaml replaces destination-rule-all.yaml: ISTIO_MUTUAL subsets, traffic keeps working', async () => {
    // The VirtualService refers to subsets: it goes first, or removing the rules would be refused.
    await remove('virtual-service-reviews-test-v2.yaml');
    await remove('destination-rule-all.yaml');
    await apply('destination-rule-all-mtls.yaml');
    await apply('virtual-service-reviews-test-v2.yaml');
    const jason = await pages(5, JASON);
    assert.deepEqual(tally(jason), { 'reviews-v2': 5 });
    assert.deepEqual(tally(await pages(5)), { 'reviews-v1': 5 });
  });

  it('a sample that clashes with one already applied is refused, and the live config stays', async () => {
    // Both define VirtualService default/reviews: the file store refuses the set ("defined twice").
    await assert.rejects(apply('virtual-service-reviews-80-20.yaml'), /refused[\s\S]*reviews/);
    assert.deepEqual(tally(await pages(5, JASON)), { 'reviews-v2': 5 });
    await remove('virtual-service-reviews-80-20.yaml');
  });
});
