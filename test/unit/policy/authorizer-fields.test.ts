import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuthzRequest, VerifiedJwt } from '../../../src/policy/authz-request.js';
import { authorizerFor, plaintext, policy, request } from '../../helpers/policy.js';

/**
 * Request → decision tables for every field of a rule. Each row is one ALLOW rule and a
 * request: ALLOW means the rule matched, DENY means it did not (the policy exists, so no match
 * denies). Every field is tested matching and not matching, and in its `not` form.
 */

function jwt(claims: Record<string, unknown> = {}, iss = 'https://issuer.example', sub = 'user-1'): VerifiedJwt {
  const aud = claims['aud'];
  return {
    issuer: iss,
    subject: sub,
    principal: `${iss}/${sub}`,
    audiences: typeof aud === 'string' ? [aud] : Array.isArray(aud) ? (aud as string[]) : [],
    ...(typeof claims['azp'] === 'string' ? { presenter: claims['azp'] } : {}),
    claims: { iss, sub, ...claims },
  };
}

interface Row {
  readonly name: string;
  /** The rule, as YAML lines under `rules:` (indented for a list item). */
  readonly rule: string;
  readonly request: AuthzRequest;
  readonly expect: 'ALLOW' | 'DENY';
}

const from = (source: string): string => `- from:\n  - source:\n      ${source}`;
const to = (operation: string): string => `- to:\n  - operation:\n      ${operation}`;
const when = (key: string, values: string, field = 'values'): string => `- when:\n  - key: ${JSON.stringify(key)}\n    ${field}: ${values}`;

