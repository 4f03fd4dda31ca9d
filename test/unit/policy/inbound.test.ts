import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { checkInbound, compileWorkloadPolicy, workloadPolicy, type InboundRequest } from '../../../src/policy/inbound.js';
import { policyRuntime } from '../../../src/dataplane/policy-runtime.js';
import { API, config, policy } from '../../helpers/policy.js';
import { hmacWithPublicKey, jwksOf, makeKey, nowSeconds, unsecuredToken, type TestKey } from '../../helpers/jwt.js';

/**
 * The inbound pipeline end to end, with the real path normalizer and JWT verifier: what the
 * application receives is what authorization matched, attacks on the path do not slip past
 * a policy, and tokens are judged as Istio does (invalid → 401, none → no principal).
 */

const runtime = policyRuntime();
const MESH = (pathNormalization: string): string =>
  `apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec: {pathNormalization: ${pathNormalization}}\n---\n`;

function http(target: string, extra: Partial<NonNullable<InboundRequest['http']>> = {}, principal: string | null = 'cluster.local/ns/web/sa/frontend'): InboundRequest {
  return {
    ...(principal === null ? {} : { sourcePrincipal: principal }),
    sourceIp: '10.1.2.3',
    destinationIp: '10.0.0.9',
    destinationPort: 8080,
    http: { method: 'GET', target, host: 'api.shop.svc', headers: new Map(), ...extra },
  };
}

async function check(yaml: string, request: InboundRequest) {
  return checkInbound(compileWorkloadPolicy(workloadPolicy(config(yaml), API)), request, runtime);
}

const allowAll = policy('allow-all', 'rules:\n- {}');
const denyAdmin = policy('deny-admin', 'action: DENY\nrules:\n- to: [{operation: {paths: ["/admin", "/admin/*"]}}]');
const allowApiOnly = policy('api-only', 'rules:\n- to: [{operation: {paths: ["/api/*"]}}]');

void describe('normalization attacks against a DENY rule for /admin', () => {
  const cases: readonly { target: string; mode: string; decision: 'ALLOW' | 'DENY'; path: string | undefined; stage: string }[] = [
    { target: '/admin', mode: 'BASE', decision: 'DENY', path: '/admin', stage: 'authorization' },
    { target: '/a/../admin', mode: 'BASE', decision: 'DENY', path: '/admin', stage: 'authorization' },
    { target: '/./admin', mode: 'BASE', decision: 'DENY', path: '/admin', stage: 'authorization' },
    { target: '/%61dmin', mode: 'BASE', decision: 'DENY', path: '/admin', stage: 'authorization' },
    { target: '/%2e%2e/admin', mode: 'BASE', decision: 'DENY', path: '/admin', stage: 'authorization' },
    { target: '/x\\..\\admin', mode: 'BASE', decision: 'DENY', path: '/admin', stage: 'authorization' },
    { target: '/admin?debug=1', mode: 'BASE', decision: 'DENY', path: '/admin', stage: 'authorization' },
    { target: '/admin#x', mode: 'BASE', decision: 'DENY', path: undefined, stage: 'request' },
    { target: '/admin%00', mode: 'BASE', decision: 'DENY', path: undefined, stage: 'request' },
    // BASE keeps "//" (as Istio's default does): the application receives "//admin" and so
    // does authorization; MERGE_SLASHES makes it "/admin" for both.
    { target: '//admin', mode: 'BASE', decision: 'ALLOW', path: '//admin', stage: 'authorization' },
    { target: '//admin', mode: 'MERGE_SLASHES', decision: 'DENY', path: '/admin', stage: 'authorization' },
    { target: '/admin%2fusers', mode: 'MERGE_SLASHES', decision: 'ALLOW', path: '/admin%2Fusers', stage: 'authorization' },
    { target: '/admin%2fusers', mode: 'DECODE_AND_MERGE_SLASHES', decision: 'DENY', path: '/admin/users', stage: 'authorization' },
    { target: '/x/..%2fadmin', mode: 'DECODE_AND_MERGE_SLASHES', decision: 'DENY', path: '/admin', stage: 'authorization' },
  ];
  for (const c of cases) {
    void it(`${c.target} with ${c.mode} → ${c.decision}${c.path === undefined ? ' (refused)' : ` as ${c.path}`}`, async () => {
      const decision = await check(MESH(c.mode) + allowAll + denyAdmin, http(c.target));
      assert.equal(decision.decision, c.decision, decision.reason);
      assert.equal(decision.path, c.path, 'the path authorized is the path forwarded');
      assert.equal(decision.stage, c.stage);
      if (c.stage === 'request') assert.equal(decision.httpStatus, 400);
    });
  }

  void it('an allow-list denies every variant in every normalizing mode', async () => {
    for (const mode of ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']) {
      for (const target of ['//admin', '/a/../admin', '/%61dmin', '/api/../admin', '/api/%2e%2e/admin', '/admin#x']) {
        const decision = await check(MESH(mode) + allowApiOnly, http(target));
        assert.equal(decision.decision, 'DENY', `${mode} ${target}: ${decision.reason}`);
      }
    }
  });

  void it('NONE forwards and authorizes the raw path: /api/../admin matches /api/* (why NONE is unsafe)', async () => {
    const decision = await check(MESH('NONE') + allowApiOnly, http('/api/../admin'));
    assert.deepEqual([decision.decision, decision.path], ['ALLOW', '/api/../admin']);
  });

  void it('/api/../admin is not /api/*', async () => {
    const decision = await check(allowApiOnly, http('/api/../admin'));
    assert.equal(decision.path, '/admin');
    assert.match(decision.reason, /paths: "\/admin" ≠ "\/api\/\*"/);
  });
});

