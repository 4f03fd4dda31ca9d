import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText, parseConfigTexts } from '../../../src/api/config-set.js';
import type { ConfigDiagnostic } from '../../../src/api/diagnostics.js';

/**
 * Validation tables: each case is a resource with one mistake, and the exact diagnostic it must
 * produce — line, column, field path, code and the rule it names.
 */

function errors(yaml: string): ConfigDiagnostic[] {
  return [...parseConfigText(yaml, 'policy.yaml').errors];
}

/** `line:column path code` of every error, the shape the tables compare. */
function located(yaml: string): string[] {
  return errors(yaml).map((d) => `${d.line}:${d.column} ${d.path ?? '-'} ${d.code}`);
}

const AP = (spec: string, metadata = 'metadata: {name: p, namespace: shop}'): string =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n${metadata}\nspec:\n${spec}\n`;

interface Case {
  readonly name: string;
  readonly yaml: string;
  /** `line:column path code`. */
  readonly expect: readonly string[];
  /** A phrase the (first) message must contain. */
  readonly says: string;
}

// Line 5 is the first spec line in AP(...).
const AUTHZ_CASES: readonly Case[] = [
  {
    name: 'unknown field in a source (typo)',
    yaml: AP('  rules:\n  - from:\n    - source:\n        principal: ["a/ns/b/sa/c"]'),
    expect: ['8:9 spec.rules[0].from[0].source.principal TRELLIS_CONFIG_UNKNOWN_FIELD'],
    says: 'did you mean "principals"',
  },
  {
    name: 'unknown top-level spec field',
    yaml: AP('  rule: []'),
    expect: ['5:3 spec.rule TRELLIS_CONFIG_UNKNOWN_FIELD'],
    says: 'did you mean "rules"',
  },
  {
    name: 'unknown when key',
    yaml: AP('  rules:\n  - when:\n    - key: request.headerz[x-user]\n      values: ["a"]'),
    expect: ['7:12 spec.rules[0].when[0].key TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'did you mean "request.headers[x-user]"',
  },
  {
    name: 'experimental Envoy metadata key',
    yaml: AP('  rules:\n  - when:\n    - key: experimental.envoy.filters.a.b[c]\n      values: ["a"]'),
    expect: ['7:12 spec.rules[0].when[0].key TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'Envoy filter metadata',
  },
  {
    name: 'condition without values',
    yaml: AP('  rules:\n  - when:\n    - key: source.ip'),
    expect: ['7:7 spec.rules[0].when[0] TRELLIS_CONFIG_MISSING_FIELD'],
    says: 'needs values or notValues',
  },
  {
    name: 'empty string in a list',
    yaml: AP('  rules:\n  - to:\n    - operation:\n        paths: ["/a", ""]'),
    expect: ['8:23 spec.rules[0].to[0].operation.paths[1] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'empty string',
  },
  {
    name: 'from: []',
    yaml: AP('  rules:\n  - from: []'),
    expect: ['6:11 spec.rules[0].from TRELLIS_CONFIG_INVALID_VALUE'],
    says: '"from: []" matches nothing',
  },
  {
    name: 'to: []',
    yaml: AP('  rules:\n  - to: []'),
    expect: ['6:9 spec.rules[0].to TRELLIS_CONFIG_INVALID_VALUE'],
    says: '"to: []" matches nothing',
  },
  {
    name: 'from entry without source',
    yaml: AP('  rules:\n  - from:\n    - {}'),
    expect: ['7:7 spec.rules[0].from[0] TRELLIS_CONFIG_MISSING_FIELD'],
    says: 'needs a "source"',
  },
  {
    name: 'empty source',
    yaml: AP('  rules:\n  - from:\n    - source: {}'),
    expect: ['7:15 spec.rules[0].from[0].source TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'empty "source"',
  },
  {
    name: 'serviceAccounts with principals',
    yaml: AP('  rules:\n  - from:\n    - source:\n        serviceAccounts: ["web"]\n        principals: ["a/ns/b/sa/c"]'),
    expect: ['7:7 spec.rules[0].from[0].source TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'cannot be combined with principals or namespaces',
  },
  {
    name: 'serviceAccounts with namespaces',
    yaml: AP('  rules:\n  - from:\n    - source:\n        notServiceAccounts: ["web"]\n        namespaces: ["x"]'),
    expect: ['7:7 spec.rules[0].from[0].source TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'cannot be combined',
  },
  {
    name: 'service account with a wildcard',
    yaml: AP('  rules:\n  - from:\n    - source:\n        serviceAccounts: ["shop/*"]'),
    expect: ['8:27 spec.rules[0].from[0].source.serviceAccounts[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'wildcards are not allowed',
  },
  {
    name: 'bad CIDR prefix length',
    yaml: AP('  rules:\n  - from:\n    - source:\n        ipBlocks: ["10.0.0.0/8", "10.0.0.0/33"]'),
    expect: ['8:34 spec.rules[0].from[0].source.ipBlocks[1] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'prefix length "33"',
  },
  {
    name: 'bad IP in notRemoteIpBlocks',
    yaml: AP('  rules:\n  - from:\n    - source:\n        notRemoteIpBlocks: ["300.1.1.1"]'),
    expect: ['8:29 spec.rules[0].from[0].source.notRemoteIpBlocks[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'not an IPv4 or IPv6 address',
  },
  {
    name: 'bad IP in a when condition',
    yaml: AP('  rules:\n  - when:\n    - key: destination.ip\n      notValues: ["10.0.0.1/x"]'),
    expect: ['8:19 spec.rules[0].when[0].notValues[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'prefix length',
  },
  {
    name: 'port 0',
    yaml: AP('  rules:\n  - to:\n    - operation:\n        ports: ["0"]'),
    expect: ['8:17 spec.rules[0].to[0].operation.ports[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'from 1 to 65535',
  },
  {
    name: 'port out of range in destination.port',
    yaml: AP('  rules:\n  - when:\n    - key: destination.port\n      values: ["65536"]'),
    expect: ['8:16 spec.rules[0].when[0].values[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'from 1 to 65535',
  },
  {
    name: 'port written as a number',
    yaml: AP('  rules:\n  - to:\n    - operation:\n        ports: [8080]'),
    expect: ['8:17 spec.rules[0].to[0].operation.ports[0] TRELLIS_CONFIG_WRONG_TYPE'],
    says: 'quote it: "8080"',
  },
  {
    name: 'lower-case method',
    yaml: AP('  rules:\n  - to:\n    - operation:\n        methods: ["get"]'),
    expect: ['8:19 spec.rules[0].to[0].operation.methods[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'write "GET"',
  },
  {
    name: 'wildcard in the middle',
    yaml: AP('  rules:\n  - from:\n    - source:\n        principals: ["cluster.local/ns/*/sa/web"]'),
    expect: ['8:22 spec.rules[0].from[0].source.principals[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: '"*" is only allowed once',
  },
  {
    name: 'principal with spiffe:// prefix',
    yaml: AP('  rules:\n  - from:\n    - source:\n        principals: ["spiffe://cluster.local/ns/a/sa/b"]'),
    expect: ['8:22 spec.rules[0].from[0].source.principals[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'without "spiffe://"',
  },
  {
    name: 'unsupported path template',
    yaml: AP('  rules:\n  - to:\n    - operation:\n        paths: ["/{**}/a/{*}"]'),
    expect: ['8:17 spec.rules[0].to[0].operation.paths[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: '"{**}" must be the last operator',
  },
  {
    name: 'path template with text in the segment',
    yaml: AP('  rules:\n  - to:\n    - operation:\n        notPaths: ["/a/{*}.txt"]'),
    expect: ['8:20 spec.rules[0].to[0].operation.notPaths[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'each as a whole path segment',
  },
  {
    name: 'path without a leading slash',
    yaml: AP('  rules:\n  - to:\n    - operation:\n        paths: ["admin"]'),
    expect: ['8:17 spec.rules[0].to[0].operation.paths[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'paths start with "/"',
  },
  {
    name: 'CUSTOM without provider',
    yaml: AP('  action: CUSTOM\n  rules:\n  - {}'),
    expect: ['4:1 spec TRELLIS_CONFIG_MISSING_FIELD'],
    says: 'needs provider.name',
  },
  {
    name: 'provider on an ALLOW policy',
    yaml: AP('  provider: {name: ext}\n  rules:\n  - {}'),
    expect: ['5:13 spec.provider TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'only used with action CUSTOM',
  },
  {
    name: 'CUSTOM with principals',
    yaml: AP('  action: CUSTOM\n  provider: {name: ext}\n  rules:\n  - from:\n    - source:\n        principals: ["a"]'),
    expect: ['10:9 spec.rules[0].from[0].source.principals TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'not supported with action CUSTOM',
  },
  {
    name: 'DENY without rules',
    yaml: AP('  action: DENY'),
    expect: ['4:1 spec TRELLIS_CONFIG_MISSING_FIELD'],
    says: 'DENY policy without rules never triggers',
  },
  {
    name: 'action typo',
    yaml: AP('  action: DENNY\n  rules:\n  - {}'),
    expect: ['5:11 spec.action TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'did you mean DENY',
  },
  {
    name: 'dry-run on AUDIT',
    yaml: AP('  action: AUDIT\n  rules:\n  - {}', 'metadata:\n  name: p\n  annotations: {"istio.io/dry-run": "true"}'),
    expect: ['5:37 metadata.annotations["istio.io/dry-run"] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'only works with action ALLOW or DENY',
  },
  {
    name: 'dry-run on CUSTOM',
    yaml: AP('  action: CUSTOM\n  provider: {name: x}\n  rules:\n  - {}', 'metadata:\n  name: p\n  annotations: {"istio.io/dry-run": "true"}'),
    expect: ['5:37 metadata.annotations["istio.io/dry-run"] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'only works with action ALLOW or DENY',
  },
  {
    name: 'selector with an empty key',
    yaml: AP('  selector:\n    matchLabels: {"": x}'),
    expect: ['6:19 spec.selector.matchLabels[""] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'empty label key',
  },
  {
    name: 'selector with a wildcard',
    yaml: AP('  selector:\n    matchLabels:\n      app: "web-*"'),
    expect: ['7:12 spec.selector.matchLabels.app TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'selectors match labels exactly',
  },
  {
    name: 'bad namespace name',
    yaml: AP('  rules:\n  - {}', 'metadata: {name: p, namespace: Shop_1}'),
    expect: ['3:32 metadata.namespace TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'not a valid namespace',
  },
  {
    name: 'missing metadata.name',
    yaml: AP('  rules:\n  - {}', 'metadata: {namespace: shop}'),
    expect: ['3:11 metadata.name TRELLIS_CONFIG_MISSING_FIELD'],
    says: 'missing required field "name"',
  },
];

const OTHER_CASES: readonly Case[] = [
  {
    name: 'PeerAuthentication mode typo',
    yaml: 'apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: pa, namespace: shop}\nspec:\n  mtls:\n    mode: STRICTT\n',
    expect: ['6:11 spec.mtls.mode TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'did you mean STRICT',
  },
  {
    name: 'portLevelMtls without selector',
    yaml: 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: pa, namespace: shop}\nspec:\n  portLevelMtls:\n    8080: {mode: DISABLE}\n',
    expect: ['5:3 spec.portLevelMtls TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'needs a selector',
  },
  {
    name: 'portLevelMtls port out of range',
    yaml: 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: pa, namespace: shop}\nspec:\n  selector: {matchLabels: {app: api}}\n  portLevelMtls:\n    70000: {mode: DISABLE}\n',
    expect: ['7:5 spec.portLevelMtls["70000"] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'from 1 to 65535',
  },
  {
    name: 'JWT rule with an empty audience',
    yaml: 'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: shop}\nspec:\n  jwtRules:\n  - issuer: https://issuer.example\n    jwksUri: https://issuer.example/jwks.json\n    audiences: [""]\n',
    expect: ['8:17 spec.jwtRules[0].audiences[0] TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'empty string',
  },
  {
    name: 'jwksUri without scheme',
    yaml: 'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: shop}\nspec:\n  jwtRules:\n  - issuer: https://issuer.example\n    jwksUri: issuer.example/jwks.json\n',
    expect: ['7:14 spec.jwtRules[0].jwksUri TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'not a URL',
  },
  {
    name: 'JWT from the :authority pseudo-header',
    yaml: 'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: shop}\nspec:\n  jwtRules:\n  - issuer: https://issuer.example\n    jwksUri: https://issuer.example/jwks.json\n    fromHeaders:\n    - name: ":authority"\n',
    expect: ['9:13 spec.jwtRules[0].fromHeaders[0].name TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'pseudo-header',
  },
  {
    name: 'JWT rule without issuer',
    yaml: 'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: shop}\nspec:\n  jwtRules:\n  - jwksUri: https://issuer.example/jwks.json\n',
    expect: ['6:5 spec.jwtRules[0] TRELLIS_CONFIG_MISSING_FIELD'],
    says: 'issuer is required',
  },
  {
    name: 'inline JWKS with a symmetric key',
    yaml: 'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: shop}\nspec:\n  jwtRules:\n  - issuer: i\n    jwks: \'{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}\'\n',
    expect: ['7:11 spec.jwtRules[0].jwks TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'only asymmetric keys',
  },
  {
    name: 'WorkloadEntry port 0',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm, namespace: shop}\nspec:\n  address: 10.0.0.5\n  ports: {http: 0}\n',
    expect: ['6:17 spec.ports.http TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'from 1 to 65535',
  },
  {
    name: 'WorkloadEntry bad address',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm, namespace: shop}\nspec:\n  address: 10.0.0.500\n',
    expect: ['5:12 spec.address TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'not a valid IPv4 address',
  },
  {
    name: 'ServiceEntry with both endpoints and workloadSelector',
    yaml: 'apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\nmetadata: {name: se, namespace: shop}\nspec:\n  hosts: [api.shop]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  workloadSelector: {labels: {app: api}}\n  endpoints: [{address: 10.0.0.1}]\n',
    expect: ['4:1 spec TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'not both',
  },
  {
    name: 'MeshConfig with a bad trust domain',
    yaml: 'apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec:\n  trustDomain: "Example.COM/x"\n',
    expect: ['5:16 spec.trustDomain TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'not a SPIFFE trust domain',
  },
  {
    name: 'MeshConfig defaultAuthorization typo',
    yaml: 'apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec:\n  defaultAuthorization: deny\n',
    expect: ['5:25 spec.defaultAuthorization TRELLIS_CONFIG_INVALID_VALUE'],
    says: 'did you mean DENY',
  },
  {
    name: 'unknown kind in a known group',
    yaml: 'apiVersion: security.istio.io/v1\nkind: AuthorisationPolicy\nmetadata: {name: x}\n',
    expect: ['2:7 kind TRELLIS_CONFIG_UNKNOWN_KIND'],
    says: 'unknown kind "AuthorisationPolicy"',
  },
  {
    name: 'unknown apiVersion',
    yaml: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n',
    expect: ['1:13 apiVersion TRELLIS_CONFIG_UNKNOWN_KIND'],
    says: 'unknown apiVersion "v1"',
  },
  {
    name: 'kind in a version that does not serve it',
    yaml: 'apiVersion: security.istio.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: x}\n',
    expect: ['1:13 apiVersion TRELLIS_CONFIG_UNKNOWN_KIND'],
    says: 'use security.istio.io/v1, security.istio.io/v1beta1',
  },
  {
    name: 'a document that is not a mapping',
    yaml: '- just\n- a list\n',
    expect: ['1:1 - TRELLIS_CONFIG_NOT_A_RESOURCE'],
    says: 'a resource is a YAML mapping',
  },
  {
    name: 'YAML syntax error',
    yaml: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x\n',
    expect: ['4:1 - TRELLIS_CONFIG_YAML'],
    says: 'YAML syntax',
  },
  {
    name: 'duplicate keys',
    yaml: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nkind: AuthorizationPolicy\nmetadata: {name: x}\n',
    expect: ['3:1 - TRELLIS_CONFIG_YAML'],
    says: 'unique',
  },
];

void describe('validation: every error located exactly', () => {
  for (const c of [...AUTHZ_CASES, ...OTHER_CASES]) {
    void it(c.name, () => {
      const found = errors(c.yaml);
      assert.deepEqual(located(c.yaml), c.expect, found.map((d) => d.message).join('\n'));
      assert.ok(found[0]?.message.includes(c.says), `message "${found[0]?.message ?? ''}" should say "${c.says}"`);
      assert.equal(found[0]?.file, 'policy.yaml');
    });
  }
});

void describe('validation: the set is all or nothing', () => {
  void it('lists every error of every resource, not just the first', () => {
    const yaml = [
      AP('  rules:\n  - from:\n    - source:\n        ipBlocks: ["1.2.3.4/40"]\n    to:\n    - operation:\n        methods: ["post"]'),
      'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: pa}\nspec:\n  mtls: {mode: strict}\n',
    ].join('---\n');
    const result = parseConfigText(yaml, 'policy.yaml');
    assert.equal(result.config, undefined, 'an invalid set yields no config');
    assert.deepEqual(
      result.errors.map((d) => `${d.line}:${d.column} ${d.resource ?? ''} ${d.path ?? ''}`),
      [
        '8:20 AuthorizationPolicy shop/p spec.rules[0].from[0].source.ipBlocks[0]',
        '11:19 AuthorizationPolicy shop/p spec.rules[0].to[0].operation.methods[0]',
        '17:16 PeerAuthentication default/pa spec.mtls.mode',
      ],
    );
    assert.equal(result.resources.length, 2, 'the resources are still listed for summaries');
  });

  void it('reports the resource as Kind namespace/name, with namespace default when absent', () => {
    const [d] = errors(AP('  rule: []', 'metadata: {name: p}'));
    assert.equal(d?.resource, 'AuthorizationPolicy default/p');
  });

  void it('rejects a resource defined twice, across files', () => {
    const a = AP('  rules:\n  - {}');
    const result = parseConfigTexts([
      { file: 'a.yaml', text: a },
      { file: 'b.yaml', text: a },
    ]);
    assert.deepEqual(
      result.errors.map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`),
      ['b.yaml:3:18 TRELLIS_CONFIG_DUPLICATE'],
    );
    assert.match(result.errors[0]?.message ?? '', /first definition is at a\.yaml:1/);
  });

  void it('v1 and v1beta1 of one kind are the same resource', () => {
    const result = parseConfigText(AP('  rules:\n  - {}') + '---\n' + AP('  rules:\n  - {}').replace('security.istio.io/v1', 'security.istio.io/v1beta1'), 'p.yaml');
    assert.equal(result.errors[0]?.code, 'TRELLIS_CONFIG_DUPLICATE');
  });

  void it('allows at most one MeshConfig', () => {
    const mesh = 'apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: NAME}\nspec: {}\n';
    const result = parseConfigText(`${mesh.replace('NAME', 'a')}---\n${mesh.replace('NAME', 'b')}`, 'mesh.yaml');
    assert.deepEqual(result.errors.map((d) => `${d.line}:${d.column} ${d.code}`), ['6:1 TRELLIS_CONFIG_MESH_CONFIG']);
  });

  void it('rejects a namespace on the mesh-wide MeshConfig', () => {
    const result = parseConfigText('apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: m, namespace: x}\n', 'mesh.yaml');
    assert.equal(result.errors[0]?.path, 'metadata.namespace');
  });
});

