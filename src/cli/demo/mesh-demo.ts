/**
 * `trellis demo`: the README's first command. It starts a control plane on the config in
 * examples/bookinfo/config (watched: edit it while the demo runs) plus a traffic directory of its
 * own (<state>/traffic, also watched: drop Istio VirtualServices there), the bookinfo-style app
 * with a sidecar per workload and a `sleep` client, then makes allowed and denied calls and shows
 * the decisions, and shifts reviews from v1 to v3 as a canary, step by step. Every piece is a
 * real process talking over real sockets on loopback.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { TrellisError } from '../../api/errors.js';
import { printLine } from '../output.js';
import { BOOKINFO_CONFIG_DIR, BOOKINFO_SAMPLES_DIR, BookinfoMesh, type MeshClient, pageView, PRODUCTPAGE, type Reply, resetTrafficDir, sleep, type Workload } from './bookinfo-mesh.js';
import { ProcessGroup } from './processes.js';

export interface MeshDemoOptions {
  /** Run the scenario once and exit (for CI); the exit code says whether every step behaved. */
  once?: boolean;
  /** Where the control plane keeps its state and the logs go (default: a temporary directory). */
  state?: string;
  keep?: boolean;
  /** OTLP/HTTP traces endpoint for every proxy (e.g. a local Jaeger or OpenTelemetry collector). */
  tracingEndpoint?: string;
  tracingProtocol?: string;
}

/** The file in the traffic directory that the canary steps replace. */
const CANARY_FILE = 'canary.yaml';
/**
 * Calls per canary step. Weighted destinations are drawn at random per request (Istio's
 * semantics), so a split step can only be checked statistically: with 100 calls at 80/20 the
 * chance that v3 never shows up is 0.8^100 ≈ 2.0e-10 (and v1 never: 0.2^100 ≈ 1e-70) — a
 * failure there is a bug, not bad luck. The 100% steps are exact.
 */
const SPLIT_CALLS = 100;
const FIXED_CALLS = 20;

