import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfigText, parseConfigTexts, type ConfigText } from '../../../src/api/config-set.js';
import { regexProblem } from '../../../src/api/regex.js';
import { hostCovers, hostProblem, resolveHost } from '../../../src/api/hosts.js';
import {
  DESTINATION_RULE_CASES,
  DESTINATION_RULE_WARNINGS,
  DR,
  RATE_LIMIT_CASES,
  RL,
  SC,
  SIDECAR_CASES,
  SIDECAR_WARNINGS,
  VIRTUAL_SERVICE_CASES,
  VIRTUAL_SERVICE_WARNINGS,
  VS,
  type Case,
} from './traffic-cases.js';

/**
 * Traffic validation (VirtualService, DestinationRule, Sidecar, RateLimit): every rule fails with
 * the exact position, field path, code and message; Istio's bookinfo networking samples load
 * cleanly against the demo's registry; cross-resource checks report the resource that is wrong.
 */

function located(c: Case): { located: string[]; messages: string[] } {
  const result = parseConfigText(c.yaml, 'traffic.yaml');
  const list = c.severity === 'warning' ? result.warnings : result.errors;
  return { located: list.map((d) => `${d.line}:${d.column} ${d.path ?? '-'} ${d.code}`), messages: list.map((d) => d.message) };
}

function table(title: string, cases: readonly Case[]): void {
  void describe(title, () => {
    for (const c of cases) {
      void it(c.name, () => {
        const found = located(c);
        assert.deepEqual(found.located, c.expect, found.messages.join('\n'));
        assert.ok(found.messages[0]?.includes(c.says), `message "${found.messages[0] ?? ''}" should say "${c.says}"`);
      });
    }
  });
}

table('VirtualService: every error located exactly', VIRTUAL_SERVICE_CASES);
table('VirtualService: warnings', VIRTUAL_SERVICE_WARNINGS);
table('DestinationRule: every error located exactly', DESTINATION_RULE_CASES);
table('DestinationRule: warnings', DESTINATION_RULE_WARNINGS);
table('Sidecar: every error located exactly', SIDECAR_CASES);
table('Sidecar: warnings', SIDECAR_WARNINGS);
table('RateLimit: every error located exactly', RATE_LIMIT_CASES);