void describe('host attacks against a DENY rule for admin.shop.svc', () => {
  const denyHost = policy('deny-admin-host', 'action: DENY\nrules:\n- to: [{operation: {hosts: ["admin.shop.svc"]}}]');
  for (const host of ['admin.shop.svc', 'ADMIN.Shop.Svc', 'admin.shop.svc:8080', 'Admin.shop.svc:443', 'admin.shop.svc.']) {
    void it(`${host} is denied`, async () => {
      const decision = await check(allowAll + denyHost, http('/', { host }));
      assert.equal(decision.decision, 'DENY', decision.reason);
      assert.equal(decision.policy, 'shop/deny-admin-host');
    });
  }
});

void describe('peer authentication before authorization', () => {
  const strict = 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, namespace: shop}\nspec: {mtls: {mode: STRICT}}\n---\n';
  const disable = 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: off, namespace: shop}\nspec: {mtls: {mode: DISABLE}}\n---\n';

  void it('STRICT refuses plaintext before any policy runs', async () => {
    const decision = await check(strict + allowAll, http('/', {}, null));
    assert.deepEqual([decision.decision, decision.stage, decision.mtlsMode], ['DENY', 'mtls', 'STRICT']);
  });

  void it('PERMISSIVE (the default) lets plaintext reach authorization', async () => {
    const decision = await check(allowAll, http('/', {}, null));
    assert.deepEqual([decision.decision, decision.mtlsMode], ['ALLOW', 'PERMISSIVE']);
  });

  void it('DISABLE means the proxy has no peer identity to match', async () => {
    const yaml = disable + policy('p', 'rules:\n- from: [{source: {principals: ["*"]}}]');
    const decision = await check(yaml, http('/'));
    assert.equal(decision.decision, 'DENY');
    assert.match(decision.reason, /no peer identity/);
  });
});