export async function meshDemo(opts: MeshDemoOptions): Promise<number> {
  const state = opts.state ?? mkdtempSync(join(tmpdir(), 'trellis-demo-'));
  const logs = join(state, 'logs');
  const trafficDir = join(state, 'traffic');
  // The state holds the CA's private key.
  mkdirSync(state, { recursive: true, mode: 0o700 });
  mkdirSync(logs, { recursive: true });
  // The traffic directory belongs to the demo: it starts empty.
  resetTrafficDir(trafficDir);
  const group = new ProcessGroup();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  let mesh: BookinfoMesh | undefined;
  try {
    printLine('Trellis demo: the bookinfo app on a zero-trust mesh (STRICT mTLS, deny by default)');
    printLine(`  config   ${show(BOOKINFO_CONFIG_DIR)}   (watched: edit it while the demo runs)`);
    printLine(`  traffic  ${trafficDir}   (watched too: the canary steps write here; drop Istio samples in)`);
    printLine(`  state    ${state}`);

    mesh = await BookinfoMesh.start({ configDirs: [BOOKINFO_CONFIG_DIR, trafficDir], trafficDir, state, logs, group, ...(opts.tracingEndpoint === undefined ? {} : { tracingEndpoint: opts.tracingEndpoint }), ...(opts.tracingProtocol === undefined ? {} : { tracingProtocol: opts.tracingProtocol }) });
    printLine(`  control plane  discovery ${mesh.discovery}, admin ${mesh.admin}`);
    printLine('\nWorkloads (each process: the app + its sidecar; logs in state/logs):');
    for (const workload of mesh.workloads) {
      const ports = Object.entries(workload.ports).map(([name, port]) => `${name} ${workload.address}:${port}`).join(', ') || 'no inbound ports (client only)';
      printLine(`  ${workload.name.padEnd(15)} ${workload.identity.padEnd(60)} ${ports}`);
    }

    let failures = await runScenario(mesh.client, mesh.workloads);
    failures += await runCanary(mesh);
    printLine('\nWhere to look next:');
    printLine(`  trellis proxy-status --admin ${mesh.admin}     every proxy, its identity and config versions`);
    printLine(`  trellis status --admin ${mesh.admin}           config health (an invalid edit shows here, the old config stays)`);
    printLine(`  trellis top --admin ${mesh.admin}              live requests/s, success rate, latency and mTLS per edge`);
    printLine(`  trellis audit tail --admin ${mesh.admin} --denied   every denial as it happens, with the deciding policy`);
    printLine(`  ${show(join(BOOKINFO_CONFIG_DIR, 'authorization.yaml'))}   edit a rule: proxies follow within a second`);
    printLine(`  cp ${show(join(BOOKINFO_SAMPLES_DIR, 'virtual-service-ratings-test-delay.yaml'))} ${trafficDir}/`);
    printLine('      Istio\'s fault-injection task: ratings waits 7 s for jason, productpage gives up on reviews after 6 s');
    printLine(`  curl -x http://127.0.0.1:${mesh.clientPort} -H 'end-user: jason' http://${PRODUCTPAGE}/productpage   (as the sleep workload)`);
    if (failures > 0) printLine(`\n${failures} step(s) did not behave as expected: see ${logs}`);
    if (opts.once) return failures > 0 ? 1 : 0;
    printLine('\nThe mesh is running. Press Ctrl-C to stop it.');
    while (!interrupted) {
      await sleep(200);
      const died = group.exited();
      if (died.length > 0) throw new TrellisError('TRELLIS_DEMO', `${died.join(', ')} stopped unexpectedly: see ${logs}`);
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    mesh?.client.close();
    await group.stopAll();
    if (!opts.keep && !opts.state) rmSync(state, { recursive: true, force: true });
    else printLine(`State and logs kept in ${state}`);
  }
}

function show(path: string): string {
  return relative(process.cwd(), path) || path;
}

/** The scripted calls: each says what it shows, what happened, and whether that was expected. */
async function runScenario(client: MeshClient, workloads: Workload[]): Promise<number> {
  let failures = 0;
  const step = (title: string, result: Reply, expectedStatus: number, detail: string): void => {
    const ok = result.status === expectedStatus;
    if (!ok) failures += 1;
    printLine(`\n${ok ? '✓' : '✗'} ${title}`);
    printLine(`    ${result.status} ${detail}${ok ? '' : `   (expected ${expectedStatus})`}`);
  };

  printLine('\nCalls from the sleep workload (spiffe://cluster.local/ns/default/sa/sleep):');
  const seen = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const reply = await client.get(PRODUCTPAGE, '/productpage');
    const page = pageView(reply);
    const served = page.reviews ?? 'no reviews';
    seen.add(served);
    step(
      `GET /productpage (allowed: productpage-viewer admits sleep)`,
      reply,
      200,
      `productpage → details (${page.details ?? 'error'}) and ${served}${page.color ? `, ${page.stars ?? '?'} ${page.color} stars from ratings` : ''}`,
    );
  }
  printLine(`    reviews versions seen: ${[...seen].sort().join(', ')} (no VirtualService yet: any of v1, v2, v3 may answer)`);

  const direct = await client.get('ratings.default.svc.cluster.local:9080', '/ratings/0');
  step('GET ratings directly (denied: only reviews may call ratings)', direct, 403, describeDenial(direct));
  const post = await client.request('POST', PRODUCTPAGE, '/productpage');
  step('POST /productpage (denied: the policy allows GET only)', post, 403, describeDenial(post));
  const details = await client.get('details.default.svc.cluster.local:9080', '/details/0');
  step('GET details directly (denied: details admits productpage only)', details, 403, describeDenial(details));
  const unknown = await client.get('example.com', '/');
  step('GET http://example.com/ (egress is closed: not a registered service)', unknown, 502, unknown.body.trim());

  const productpage = workloads.find((workload) => workload.app === 'productpage');
  const port = productpage?.ports['http'];
  if (productpage && port !== undefined) {
    const plaintext = await plaintextRequest(productpage.address, port);
    const refused = plaintext === 'closed';
    if (!refused) failures += 1;
    printLine(`\n${refused ? '✓' : '✗'} plaintext HTTP straight to productpage's sidecar (${productpage.address}:${port}), no certificate`);
    printLine(`    ${refused ? 'connection closed: mTLS is STRICT' : `answered: ${plaintext}`}`);
  }
  return failures;
}

/** A VirtualService that splits reviews between v1 and v3, as the demo's canary writes it. */
function reviewsSplit(v1: number, v3: number): string {
  const destinations = [
    ...(v1 > 0 ? [`    - destination:\n        host: reviews\n        subset: v1\n      weight: ${v1}\n`] : []),
    ...(v3 > 0 ? [`    - destination:\n        host: reviews\n        subset: v3\n      weight: ${v3}\n`] : []),
  ];
  return `# Written by \`trellis demo\`: a canary step for reviews (v1 ${v1}%, v3 ${v3}%).
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
${destinations.join('')}`;
}

interface CanaryStep {
  title: string;
  /** Where the text comes from, for the output. */
  source: string;
  text: string;
  /** Calls, each with its headers, and the versions each group must (exactly) or may show. */
  checks: Array<{ label: string; headers: Record<string, string>; calls: number; only: string[]; all?: boolean; color?: string }>;
}

/**
 * The canary: reviews goes from v1 to v3 in steps. Each step replaces <traffic>/canary.yaml,
 * waits until every proxy acknowledged the new config (the control plane's /debug/syncz, no
 * sleeping), then calls productpage and counts the reviews versions that answered.
 */