void describe('traffic validation: valid resources pass', () => {
  void it('accepts a VirtualService using every supported feature', () => {
    const yaml = VS(
      [
        '  hosts: [reviews, "*.shop.example.com"]',
        '  exportTo: [".", prod]',
        '  http:',
        '  - name: canary',
        '    match:',
        '    - uri: {regex: "(?i)^/api/v[12]/(?P<id>[0-9]+)$"}',
        '      headers:',
        '        end-user: {exact: jason}',
        '        x-present: {}',
        '      withoutHeaders:',
        '        x-skip: {regex: "*"}',
        '      queryParams:',
        '        debug: {prefix: "1"}',
        '      method: {exact: GET}',
        '      port: 9080',
        '      sourceLabels: {app: productpage}',
        '      sourceNamespace: shop',
        '      ignoreUriCase: true',
        '    - uri: {prefix: ""}',
        '      gateways: [mesh]',
        '    route:',
        '    - destination: {host: reviews, port: {number: 9080}}',
        '      weight: 75',
        '      headers:',
        '        request:',
        '          set: {x-canary: "false"}',
        '    - destination: {host: reviews.shop.svc.cluster.local}',
        '      weight: 25',
        '    timeout: 1.5s',
        '    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,connect-failure,unavailable,503", backoff: 25ms, retryIgnorePreviousHosts: false}',
        '    fault:',
        '      delay: {fixedDelay: 7s, percentage: {value: 0.5}}',
        '      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}',
        '    mirror: {host: shadow}',
        '    mirrorPercentage: {value: 10}',
        '    rewrite: {uriRegexRewrite: {match: "^/api/v1/(.*)", rewrite: "/v2/\\\\1"}}',
        '    corsPolicy:',
        '      allowOrigins: [{exact: "https://shop.example"}, {regex: "https://.*\\\\.example"}]',
        '      allowMethods: [GET, POST]',
        '      allowHeaders: ["*", x-user]',
        '      maxAge: 24h',
        '      allowCredentials: true',
        '    headers:',
        '      request:',
        '        set: {host: reviews.internal}',
        '        remove: [x-debug]',
        '      response:',
        '        add: {x-served-by: trellis}',
        '  - match:',
        '    - uri: {exact: /old}',
        '    redirect: {uri: /new, redirectCode: 308, derivePort: FROM_REQUEST_PORT}',
        '  - match:',
        '    - uri: {exact: /health}',
        '    directResponse: {status: 200, body: {bytes: "b2s="}}',
        '  - route:',
        '    - destination: {host: reviews}',
        '      weight: 100',
      ].join('\n'),
    );
    const result = parseConfigText(yaml, 'vs.yaml');
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, []);
    assert.equal(result.config?.virtualServices.length, 1);
  });

  void it('accepts tcp and tls routes', () => {
    const yaml = VS(
      [
        '  hosts: ["*.example.com", db]',
        '  tls:',
        '  - match:',
        '    - sniHosts: [a.example.com, "*.b.example.com"]',
        '      port: 443',
        '    route:',
        '    - destination: {host: a.example.com, port: {number: 443}}',
        '  tcp:',
        '  - match:',
        '    - port: 5432',
        '      destinationSubnets: [10.0.0.0/8, "2001:db8::1"]',
        '    route:',
        '    - destination: {host: db, port: {number: 5432}}',
        '      weight: 90',
        '    - destination: {host: db.backup.svc.cluster.local, port: {number: 5432}}',
        '      weight: 10',
      ].join('\n'),
    );
    const result = parseConfigText(yaml, 'vs.yaml');
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, []);
  });

  void it('accepts a DestinationRule using every supported feature', () => {
    const yaml = DR(
      [
        '  host: reviews',
        '  exportTo: ["*"]',
        '  trafficPolicy:',
        '    loadBalancer:',
        '      consistentHash:',
        '        httpCookie: {name: user, path: /, ttl: 0s}',
        '        ringHash: {minimumRingSize: 1024}',
        '    connectionPool:',
        '      tcp: {maxConnections: 100, connectTimeout: 30ms, idleTimeout: 0s}',
        '      http: {http1MaxPendingRequests: 1, http2MaxRequests: 10, maxRequestsPerConnection: 1, maxRetries: 3, idleTimeout: 1h}',
        '    outlierDetection:',
        '      consecutive5xxErrors: 7',
        '      consecutiveGatewayErrors: 3',
        '      splitExternalLocalOriginErrors: true',
        '      consecutiveLocalOriginFailures: 2',
        '      interval: 5m',
        '      baseEjectionTime: 15m',
        '      maxEjectionPercent: 50',
        '      minHealthPercent: 0',
        '    tls: {mode: ISTIO_MUTUAL, sni: reviews.shop.svc.cluster.local}',
        '    portLevelSettings:',
        '    - port: {number: 9080}',
        '      loadBalancer: {simple: LEAST_REQUEST}',
        '  subsets:',
        '  - name: v1',
        '    labels: {version: v1}',
        '  - name: v2',
        '    labels: {version: v2}',
        '    trafficPolicy:',
        '      loadBalancer: {simple: ROUND_ROBIN}',
      ].join('\n'),
    );
    const result = parseConfigText(yaml, 'dr.yaml');
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, []);
  });

  void it('accepts SIMPLE TLS toward an external service', () => {
    const result = parseConfigText(DR('  host: api.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, sni: api.example.com}'), 'dr.yaml');
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, []);
  });

  void it('accepts a Sidecar and a RateLimit', () => {
    const sidecar = SC('  workloadSelector:\n    labels: {app: productpage}\n  egress:\n  - hosts: ["./*", "istio-system/*", "~/*.internal.example.com", "*/api.example.com"]\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}');
    const rateLimit = RL(
      '  selector:\n    matchLabels: {app: ratings}\n  rules:\n  - match: {paths: ["/ratings/*", "/health"], methods: [GET], ports: [9080]}\n    per: caller\n    tokenBucket: {maxTokens: 10, tokensPerFill: 5, fillInterval: 50ms}',
    );
    const result = parseConfigText(`${sidecar}---\n${rateLimit}`, 'x.yaml');
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, []);
    assert.equal(result.config?.sidecars.length, 1);
    assert.equal(result.config?.rateLimits.length, 1);
  });
});

// ---- Istio's bookinfo networking samples against the demo's registry

const EXAMPLES = join(process.cwd(), 'examples', 'bookinfo');

function exampleTexts(...files: string[]): ConfigText[] {
  return files.map((file) => ({ file, text: readFileSync(join(EXAMPLES, file), 'utf8') }));
}