const ROWS: readonly Row[] = [
  // principals: exact, prefix, suffix, presence
  { name: 'principals exact', rule: from('principals: ["cluster.local/ns/web/sa/frontend"]'), request: request(), expect: 'ALLOW' },
  { name: 'principals exact, other identity', rule: from('principals: ["cluster.local/ns/web/sa/admin"]'), request: request(), expect: 'DENY' },
  { name: 'principals prefix', rule: from('principals: ["cluster.local/ns/web/*"]'), request: request(), expect: 'ALLOW' },
  { name: 'principals suffix', rule: from('principals: ["*/sa/frontend"]'), request: request(), expect: 'ALLOW' },
  { name: 'principals suffix, miss', rule: from('principals: ["*/sa/backend"]'), request: request(), expect: 'DENY' },
  { name: 'principals "*" needs an identity', rule: from('principals: ["*"]'), request: plaintext(), expect: 'DENY' },
  { name: 'principals "*" with mTLS', rule: from('principals: ["*"]'), request: request(), expect: 'ALLOW' },
  { name: 'principals are case-sensitive', rule: from('principals: ["cluster.local/ns/WEB/sa/frontend"]'), request: request(), expect: 'DENY' },
  { name: 'notPrincipals excludes', rule: from('notPrincipals: ["cluster.local/ns/web/sa/frontend"]'), request: request(), expect: 'DENY' },
  { name: 'notPrincipals other', rule: from('notPrincipals: ["cluster.local/ns/web/sa/admin"]'), request: request(), expect: 'ALLOW' },
  { name: 'notPrincipals matches plaintext (no identity is not excluded)', rule: from('notPrincipals: ["*"]'), request: plaintext(), expect: 'ALLOW' },

  // namespaces (globs)
  { name: 'namespaces exact', rule: from('namespaces: ["web"]'), request: request(), expect: 'ALLOW' },
  { name: 'namespaces other', rule: from('namespaces: ["shop"]'), request: request(), expect: 'DENY' },
  { name: 'namespaces glob', rule: from('namespaces: ["w*b"]'), request: request(), expect: 'ALLOW' },
  { name: 'namespaces need mTLS', rule: from('namespaces: ["web"]'), request: plaintext(), expect: 'DENY' },
  { name: 'notNamespaces excludes', rule: from('notNamespaces: ["web"]'), request: request(), expect: 'DENY' },
  { name: 'notNamespaces other', rule: from('notNamespaces: ["dev"]'), request: request(), expect: 'ALLOW' },

  // serviceAccounts (namespace/name, or name = the policy's namespace)
  { name: 'serviceAccounts ns/name', rule: from('serviceAccounts: ["web/frontend"]'), request: request(), expect: 'ALLOW' },
  { name: 'serviceAccounts name means the policy namespace', rule: from('serviceAccounts: ["frontend"]'), request: request(), expect: 'DENY' },
  { name: 'serviceAccounts name in policy namespace', rule: from('serviceAccounts: ["frontend"]'), request: request({ sourcePrincipal: 'cluster.local/ns/shop/sa/frontend' }), expect: 'ALLOW' },
  { name: 'serviceAccounts ignore the trust domain', rule: from('serviceAccounts: ["web/frontend"]'), request: request({ sourcePrincipal: 'other.org/ns/web/sa/frontend' }), expect: 'ALLOW' },
  { name: 'notServiceAccounts excludes', rule: from('notServiceAccounts: ["web/frontend"]'), request: request(), expect: 'DENY' },

  // trustDomains
  { name: 'trustDomains exact', rule: from('trustDomains: ["cluster.local"]'), request: request(), expect: 'ALLOW' },
  { name: 'trustDomains other', rule: from('trustDomains: ["example.org"]'), request: request(), expect: 'DENY' },
  { name: 'trustDomains suffix', rule: from('trustDomains: ["*.local"]'), request: request(), expect: 'ALLOW' },
  { name: 'notTrustDomains', rule: from('notTrustDomains: ["cluster.local"]'), request: request(), expect: 'DENY' },

  // ipBlocks / remoteIpBlocks
  { name: 'ipBlocks CIDR', rule: from('ipBlocks: ["10.1.0.0/16"]'), request: request(), expect: 'ALLOW' },
  { name: 'ipBlocks single IP', rule: from('ipBlocks: ["10.1.2.3"]'), request: request(), expect: 'ALLOW' },
  { name: 'ipBlocks miss', rule: from('ipBlocks: ["10.2.0.0/16"]'), request: request(), expect: 'DENY' },
  { name: 'ipBlocks IPv6', rule: from('ipBlocks: ["2001:db8::/32"]'), request: request({ sourceIp: '2001:db8::7' }), expect: 'ALLOW' },
  { name: 'ipBlocks: IPv4-mapped client address is IPv4', rule: from('ipBlocks: ["10.1.2.0/24"]'), request: request({ sourceIp: '::ffff:10.1.2.3' }), expect: 'ALLOW' },
  { name: 'notIpBlocks excludes', rule: from('notIpBlocks: ["10.0.0.0/8"]'), request: request(), expect: 'DENY' },
  { name: 'remoteIpBlocks uses the original client', rule: from('remoteIpBlocks: ["203.0.113.0/24"]'), request: request({ remoteIp: '203.0.113.9' }), expect: 'ALLOW' },
  { name: 'remoteIpBlocks defaults to the source IP', rule: from('remoteIpBlocks: ["10.1.2.3"]'), request: request(), expect: 'ALLOW' },
  { name: 'notRemoteIpBlocks excludes', rule: from('notRemoteIpBlocks: ["203.0.113.0/24"]'), request: request({ remoteIp: '203.0.113.9' }), expect: 'DENY' },

  // requestPrincipals (JWT iss/sub)
  { name: 'requestPrincipals exact', rule: from('requestPrincipals: ["https://issuer.example/user-1"]'), request: request({ jwt: jwt() }), expect: 'ALLOW' },
  { name: 'requestPrincipals without a token', rule: from('requestPrincipals: ["*"]'), request: request(), expect: 'DENY' },
  { name: 'requestPrincipals "*" with a token', rule: from('requestPrincipals: ["*"]'), request: request({ jwt: jwt() }), expect: 'ALLOW' },
  { name: 'requestPrincipals issuer with any subject', rule: from('requestPrincipals: ["https://issuer.example/*"]'), request: request({ jwt: jwt() }), expect: 'ALLOW' },
  { name: 'requestPrincipals other issuer', rule: from('requestPrincipals: ["https://evil.example/*"]'), request: request({ jwt: jwt() }), expect: 'DENY' },
  { name: 'requestPrincipals any issuer, exact subject', rule: from('requestPrincipals: ["*/user-1"]'), request: request({ jwt: jwt() }), expect: 'ALLOW' },
  { name: 'notRequestPrincipals "*" matches requests without a token', rule: from('notRequestPrincipals: ["*"]'), request: request(), expect: 'ALLOW' },
  { name: 'notRequestPrincipals "*" excludes requests with a token', rule: from('notRequestPrincipals: ["*"]'), request: request({ jwt: jwt() }), expect: 'DENY' },

  // hosts: case-insensitive, with and without port
  { name: 'hosts exact', rule: to('hosts: ["api.shop.svc"]'), request: request(), expect: 'ALLOW' },
  { name: 'hosts mixed case request', rule: to('hosts: ["api.shop.svc"]'), request: request({ http: { host: 'API.Shop.SVC' } }), expect: 'ALLOW' },
  { name: 'hosts mixed case policy', rule: to('hosts: ["API.shop.svc"]'), request: request(), expect: 'ALLOW' },
  { name: 'hosts without port match any port', rule: to('hosts: ["api.shop.svc"]'), request: request({ http: { host: 'api.shop.svc:8080' } }), expect: 'ALLOW' },
  { name: 'hosts with port match that port', rule: to('hosts: ["api.shop.svc:8080"]'), request: request({ http: { host: 'api.shop.svc:8080' } }), expect: 'ALLOW' },
  { name: 'hosts with port do not match another port', rule: to('hosts: ["api.shop.svc:8080"]'), request: request({ http: { host: 'api.shop.svc:9090' } }), expect: 'DENY' },
  { name: 'hosts with port do not match no port', rule: to('hosts: ["api.shop.svc:8080"]'), request: request(), expect: 'DENY' },
  { name: 'hosts with any port', rule: to('hosts: ["api.shop.svc:*"]'), request: request({ http: { host: 'api.shop.svc:1234' } }), expect: 'ALLOW' },
  { name: 'hosts suffix', rule: to('hosts: ["*.shop.svc"]'), request: request({ http: { host: 'API.shop.svc:80' } }), expect: 'ALLOW' },
  { name: 'hosts trailing dot is the same host', rule: to('hosts: ["api.shop.svc"]'), request: request({ http: { host: 'api.shop.svc.' } }), expect: 'ALLOW' },
  { name: 'hosts other', rule: to('hosts: ["web.shop.svc"]'), request: request(), expect: 'DENY' },
  { name: 'notHosts excludes whatever the case and port', rule: to('notHosts: ["admin.shop.svc"]'), request: request({ http: { host: 'ADMIN.shop.svc:443' } }), expect: 'DENY' },

  // ports
  { name: 'ports', rule: to('ports: ["8080"]'), request: request(), expect: 'ALLOW' },
  { name: 'ports other', rule: to('ports: ["9090"]'), request: request(), expect: 'DENY' },
  { name: 'notPorts', rule: to('notPorts: ["8080"]'), request: request(), expect: 'DENY' },
  { name: 'ports on TCP', rule: to('ports: ["8080"]'), request: request({ tcp: true }), expect: 'ALLOW' },

  // methods
  { name: 'methods', rule: to('methods: ["GET", "HEAD"]'), request: request(), expect: 'ALLOW' },
  { name: 'methods other', rule: to('methods: ["POST"]'), request: request(), expect: 'DENY' },
  { name: 'methods prefix', rule: to('methods: ["P*"]'), request: request({ http: { method: 'PATCH' } }), expect: 'ALLOW' },
  { name: 'notMethods', rule: to('notMethods: ["GET"]'), request: request(), expect: 'DENY' },

  // paths
  { name: 'paths exact', rule: to('paths: ["/api/orders"]'), request: request({ http: { path: '/api/orders' } }), expect: 'ALLOW' },
  { name: 'paths exact is not a prefix', rule: to('paths: ["/api"]'), request: request({ http: { path: '/api/orders' } }), expect: 'DENY' },
  { name: 'paths prefix', rule: to('paths: ["/api/*"]'), request: request({ http: { path: '/api/orders/7' } }), expect: 'ALLOW' },
  { name: 'paths suffix', rule: to('paths: ["*.json"]'), request: request({ http: { path: '/data/x.json' } }), expect: 'ALLOW' },
  { name: 'paths are case-sensitive', rule: to('paths: ["/admin"]'), request: request({ http: { path: '/Admin' } }), expect: 'DENY' },
  { name: 'notPaths', rule: to('notPaths: ["/admin*"]'), request: request({ http: { path: '/admin/x' } }), expect: 'DENY' },
  { name: 'path template {*} one segment', rule: to('paths: ["/api/{*}/items"]'), request: request({ http: { path: '/api/v1/items' } }), expect: 'ALLOW' },
  { name: 'path template {*} not two segments', rule: to('paths: ["/api/{*}/items"]'), request: request({ http: { path: '/api/v1/x/items' } }), expect: 'DENY' },
  { name: 'path template {*} not empty', rule: to('paths: ["/api/{*}/items"]'), request: request({ http: { path: '/api//items' } }), expect: 'DENY' },
  { name: 'path template {**} many segments', rule: to('paths: ["/files/{**}"]'), request: request({ http: { path: '/files/a/b/c.txt' } }), expect: 'ALLOW' },
  { name: 'path template {**} zero characters', rule: to('paths: ["/files/{**}"]'), request: request({ http: { path: '/files/' } }), expect: 'ALLOW' },
  { name: 'path template {*} then {**}', rule: to('paths: ["/u/{*}/bar/{**}"]'), request: request({ http: { path: '/u/buzz/bar/' } }), expect: 'ALLOW' },
  { name: 'path template {**} with a trailing literal', rule: to('paths: ["/foo/{**}/"]'), request: request({ http: { path: '/foo/bar' } }), expect: 'DENY' },
  { name: 'path template is anchored', rule: to('paths: ["/foo/{*}"]'), request: request({ http: { path: '/foo/bar/baz' } }), expect: 'DENY' },

  // when: every documented key
  { name: 'when request.headers exact', rule: when('request.headers[X-User]', '["alice"]'), request: request({ http: { headers: { 'x-user': 'alice' } } }), expect: 'ALLOW' },
  { name: 'when request.headers absent', rule: when('request.headers[x-user]', '["alice"]'), request: request(), expect: 'DENY' },
  { name: 'when request.headers "*" is presence', rule: when('request.headers[x-user]', '["*"]'), request: request({ http: { headers: { 'x-user': '' } } }), expect: 'ALLOW' },
  { name: 'when request.headers prefix', rule: when('request.headers[user-agent]', '["Mozilla/*"]'), request: request({ http: { headers: { 'user-agent': 'Mozilla/5.0' } } }), expect: 'ALLOW' },
  { name: 'when request.headers notValues, header absent', rule: when('request.headers[x-debug]', '["1"]', 'notValues'), request: request(), expect: 'ALLOW' },
  { name: 'when source.ip', rule: when('source.ip', '["10.1.2.0/24"]'), request: request(), expect: 'ALLOW' },
  { name: 'when source.ip notValues', rule: when('source.ip', '["10.1.2.0/24"]', 'notValues'), request: request(), expect: 'DENY' },
  { name: 'when remote.ip', rule: when('remote.ip', '["203.0.113.9"]'), request: request({ remoteIp: '203.0.113.9' }), expect: 'ALLOW' },
  { name: 'when source.namespace', rule: when('source.namespace', '["web"]'), request: request(), expect: 'ALLOW' },
  { name: 'when source.principal', rule: when('source.principal', '["cluster.local/ns/web/sa/frontend"]'), request: request(), expect: 'ALLOW' },
  { name: 'when source.serviceAccount', rule: when('source.serviceAccount', '["web/frontend"]'), request: request(), expect: 'ALLOW' },
  { name: 'when source.trustDomain', rule: when('source.trustDomain', '["cluster.local"]'), request: request(), expect: 'ALLOW' },
  { name: 'when request.auth.principal', rule: when('request.auth.principal', '["https://issuer.example/user-1"]'), request: request({ jwt: jwt() }), expect: 'ALLOW' },
  { name: 'when request.auth.principal, no token', rule: when('request.auth.principal', '["*"]'), request: request(), expect: 'DENY' },
  { name: 'when request.auth.audiences (list)', rule: when('request.auth.audiences', '["shop"]'), request: request({ jwt: jwt({ aud: ['web', 'shop'] }) }), expect: 'ALLOW' },
  { name: 'when request.auth.audiences miss', rule: when('request.auth.audiences', '["shop"]'), request: request({ jwt: jwt({ aud: 'web' }) }), expect: 'DENY' },
  { name: 'when request.auth.presenter', rule: when('request.auth.presenter', '["client-7"]'), request: request({ jwt: jwt({ azp: 'client-7' }) }), expect: 'ALLOW' },
  { name: 'when request.auth.claims string', rule: when('request.auth.claims[group]', '["admins"]'), request: request({ jwt: jwt({ group: 'admins' }) }), expect: 'ALLOW' },
  { name: 'when request.auth.claims list', rule: when('request.auth.claims[groups]', '["admins"]'), request: request({ jwt: jwt({ groups: ['dev', 'admins'] }) }), expect: 'ALLOW' },
  { name: 'when request.auth.claims nested', rule: when('request.auth.claims[realm][role]', '["ops"]'), request: request({ jwt: jwt({ realm: { role: 'ops' } }) }), expect: 'ALLOW' },
  { name: 'when request.auth.claims nested list', rule: when('request.auth.claims[realm][roles]', '["ops"]'), request: request({ jwt: jwt({ realm: { roles: ['dev', 'ops'] } }) }), expect: 'ALLOW' },
  { name: 'when request.auth.claims absent', rule: when('request.auth.claims[group]', '["admins"]'), request: request({ jwt: jwt() }), expect: 'DENY' },
  { name: 'when request.auth.claims numbers never match strings', rule: when('request.auth.claims[level]', '["3"]'), request: request({ jwt: jwt({ level: 3 }) }), expect: 'DENY' },
  { name: 'when request.auth.claims notValues', rule: when('request.auth.claims[group]', '["guests"]', 'notValues'), request: request({ jwt: jwt({ group: 'guests' }) }), expect: 'DENY' },
  { name: 'when destination.ip', rule: when('destination.ip', '["10.0.0.0/24"]'), request: request(), expect: 'ALLOW' },
  { name: 'when destination.port', rule: when('destination.port', '["8080"]'), request: request(), expect: 'ALLOW' },
  { name: 'when destination.port miss', rule: when('destination.port', '["443"]'), request: request(), expect: 'DENY' },
  { name: 'when connection.sni', rule: when('connection.sni', '["*.shop.svc"]'), request: request({ sni: 'api.shop.svc' }), expect: 'ALLOW' },
  { name: 'when connection.sni absent', rule: when('connection.sni', '["*"]'), request: request(), expect: 'DENY' },
];