void describe('request authentication (JWT) end to end', () => {
  const ISS = 'https://issuer.example';
  let key: TestKey;
  let stranger: TestKey;
  let ra: string;
  const requireJwt = policy('require-jwt', 'rules:\n- from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]');

  before(async () => {
    [key, stranger] = await Promise.all([makeKey('ES256', 'k1'), makeKey('ES256', 'k1')]);
    ra = `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: shop}\nspec:\n  jwtRules:\n  - issuer: ${ISS}\n    audiences: [shop]\n    jwks: '${JSON.stringify(jwksOf(key))}'\n---\n`;
  });

  const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => {
    const now = nowSeconds();
    return { iss: ISS, sub: 'alice', aud: 'shop', iat: now, exp: now + 600, ...extra };
  };
  const withToken = (token: string): InboundRequest => http('/orders', { headers: new Map([['authorization', `Bearer ${token}`]]) });

  void it('a valid token gives the request principal authorization matches', async () => {
    const decision = await check(ra + requireJwt, withToken(await key.sign(claims())));
    assert.deepEqual([decision.decision, decision.requestPrincipal], ['ALLOW', `${ISS}/alice`]);
    assert.deepEqual(decision.forward?.strip, [{ kind: 'header', name: 'authorization', prefix: 'Bearer ' }], 'the token is not forwarded');
  });

  void it('no token: no request principal, authorization decides', async () => {
    const decision = await check(ra + requireJwt, http('/orders'));
    assert.deepEqual([decision.decision, decision.stage], ['DENY', 'authorization']);
    assert.match(decision.reason, /requestPrincipals: no verified JWT/);
    assert.equal((await check(ra + allowAll, http('/orders'))).decision, 'ALLOW', 'without a policy requiring one, no token is fine');
  });

  const invalid: readonly [string, (k: TestKey) => Promise<string>, string][] = [
    ['expired', (k) => k.sign(claims({ exp: nowSeconds() - 3600 })), 'expired'],
    ['not yet valid', (k) => k.sign(claims({ nbf: nowSeconds() + 3600 })), 'not_yet_valid'],
    ['wrong issuer', (k) => k.sign(claims({ iss: 'https://evil.example' })), 'bad_issuer'],
    ['wrong audience', (k) => k.sign(claims({ aud: 'other' })), 'bad_audience'],
    ['bad signature', async (k) => `${(await k.sign(claims())).slice(0, -6)}AAAAAA`, 'bad_signature'],
    ['unknown kid', (k) => k.sign(claims(), { kid: 'nope' }), 'unknown_kid'],
    ['alg none', () => Promise.resolve(unsecuredToken(claims())), 'alg_not_allowed'],
    ['HS256 signed with the public key', (k) => Promise.resolve(hmacWithPublicKey(claims(), k.publicPem, k.kid)), 'alg_not_allowed'],
  ];
  for (const [name, make, reason] of invalid) {
    void it(`${name} → 401 even where no policy needs a token`, async () => {
      const decision = await check(ra + allowAll, withToken(await make(key)));
      assert.deepEqual([decision.decision, decision.stage, decision.httpStatus], ['DENY', 'authentication', 401]);
      assert.match(decision.reason, new RegExp(`invalid JWT \\(${reason}\\)`));
    });
  }

  void it('a token signed by another key with the same kid is rejected', async () => {
    const decision = await check(ra + allowAll, withToken(await stranger.sign(claims())));
    assert.equal(decision.httpStatus, 401);
  });

  void it('several RequestAuthentications combine', async () => {
    const other = await makeKey('RS256', 'r1');
    const second = `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: partner, namespace: istio-system}\nspec:\n  jwtRules:\n  - issuer: https://partner.example\n    jwks: '${JSON.stringify(jwksOf(other))}'\n---\n`;
    const yaml = ra + second + policy('p', 'rules:\n- from: [{source: {requestPrincipals: ["*"]}}]');
    const { aud: _aud, ...rest } = claims();
    const partner = await other.sign({ ...rest, iss: 'https://partner.example' });
    assert.equal((await check(yaml, withToken(partner))).requestPrincipal, 'https://partner.example/alice');
    assert.equal((await check(yaml, withToken(await key.sign(claims())))).requestPrincipal, `${ISS}/alice`);
  });

  void it('claims and space-delimited scopes reach when conditions', async () => {
    const yaml = ra + policy('p', 'rules:\n- when:\n  - key: request.auth.claims[scope]\n    values: ["orders:read"]\n  - key: request.auth.claims[org][team]\n    values: ["payments"]');
    const decision = await check(yaml, withToken(await key.sign(claims({ scope: 'profile orders:read', org: { team: 'payments' } }))));
    assert.equal(decision.decision, 'ALLOW', decision.reason);
  });
});