const REGISTRY = ['config/mesh.yaml', 'config/services.yaml', 'config/workloads.yaml'];
const VIRTUAL_SERVICE_SAMPLES = [
  'networking/virtual-service-all-v1.yaml',
  'networking/virtual-service-reviews-80-20.yaml',
  'networking/virtual-service-reviews-test-v2.yaml',
  'networking/virtual-service-ratings-test-delay.yaml',
  'networking/virtual-service-ratings-test-abort.yaml',
];

void describe("traffic validation: Istio's bookinfo networking samples", () => {
  for (const rules of ['networking/destination-rule-all.yaml', 'networking/destination-rule-all-mtls.yaml']) {
    for (const sample of VIRTUAL_SERVICE_SAMPLES) {
      void it(`${sample} with ${rules} loads without errors or warnings`, () => {
        const result = parseConfigTexts(exampleTexts(...REGISTRY, rules, sample));
        assert.deepEqual(result.errors, []);
        assert.deepEqual(result.warnings, []);
        assert.ok((result.config?.virtualServices.length ?? 0) >= 1);
        assert.equal(result.config?.destinationRules.length, 4);
      });
    }
  }

  void it('the samples are namespace default, like the registry, and the subsets select registered versions', () => {
    const result = parseConfigTexts(exampleTexts(...REGISTRY, 'networking/destination-rule-all.yaml', 'networking/virtual-service-all-v1.yaml'));
    const config = result.config;
    assert.ok(config);
    for (const vs of config.virtualServices) assert.equal(vs.metadata.namespace, 'default');
    const hosts = new Set(config.serviceEntries.flatMap((se) => se.spec.hosts));
    for (const dr of config.destinationRules) {
      assert.ok(hosts.has(resolveHost(dr.spec.host, 'default')), `${dr.spec.host} resolves to a registered service`);
    }
    const reviews = config.destinationRules.find((dr) => dr.spec.host === 'reviews');
    const versions = new Set(config.workloadEntries.filter((we) => we.spec.labels?.['app'] === 'reviews').map((we) => we.spec.labels?.['version']));
    for (const subset of reviews?.spec.subsets ?? []) assert.ok(versions.has(subset.labels?.['version']), `subset ${subset.name} selects a registered workload`);
  });

  void it('an unknown subset names the subsets that exist', () => {
    const bad = exampleTexts('networking/virtual-service-reviews-80-20.yaml')[0] as ConfigText;
    const text = bad.text.replace('subset: v2', 'subset: v4');
    const result = parseConfigTexts([...exampleTexts(...REGISTRY, 'networking/destination-rule-all.yaml'), { file: bad.file, text }]);
    assert.deepEqual(
      result.errors.map((d) => `${d.file}:${d.line}:${d.column} ${d.resource ?? ''} ${d.path ?? ''} ${d.code}`),
      ['networking/virtual-service-reviews-80-20.yaml:17:17 VirtualService default/reviews spec.http[0].route[1].destination.subset TRELLIS_CONFIG_UNKNOWN_SUBSET'],
    );
    assert.match(result.errors[0]?.message ?? '', /subset "v4" is not defined for host "reviews.default.svc.cluster.local": DestinationRule default\/reviews defines "v1", "v2", "v3"/);
  });
});

// ---- Cross-resource checks

const meta = (name: string, namespace: string, extra = ''): string => `metadata: {name: ${name}, namespace: ${namespace}${extra}}`;
const ROUTE_TO = (host: string, subset?: string): string => `  hosts: [${host}]\n  http:\n  - route:\n    - destination: {host: ${host}${subset === undefined ? '' : `, subset: ${subset}`}}`;

function crossErrors(...texts: string[]): string[] {
  const result = parseConfigTexts(texts.map((text, i) => ({ file: `f${i}.yaml`, text })));
  return result.errors.map((d) => `${d.file}:${d.line}:${d.column} ${d.resource ?? ''} ${d.path ?? ''} ${d.code}`);
}