void describe('authorizer: every rule field', () => {
  for (const row of ROWS) {
    void it(`${row.name} → ${row.expect}`, () => {
      const authorizer = authorizerFor(policy('p', `rules:\n${row.rule}`));
      const decision = authorizer.evaluate(row.request);
      assert.equal(decision.decision, row.expect, decision.reason);
      if (row.expect === 'ALLOW') {
        assert.equal(decision.policy, 'shop/p');
        assert.equal(decision.rule, 0);
      }
    });
  }
});

void describe('authorizer: rule structure', () => {
  void it('fields in a source are ANDed', () => {
    const a = authorizerFor(policy('p', 'rules:\n' + from('namespaces: ["web"]\n      ipBlocks: ["192.168.0.0/16"]')));
    assert.equal(a.evaluate(request()).decision, 'DENY');
  });

  void it('sources in from are ORed', () => {
    const a = authorizerFor(policy('p', 'rules:\n- from:\n  - source: {namespaces: ["dev"]}\n  - source: {namespaces: ["web"]}'));
    assert.equal(a.evaluate(request()).decision, 'ALLOW');
  });

  void it('from, to and when are ANDed', () => {
    const a = authorizerFor(policy('p', 'rules:\n- from:\n  - source: {namespaces: ["web"]}\n  to:\n  - operation: {methods: ["POST"]}'));
    const decision = a.evaluate(request());
    assert.equal(decision.decision, 'DENY');
    assert.equal(decision.nearest?.field, 'methods: "GET" ≠ "POST"');
  });

  void it('conditions in when are ANDed', () => {
    const a = authorizerFor(policy('p', 'rules:\n- when:\n  - key: source.namespace\n    values: ["web"]\n  - key: destination.port\n    values: ["9090"]'));
    assert.equal(a.evaluate(request()).decision, 'DENY');
  });

  void it('values and notValues of one condition are ANDed', () => {
    const a = authorizerFor(policy('p', 'rules:\n- when:\n  - key: request.headers[x-env]\n    values: ["prod*"]\n    notValues: ["prod-eu"]'));
    assert.equal(a.evaluate(request({ http: { headers: { 'x-env': 'prod-us' } } })).decision, 'ALLOW');
    assert.equal(a.evaluate(request({ http: { headers: { 'x-env': 'prod-eu' } } })).decision, 'DENY');
  });

  void it('rules are ORed and the decision names the matching rule', () => {
    const a = authorizerFor(policy('p', 'rules:\n- to: [{operation: {paths: ["/a"]}}]\n- to: [{operation: {paths: ["/b"]}}]'));
    const decision = a.evaluate(request({ http: { path: '/b' } }));
    assert.equal(decision.rule, 1);
    assert.match(decision.reason, /allowed by ALLOW policy shop\/p, rule 1 \(paths: "\/b" = "\/b"\)/);
  });
});