void describe('loading: kinds, defaults and warnings', () => {
  void it('resolves MeshConfig defaults as Istio does', () => {
    const result = parseConfigText(AP('  rules:\n  - {}'), 'p.yaml');
    assert.deepEqual(result.config?.mesh, { trustDomain: 'cluster.local', rootNamespace: 'istio-system', defaultAuthorization: 'ALLOW', pathNormalization: 'BASE', outboundTrafficPolicy: 'ALLOW_ANY' });
  });

  void it('reads every MeshConfig field', () => {
    const result = parseConfigText(
      'apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec:\n  trustDomain: example.org\n  rootNamespace: mesh-root\n  defaultAuthorization: DENY\n  pathNormalization: MERGE_SLASHES\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n  audit: {allows: 10%, sinks: [stdout, "syslog+udp://127.0.0.1:514"]}\n',
      'mesh.yaml',
    );
    assert.deepEqual(result.config?.mesh, {
      trustDomain: 'example.org',
      rootNamespace: 'mesh-root',
      defaultAuthorization: 'DENY',
      pathNormalization: 'MERGE_SLASHES',
      outboundTrafficPolicy: 'REGISTRY_ONLY',
      audit: { allows: 0.1, sinks: ['stdout', 'syslog+udp://127.0.0.1:514'] },
    });
  });

  void it('refuses invalid audit settings with the field path', () => {
    const result = parseConfigText('apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec:\n  audit: {allows: some, sinks: [stdout, "ftp://x"]}\n', 'mesh.yaml');
    assert.deepEqual(result.errors.map((e) => e.path), ['spec.audit.allows', 'spec.audit.sinks[1]']);
  });

  void it('loads Istio kinds handled later with a "not handled yet" warning', () => {
    const kinds = ['Gateway', 'WorkloadGroup'];
    const yaml = kinds.map((k) => `apiVersion: networking.istio.io/v1\nkind: ${k}\nmetadata: {name: x}\nspec: {anything: [goes]}\n`).join('---\n');
    const result = parseConfigText(
      `${yaml}---\napiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: x}\n---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: x}\n`,
      'istio.yaml',
    );
    assert.deepEqual(result.errors, []);
    assert.equal(result.warnings.length, 4);
    assert.ok(result.warnings.every((w) => w.code === 'TRELLIS_CONFIG_NOT_HANDLED'));
    assert.equal(result.config?.notHandled.length, 4);
  });

  void it('accepts kubectl output: server fields in metadata and a status', () => {
    const result = parseConfigText(
      AP('  rules:\n  - {}', 'metadata:\n  name: p\n  namespace: shop\n  uid: 1f2e\n  resourceVersion: "42"\n  generation: 3\n  creationTimestamp: "2024-05-01T12:00:00Z"\n  managedFields: [{manager: kubectl}]') + 'status: {}\n',
      'p.yaml',
    );
    assert.deepEqual(result.errors, []);
    assert.equal(result.config?.authorizationPolicies[0]?.metadata.creationTimestamp, '2024-05-01T12:00:00Z');
  });

  void it('treats an absent or null spec as empty (allow nothing)', () => {
    const result = parseConfigText('apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n', 'p.yaml');
    assert.deepEqual(result.config?.authorizationPolicies[0]?.spec, {});
  });

  void it('warns that an HTTP-only DENY rule also denies TCP', () => {
    const result = parseConfigText(AP('  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: ["POST"]'), 'p.yaml');
    assert.deepEqual(result.warnings.map((w) => `${w.line}:${w.column} ${w.code}`), ['7:5 TRELLIS_CONFIG_TCP_WIDENED']);
    const scoped = parseConfigText(AP('  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: ["POST"]\n        ports: ["8080"]'), 'p.yaml');
    assert.deepEqual(scoped.warnings, []);
  });

  void it('warns about targetRefs, which apply to no sidecar workload', () => {
    const result = parseConfigText(AP('  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: gw}\n  rules:\n  - {}'), 'p.yaml');
    assert.deepEqual(result.errors, []);
    assert.equal(result.warnings[0]?.code, 'TRELLIS_CONFIG_NOT_HANDLED');
  });

  void it('accepts jwks_uri, the alternative spelling of Istio\'s CRD', () => {
    const result = parseConfigText(
      'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: shop}\nspec:\n  jwtRules:\n  - issuer: i\n    jwks_uri: file:///etc/jwks.json\n',
      'ra.yaml',
    );
    assert.deepEqual(result.errors, []);
  });

  void it('skips empty documents and comments', () => {
    const result = parseConfigText(`# policies\n---\n---\n${AP('  rules:\n  - {}')}---\n`, 'p.yaml');
    assert.deepEqual(result.errors, []);
    assert.equal(result.config?.authorizationPolicies.length, 1);
  });

  void it('keeps YAML 1.2 scalars: "yes" is a string, not a boolean', () => {
    const result = parseConfigText(AP('  rules:\n  - when:\n    - key: request.headers[x-flag]\n      values: [yes]'), 'p.yaml');
    assert.deepEqual(result.errors, []);
  });
});