void describe('traffic validation: across resources', () => {
  void it('resolves short names against the namespace of each resource', () => {
    const dr = DR('  host: reviews.shop.svc.cluster.local\n  subsets:\n  - name: v1\n    labels: {version: v1}');
    assert.deepEqual(crossErrors(dr, VS(ROUTE_TO('reviews', 'v1'))), []);
    // The same short name in another namespace is another service.
    assert.deepEqual(crossErrors(dr, VS(ROUTE_TO('reviews', 'v1'), meta('r', 'web'))), ['f1.yaml:8:44 VirtualService web/r spec.http[0].route[0].destination.subset TRELLIS_CONFIG_UNKNOWN_SUBSET']);
  });

  void it('a subset without any DestinationRule for the host is an error', () => {
    const result = parseConfigText(VS(ROUTE_TO('reviews', 'v1')), 'vs.yaml');
    assert.equal(result.errors[0]?.code, 'TRELLIS_CONFIG_UNKNOWN_SUBSET');
    assert.match(result.errors[0]?.message ?? '', /no DestinationRule for this host/);
  });

  void it('subsets of mirrors and tcp routes are checked too', () => {
    const vs = VS('  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n    mirror: {host: reviews, subset: shadow}\n  tcp:\n  - route:\n    - destination: {host: reviews, subset: v9}');
    assert.deepEqual(crossErrors(vs), [
      'f0.yaml:9:37 VirtualService shop/r spec.http[0].mirror.subset TRELLIS_CONFIG_UNKNOWN_SUBSET',
      'f0.yaml:12:44 VirtualService shop/r spec.tcp[0].route[0].destination.subset TRELLIS_CONFIG_UNKNOWN_SUBSET',
    ]);
  });

  void it('a DestinationRule exported only to its own namespace is not visible elsewhere', () => {
    const dr = DR('  host: reviews.shop.svc.cluster.local\n  exportTo: ["."]\n  subsets:\n  - name: v1\n    labels: {version: v1}');
    const vs = VS(ROUTE_TO('reviews.shop.svc.cluster.local', 'v1'), meta('r', 'web'));
    assert.deepEqual(crossErrors(dr, vs), ['f1.yaml:8:67 VirtualService web/r spec.http[0].route[0].destination.subset TRELLIS_CONFIG_UNKNOWN_SUBSET']);
  });

  void it('a wildcard DestinationRule defines subsets for the hosts it covers', () => {
    const dr = DR('  host: "*.shop.svc.cluster.local"\n  subsets:\n  - name: v1\n    labels: {version: v1}');
    assert.deepEqual(crossErrors(dr, VS(ROUTE_TO('reviews', 'v1'))), []);
  });

  void it('two VirtualServices for the same host: the later one is reported, naming the other', () => {
    const first = VS(ROUTE_TO('reviews'), meta('a', 'shop'));
    const second = VS(ROUTE_TO('reviews.shop.svc.cluster.local'), meta('b', 'shop'));
    const result = parseConfigTexts([
      { file: 'a.yaml', text: first },
      { file: 'b.yaml', text: second },
    ]);
    assert.deepEqual(
      result.errors.map((d) => `${d.file}:${d.line}:${d.column} ${d.resource ?? ''} ${d.path ?? ''} ${d.code}`),
      ['b.yaml:5:11 VirtualService shop/b spec.hosts[0] TRELLIS_CONFIG_CONFLICT'],
    );
    assert.match(result.errors[0]?.message ?? '', /already routed by VirtualService shop\/a \(a\.yaml:1\)/);
  });

  void it('the older VirtualService (creationTimestamp) wins even when loaded later', () => {
    const newer = VS(ROUTE_TO('reviews'), meta('a', 'shop', ', creationTimestamp: "2024-06-01T00:00:00Z"'));
    const older = VS(ROUTE_TO('reviews'), meta('b', 'shop', ', creationTimestamp: "2024-01-01T00:00:00Z"'));
    assert.deepEqual(crossErrors(newer, older), ['f0.yaml:5:11 VirtualService shop/a spec.hosts[0] TRELLIS_CONFIG_CONFLICT']);
  });

  void it('VirtualServices in different namespaces conflict when both are visible, not when each is private', () => {
    const host = 'reviews.shop.svc.cluster.local';
    assert.deepEqual(crossErrors(VS(ROUTE_TO(host), meta('a', 'web')), VS(ROUTE_TO(host), meta('b', 'api'))), ['f1.yaml:5:11 VirtualService api/b spec.hosts[0] TRELLIS_CONFIG_CONFLICT']);
    const privateRoutes = (ns: string): string => VS(`  exportTo: ["."]\n${ROUTE_TO(host)}`, meta('a', ns));
    assert.deepEqual(crossErrors(privateRoutes('web'), privateRoutes('api')), []);
  });

  void it('a VirtualService bound only to a gateway claims no host for sidecars', () => {
    const gatewayOnly = VS(`  gateways: [istio-system/ingress]\n${ROUTE_TO('reviews')}`, meta('a', 'shop'));
    assert.deepEqual(crossErrors(gatewayOnly, VS(ROUTE_TO('reviews'), meta('b', 'shop'))), []);
  });

  void it('two DestinationRules for one host in one namespace conflict unless one has a workloadSelector', () => {
    const rule = (name: string, extra = ''): string => DR(`  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM}${extra}`, meta(name, 'shop'));
    assert.deepEqual(crossErrors(rule('a'), rule('b')), ['f1.yaml:5:9 DestinationRule shop/b spec.host TRELLIS_CONFIG_CONFLICT']);
    assert.deepEqual(crossErrors(rule('a'), rule('b', '\n  workloadSelector:\n    matchLabels: {app: productpage}')), []);
    assert.deepEqual(crossErrors(rule('a'), DR('  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM}', meta('b', 'web'))), []);
  });

  void it('a resource defined twice is reported once, as a duplicate, not also as a conflict', () => {
    const rule = DR('  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM}');
    assert.deepEqual(crossErrors(rule, rule), ['f1.yaml:3:18 DestinationRule shop/r metadata.name TRELLIS_CONFIG_DUPLICATE']);
  });

  void it('at most one Sidecar without workloadSelector per namespace', () => {
    const sidecar = (name: string, ns: string, selector = ''): string => SC(`${selector}  egress:\n  - hosts: ["./*"]`, meta(name, ns));
    assert.deepEqual(crossErrors(sidecar('a', 'shop'), sidecar('b', 'shop')), ['f1.yaml:3:18 Sidecar shop/b metadata.name TRELLIS_CONFIG_CONFLICT']);
    assert.deepEqual(crossErrors(sidecar('a', 'shop'), sidecar('b', 'web')), []);
    assert.deepEqual(crossErrors(sidecar('a', 'shop'), sidecar('b', 'shop', '  workloadSelector:\n    labels: {app: web}\n')), []);
  });
});