async function runCanary(mesh: BookinfoMesh): Promise<number> {
  const sample = (name: string): { source: string; text: string } => ({ source: `${show(join(BOOKINFO_SAMPLES_DIR, name))} (Istio's sample, unchanged)`, text: readFileSync(join(BOOKINFO_SAMPLES_DIR, name), 'utf8') });
  const steps: CanaryStep[] = [
    { title: 'every service to v1', ...sample('virtual-service-all-v1.yaml'), checks: [{ label: '', headers: {}, calls: FIXED_CALLS, only: ['reviews-v1'] }] },
    { title: 'canary: 20% of reviews to v3', source: 'VirtualService reviews, weights 80/20', text: reviewsSplit(80, 20), checks: [{ label: '', headers: {}, calls: SPLIT_CALLS, only: ['reviews-v1', 'reviews-v3'], all: true }] },
    { title: 'canary: half of reviews to v3', source: 'VirtualService reviews, weights 50/50', text: reviewsSplit(50, 50), checks: [{ label: '', headers: {}, calls: SPLIT_CALLS, only: ['reviews-v1', 'reviews-v3'], all: true }] },
    { title: 'shift done: every reviews call to v3', source: 'VirtualService reviews, v3 only', text: reviewsSplit(0, 100), checks: [{ label: '', headers: {}, calls: FIXED_CALLS, only: ['reviews-v3'], color: 'red' }] },
    {
      title: 'jason tests v2, everyone else gets v1',
      ...sample('virtual-service-reviews-test-v2.yaml'),
      checks: [
        { label: 'with end-user: jason', headers: { 'end-user': 'jason' }, calls: FIXED_CALLS / 2, only: ['reviews-v2'], color: 'black' },
        { label: 'without', headers: {}, calls: FIXED_CALLS / 2, only: ['reviews-v1'] },
      ],
    },
  ];

  printLine(`\nCanary: shifting reviews from v1 to v3. Each step replaces ${join(mesh.trafficDir, CANARY_FILE)},`);
  printLine('waits until every proxy has acknowledged the new config, then calls productpage:');
  let failures = 0;
  for (const step of steps) {
    let push;
    try {
      push = await mesh.applyTraffic(CANARY_FILE, step.text);
    } catch (err) {
      failures += 1;
      printLine(`\n✗ ${step.title}\n    ${(err as Error).message}`);
      continue;
    }
    const lines: string[] = [];
    let ok = true;
    for (const check of step.checks) {
      const counts = new Map<string, number>();
      const problems: string[] = [];
      for (let i = 0; i < check.calls; i++) {
        const page = await mesh.productpage(check.headers);
        const served = page.reviews ?? `error: ${page.status} ${page.reviewsError ?? page.body.slice(0, 120)}`;
        counts.set(served, (counts.get(served) ?? 0) + 1);
        if (page.status !== 200 || page.reviews === undefined || page.ratingsError !== undefined) problems.push(`${page.status} ${page.ratingsError ?? page.reviewsError ?? page.body.slice(0, 120)}`);
        else if (check.color !== undefined && page.color !== check.color) problems.push(`${page.reviews} showed ${page.color ?? 'no'} stars`);
      }
      const unexpected = [...counts.keys()].filter((version) => !check.only.includes(version));
      const missing = check.all ? check.only.filter((version) => !counts.has(version)) : [];
      const good = unexpected.length === 0 && missing.length === 0 && problems.length === 0;
      if (!good) ok = false;
      const tally = [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([version, count]) => `${version} ×${count}`).join(', ');
      const stars = check.color ? ` (${check.color} stars)` : '';
      lines.push(`    ${check.calls} calls${check.label ? ` ${check.label}` : ''}: ${tally}${good ? stars : `   (expected ${check.all ? 'both ' : 'only '}${check.only.join(check.all ? ' and ' : ', ')}${problems[0] ? `; ${problems[0]}` : ''})`}`);
    }
    if (!ok) failures += 1;
    printLine(`\n${ok ? '✓' : '✗'} ${step.title}: ${step.source}`);
    printLine(`    config ${push.version} acknowledged by all ${push.proxies} proxies after ${push.ms} ms`);
    for (const line of lines) printLine(line);
  }
  return failures;
}

function describeDenial(reply: Reply): string {
  const reason = reply.headers['x-trellis-denied'];
  return `${reply.body.trim()}${typeof reason === 'string' ? `\n    why: ${reason}` : ''}`;
}

function plaintextRequest(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => socket.write('GET /productpage HTTP/1.1\r\nHost: productpage\r\n\r\n'));
    let received = '';
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('data', (data: Buffer) => (received += data.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(received === '' ? 'closed' : received.split('\r\n')[0] ?? received));
  });
}