// ---- Building blocks

void describe('traffic validation: hosts and regular expressions', () => {
  void it('resolves short names as Istio does', () => {
    assert.equal(resolveHost('reviews', 'default'), 'reviews.default.svc.cluster.local');
    assert.equal(resolveHost('reviews.other', 'default'), 'reviews.other');
    assert.equal(resolveHost('*', 'default'), '*');
  });

  void it('matches wildcard hosts', () => {
    assert.ok(hostCovers('*.example.com', 'a.example.com'));
    assert.ok(hostCovers('*.example.com', 'a.b.example.com'));
    assert.ok(hostCovers('*.com', '*.example.com'));
    assert.ok(!hostCovers('*.example.com', 'example.com'));
    assert.ok(!hostCovers('a.example.com', '*.example.com'));
  });

  void it('validates host names', () => {
    assert.equal(hostProblem('reviews'), undefined);
    assert.equal(hostProblem('istio.io.'), undefined);
    assert.equal(hostProblem('*.example.com'), undefined);
    assert.match(hostProblem('10.0.0.1') ?? '', /cannot be all digits/);
    assert.match(hostProblem('a..b') ?? '', /not a DNS label/);
  });

  void it('accepts RE2 syntax that JavaScript reads the same way, and rejects the rest', () => {
    for (const ok of ['^/api/v[12]/.*$', '(?i)jason', '(?P<id>[0-9]+)', '\\Aa\\z', '[]a]', 'a{2,1000}']) assert.equal(regexProblem(ok), undefined, ok);
    for (const [bad, why] of [
      ['(?<=a)b', /lookbehind/],
      ['(?<!a)b', /lookbehind/],
      ['a(?=b)', /lookahead/],
      ['(a)\\1', /backreferences/],
      ['(?<n>a)\\k<n>', /backreferences/],
      ['(?>a)', /atomic/],
      ['a\\Z', /\\Z/],
      ['\\p{L}', /Unicode classes/],
      ['[[:alpha:]]', /POSIX/],
      ['a{1001}', /repetition/],
      ['a(?i)b', /inline flags/],
      ['x'.repeat(1025), /1024/],
      ['', /empty/],
    ] as const) {
      assert.match(regexProblem(bad) ?? '', why, bad.slice(0, 20));
    }
  });
});
