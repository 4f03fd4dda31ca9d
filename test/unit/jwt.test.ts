import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { exportJWK, type JSONWebKeySet } from 'jose';
import {
  applyJwtResult,
  verifyJwtToken,
  verifyRequestJwt,
  type JwksProvider,
  type JwtResult,
  type JwtRule,
  type JwtValid,
} from '../../src/policy/jwt.js';
import { b64url, hmacWithPublicKey, jwksOf, makeKey, nowSeconds, unsecuredToken, type TestKey } from '../helpers/jwt.js';

const ISS = 'https://issuer.example';

let rsa: TestKey;
let ec: TestKey;
let ed: TestKey;
let ps: TestKey;
let other: TestKey;
let rule: JwtRule;

before(async () => {
  [rsa, ec, ed, ps, other] = await Promise.all([
    makeKey('RS256', 'rsa-1'),
    makeKey('ES256', 'ec-1'),
    makeKey('EdDSA', 'ed-1'),
    makeKey('PS256', 'ps-1'),
    makeKey('RS256', 'rsa-1'), // same kid as `rsa`, different key: a forger's key
  ]);
  rule = { issuer: ISS, audiences: ['shop'], jwks: JSON.stringify(jwksOf(rsa, ec, ed, ps)) };
});

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds();
  return { iss: ISS, sub: 'alice', aud: 'shop', iat: now, exp: now + 600, ...extra };
}

function bearer(token: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${token}` } };
}

function assertValid(result: JwtResult): asserts result is JwtValid {
  assert.equal(result.status, 'valid', result.status === 'invalid' ? `${result.reason}: ${result.message}` : result.status);
}

function assertInvalid(result: JwtResult, reason: string): void {
  assert.equal(result.status, 'invalid', `expected ${reason}, got ${result.status}`);
  if (result.status === 'invalid') {
    assert.equal(result.reason, reason, result.message);
    assert.ok(result.message.length > 0);
  }
}

describe('JWT: valid tokens', () => {
  for (const name of ['RS256', 'ES256', 'EdDSA', 'PS256'] as const) {
    it(`accepts a ${name} token and reports principal, audiences, claims`, async () => {
      const key = { RS256: rsa, ES256: ec, EdDSA: ed, PS256: ps }[name];
      const token = await key.sign(claims({ aud: ['other', 'shop'], azp: 'web-client' }));
      const result = await verifyRequestJwt([rule], bearer(token));
      assertValid(result);
      assert.equal(result.ruleIndex, 0);
      assert.equal(result.issuer, ISS);
      assert.equal(result.subject, 'alice');
      assert.equal(result.principal, `${ISS}/alice`);
      assert.deepEqual(result.audiences, ['other', 'shop']);
      assert.equal(result.presenter, 'web-client');
      assert.equal(result.claims['sub'], 'alice');
      assert.deepEqual(result.locations, [{ kind: 'header', name: 'authorization', prefix: 'Bearer ' }]);
      // forwardOriginalToken defaults to false: the token is stripped.
      assert.deepEqual(result.strip, result.locations);
      assert.deepEqual(result.setHeaders, []);
    });
  }

  it('accepts the Bearer scheme case-insensitively and ignores other schemes', async () => {
    const token = await rsa.sign(claims());
    assertValid(await verifyRequestJwt([rule], { headers: { Authorization: `bearer ${token}` } }));
    assert.deepEqual(await verifyRequestJwt([rule], { headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' } }), { status: 'none', removeHeaders: [] });
  });

  it('checks no audience when the rule lists none (Istio)', async () => {
    const token = await rsa.sign(claims({ aud: 'anything' }));
    assertValid(await verifyRequestJwt([{ ...rule, audiences: [] }], bearer(token)));
    assertValid(await verifyRequestJwt([{ issuer: ISS, jwks: rule.jwks }], bearer(await rsa.sign(claims({ aud: undefined })))));
  });

  it('gives the principal iss/ with an empty subject when the token has no sub', async () => {
    const result = await verifyRequestJwt([rule], bearer(await rsa.sign(claims({ sub: undefined }))));
    assertValid(result);
    assert.equal(result.subject, '');
    assert.equal(result.principal, `${ISS}/`);
  });

  it('tries every key when the token has no kid and several keys fit', async () => {
    const second = await makeKey('RS256', 'rsa-2');
    const noKid = { ...rsa.publicJwk };
    delete noKid.kid;
    const noKid2 = { ...second.publicJwk };
    delete noKid2.kid;
    const jwks = JSON.stringify({ keys: [noKid2, noKid] });
    const token = await rsa.sign(claims(), { kid: undefined });
    assertValid(await verifyRequestJwt([{ ...rule, jwks }], bearer(token)));
    assertInvalid(await verifyRequestJwt([{ ...rule, jwks }], bearer(await other.sign(claims(), { kid: undefined }))), 'bad_signature');
  });

  it('verifies a bare token against every rule (authz check --jwt)', async () => {
    const result = await verifyJwtToken([{ issuer: 'x', jwks: rule.jwks }, rule], await ec.sign(claims()));
    assertValid(result);
    assert.equal(result.ruleIndex, 1);
    assert.deepEqual(result.locations, []);
    assert.equal((await verifyJwtToken([rule], '  ')).status, 'none');
  });
});

describe('JWT: time checks', () => {
  it('rejects an expired token (expired)', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(await rsa.sign(claims({ exp: nowSeconds() - 3600 })))), 'expired');
  });
  it('allows the clock skew (default 60 s) and no more', async () => {
    const token = await rsa.sign(claims({ exp: nowSeconds() - 30 }));
    assertValid(await verifyRequestJwt([rule], bearer(token)));
    assertInvalid(await verifyRequestJwt([rule], bearer(token), { clockSkewSeconds: 0 }), 'expired');
  });
  it('rejects a token that is not valid yet (not_yet_valid)', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(await rsa.sign(claims({ nbf: nowSeconds() + 3600 })))), 'not_yet_valid');
  });
  it('uses the injected clock', async () => {
    const token = await rsa.sign(claims({ exp: nowSeconds() + 600 }));
    assertInvalid(await verifyRequestJwt([rule], bearer(token), { now: () => new Date(Date.now() + 3_600_000) }), 'expired');
  });
  it('treats a non-numeric exp as malformed', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(await rsa.sign(claims({ exp: 'tomorrow' })))), 'malformed');
  });
});

describe('JWT: issuer and audience', () => {
  it('rejects a token from an issuer no rule names (bad_issuer)', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(await rsa.sign(claims({ iss: 'https://evil.example' })))), 'bad_issuer');
  });
  it('rejects a token without iss (bad_issuer)', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(await rsa.sign(claims({ iss: undefined })))), 'bad_issuer');
  });
  it('rejects a token whose audiences are not accepted (bad_audience)', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(await rsa.sign(claims({ aud: ['billing', 'admin'] })))), 'bad_audience');
    assertInvalid(await verifyRequestJwt([rule], bearer(await rsa.sign(claims({ aud: undefined })))), 'bad_audience');
  });
  it('picks the rule whose issuer matches the token', async () => {
    const rules: JwtRule[] = [
      { issuer: 'https://a.example', jwks: JSON.stringify(jwksOf(ec)) },
      { issuer: 'https://b.example', jwks: JSON.stringify(jwksOf(rsa)) },
    ];
    const a = await verifyRequestJwt(rules, bearer(await ec.sign(claims({ iss: 'https://a.example' }))));
    assertValid(a);
    assert.equal(a.ruleIndex, 0);
    const b = await verifyRequestJwt(rules, bearer(await rsa.sign(claims({ iss: 'https://b.example' }))));
    assertValid(b);
    assert.equal(b.ruleIndex, 1);
    // Signed by a's key but claiming to be b: checked against b's keys.
    assertInvalid(await verifyRequestJwt(rules, bearer(await ec.sign(claims({ iss: 'https://b.example' })))), 'unknown_kid');
  });
  it('accepts when any of several rules for the same issuer accepts (combined policies)', async () => {
    const rules: JwtRule[] = [{ ...rule, audiences: ['billing'] }, rule];
    const result = await verifyRequestJwt(rules, bearer(await rsa.sign(claims())));
    assertValid(result);
    assert.equal(result.ruleIndex, 1);
  });
  it('checks a token only against rules that read the location it was found at', async () => {
    const rules: JwtRule[] = [
      { issuer: 'https://a.example', jwks: JSON.stringify(jwksOf(ec)) },
      { issuer: 'https://b.example', jwks: JSON.stringify(jwksOf(rsa)), fromHeaders: [{ name: 'x-b-token' }] },
    ];
    // b's token in the Authorization header, where only a's rule looks.
    assertInvalid(await verifyRequestJwt(rules, bearer(await rsa.sign(claims({ iss: 'https://b.example' })))), 'bad_issuer');
    assertValid(await verifyRequestJwt(rules, { headers: { 'x-b-token': await rsa.sign(claims({ iss: 'https://b.example' })) } }));
  });
});

describe('JWT: signatures, keys and algorithms', () => {
  it('rejects a token signed by another key under a known kid (bad_signature)', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(await other.sign(claims()))), 'bad_signature');
  });
  it('rejects a tampered payload (bad_signature)', async () => {
    const [h, , s] = (await rsa.sign(claims())).split('.');
    const forged = `${h}.${b64url(JSON.stringify(claims({ sub: 'admin' })))}.${s}`;
    assertInvalid(await verifyRequestJwt([rule], bearer(forged)), 'bad_signature');
  });
  it('rejects an unknown kid with an inline key set (unknown_kid)', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(await rsa.sign(claims(), { kid: 'rotated-away' }))), 'unknown_kid');
  });
  it('rejects alg: none (alg_not_allowed)', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(unsecuredToken(claims()))), 'alg_not_allowed');
    assertInvalid(await verifyRequestJwt([rule], bearer(unsecuredToken(claims(), { alg: 'None', kid: 'rsa-1' }))), 'alg_not_allowed');
  });
  it('rejects HS256 signed with the public key as secret (alg_not_allowed)', async () => {
    assertInvalid(await verifyRequestJwt([rule], bearer(hmacWithPublicKey(claims(), rsa.publicPem, 'rsa-1'))), 'alg_not_allowed');
    assertInvalid(await verifyRequestJwt([rule], bearer(hmacWithPublicKey(claims(), JSON.stringify(rsa.publicJwk)))), 'alg_not_allowed');
  });
  it('rejects HS256 even when the key set publishes a symmetric key', async () => {
    const secret = 'shared-secret-that-is-long-enough-for-hs256';
    const jwks = JSON.stringify({ keys: [{ kty: 'oct', k: b64url(secret), kid: 'h' }] });
    const token = hmacWithPublicKey(claims(), secret, 'h');
    assertInvalid(await verifyRequestJwt([{ ...rule, jwks }], bearer(token)), 'alg_not_allowed');
  });
  it('rejects a token relabeled to an algorithm its key is not for (unknown_kid)', async () => {
    // The RSA key's JWK says RS256; the same signature relabeled PS256 finds no usable key.
    const [, payload, signature] = (await rsa.sign(claims())).split('.');
    const relabeled = `${b64url(JSON.stringify({ alg: 'PS256', kid: 'rsa-1' }))}.${payload}.${signature}`;
    assertInvalid(await verifyRequestJwt([rule], bearer(relabeled)), 'unknown_kid');
  });
  it('rejects a token signed with an RSA key shorter than 2048 bits', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'weak', alg: 'RS256' };
    // jose refuses to sign with a weak key, so the token is signed with node:crypto directly.
    const input = `${b64url(JSON.stringify({ alg: 'RS256', kid: 'weak' }))}.${b64url(JSON.stringify(claims()))}`;
    const token = `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
    const result = await verifyRequestJwt([{ ...rule, jwks: JSON.stringify({ keys: [jwk] }) }], bearer(token));
    assertInvalid(result, 'bad_signature');
  });
  it('reports an inline jwks that is not a key set (jwks_unavailable)', async () => {
    assertInvalid(await verifyRequestJwt([{ ...rule, jwks: '{not json' }], bearer(await rsa.sign(claims()))), 'jwks_unavailable');
    assertInvalid(await verifyRequestJwt([{ ...rule, jwks: '{"keys": 3}' }], bearer(await rsa.sign(claims()))), 'jwks_unavailable');
  });
  it('reports a jwksUri rule without a provider (jwks_unavailable)', async () => {
    assertInvalid(await verifyRequestJwt([{ issuer: ISS, jwksUri: 'https://issuer.example/jwks' }], bearer(await rsa.sign(claims()))), 'jwks_unavailable');
  });
});

describe('JWT: malformed tokens', () => {
  const cases: [string, string][] = [
    ['one part', 'abc'],
    ['two parts', 'abc.def'],
    ['JWE (five parts)', 'a.b.c.d.e'],
    ['header is not JSON', `${b64url('{oops')}.${b64url('{}')}.sig`],
    ['payload is not an object', `${b64url('{"alg":"RS256"}')}.${b64url('[1,2]')}.sig`],
    ['non-base64url characters', 'a+b.c/d.e='],
  ];
  for (const [name, token] of cases) {
    it(`${name} → malformed`, async () => {
      assertInvalid(await verifyRequestJwt([rule], bearer(token)), 'malformed');
    });
  }
  it('an empty Bearer credential → malformed', async () => {
    assertInvalid(await verifyRequestJwt([rule], { headers: { authorization: 'Bearer ' } }), 'malformed');
  });
  it('a token longer than the bound → malformed', async () => {
    const token = await rsa.sign(claims({ pad: 'x'.repeat(20_000) }));
    assertInvalid(await verifyRequestJwt([rule], bearer(token)), 'malformed');
    assertValid(await verifyRequestJwt([rule], bearer(token), { maxTokenLength: 64 * 1024 }));
  });
});

describe('JWT: token locations', () => {
  it('finds no token → none, and lists the output headers to remove', async () => {
    const rules: JwtRule[] = [{ ...rule, outputPayloadToHeader: 'X-Jwt-Payload', outputClaimToHeaders: [{ header: 'x-user', claim: 'sub' }] }];
    assert.deepEqual(await verifyRequestJwt(rules, { headers: {} }), { status: 'none', removeHeaders: ['x-jwt-payload', 'x-user'] });
  });
  it('reads the default access_token query parameter', async () => {
    const token = await rsa.sign(claims());
    const result = await verifyRequestJwt([rule], { headers: {}, query: `?a=1&access_token=${token}` });
    assertValid(result);
    assert.deepEqual(result.locations, [{ kind: 'param', name: 'access_token' }]);
    const parsed = await verifyRequestJwt([rule], { headers: {}, query: new URLSearchParams({ access_token: token }) });
    assertValid(parsed);
  });
  it('reads a custom header with its prefix, and only there', async () => {
    const custom: JwtRule = { ...rule, fromHeaders: [{ name: 'X-Auth', prefix: 'Token ' }] };
    const token = await rsa.sign(claims());
    const result = await verifyRequestJwt([custom], { headers: { 'x-auth': `Token ${token}` } });
    assertValid(result);
    assert.deepEqual(result.locations, [{ kind: 'header', name: 'x-auth', prefix: 'Token ' }]);
    // The default locations are off once a location is configured.
    assert.equal((await verifyRequestJwt([custom], bearer(token))).status, 'none');
    assert.equal((await verifyRequestJwt([custom], { headers: {}, query: `access_token=${token}` })).status, 'none');
    // Istio: a header without the exact prefix is invalid.
    assertInvalid(await verifyRequestJwt([custom], { headers: { 'x-auth': `Bearer ${token}` } }), 'malformed');
  });
  it('reads a custom header without prefix, with case-insensitive names', async () => {
    const custom: JwtRule = { ...rule, fromHeaders: [{ name: 'x-goog-iap-jwt-assertion' }] };
    assertValid(await verifyRequestJwt([custom], { headers: { 'X-Goog-IAP-JWT-Assertion': await rsa.sign(claims()) } }));
  });
  it('reads custom query parameters', async () => {
    const custom: JwtRule = { ...rule, fromParams: ['my_token'] };
    const result = await verifyRequestJwt([custom], { headers: {}, query: `my_token=${await rsa.sign(claims())}` });
    assertValid(result);
    assert.deepEqual(result.strip, [{ kind: 'param', name: 'my_token' }]);
  });
  it('reads cookies from the Cookie header or a parsed map', async () => {
    const custom: JwtRule = { ...rule, fromCookies: ['auth-token'] };
    const token = await rsa.sign(claims());
    const result = await verifyRequestJwt([custom], { headers: { cookie: `theme=dark; auth-token=${token}; x=1` } });
    assertValid(result);
    assert.deepEqual(result.locations, [{ kind: 'cookie', name: 'auth-token' }]);
    assertValid(await verifyRequestJwt([custom], { headers: {}, cookies: { 'auth-token': token } }));
  });
  it('counts the same token at two locations once', async () => {
    const token = await rsa.sign(claims());
    const result = await verifyRequestJwt([rule], { headers: { authorization: `Bearer ${token}` }, query: `access_token=${token}` });
    assertValid(result);
    assert.equal(result.locations.length, 2);
  });
  it('rejects two different tokens (multiple_tokens)', async () => {
    const a = await rsa.sign(claims({ sub: 'alice' }));
    const b = await rsa.sign(claims({ sub: 'bob' }));
    assertInvalid(await verifyRequestJwt([rule], { headers: { authorization: `Bearer ${a}` }, query: `access_token=${b}` }), 'multiple_tokens');
    assertInvalid(await verifyRequestJwt([rule], { headers: { authorization: [`Bearer ${a}`, `Bearer ${b}`] } }), 'multiple_tokens');
  });
});

describe('JWT: outputs', () => {
  it('outputPayloadToHeader carries the base64url payload exactly as signed', async () => {
    const payload = claims({ groups: ['a', 'b'] });
    const token = await rsa.sign(payload);
    const result = await verifyRequestJwt([{ ...rule, outputPayloadToHeader: 'X-Jwt-Payload' }], bearer(token));
    assertValid(result);
    const header = result.setHeaders.find((h) => h.name === 'x-jwt-payload');
    assert.equal(header?.value, token.split('.')[1]);
    assert.deepEqual(JSON.parse(Buffer.from(header?.value ?? '', 'base64url').toString('utf8')), payload);
  });
  it('outputClaimToHeaders copies string, integer, boolean and nested claims only', async () => {
    const token = await rsa.sign(claims({ group: 'admins', level: 3, flag: true, ratio: 0.5, nested: { key: { group: 'ops' } }, obj: { a: 1 }, list: ['x'], evil: 'a\r\nx-admin: 1' }));
    const outputs = ['group', 'level', 'flag', 'ratio', 'nested.key.group', 'obj', 'list', 'evil', 'missing'].map((claim) => ({ header: `x-c-${claim.replaceAll('.', '-')}`, claim }));
    const result = await verifyRequestJwt([{ ...rule, outputClaimToHeaders: outputs }], bearer(token));
    assertValid(result);
    assert.deepEqual(result.setHeaders, [
      { name: 'x-c-group', value: 'admins' },
      { name: 'x-c-level', value: '3' },
      { name: 'x-c-flag', value: 'true' },
      { name: 'x-c-nested-key-group', value: 'ops' },
    ]);
    assert.deepEqual(result.removeHeaders, outputs.map((o) => o.header));
  });
  it('forwardOriginalToken: true keeps the token', async () => {
    const result = await verifyRequestJwt([{ ...rule, forwardOriginalToken: true }], bearer(await rsa.sign(claims())));
    assertValid(result);
    assert.deepEqual(result.strip, []);
  });
  it('splits scope, permission and spaceDelimitedClaims into lists for authorization', async () => {
    const payload = claims({ scope: 'read  write\tadmin', permission: 'p1 p2', roles: 'r1 r2', provider: { login: { scope: 's1 s2' } }, other: 'a b' });
    const result = await verifyRequestJwt([{ ...rule, spaceDelimitedClaims: ['roles', 'provider.login.scope'] }], bearer(await rsa.sign(payload)));
    assertValid(result);
    assert.deepEqual(result.claims['scope'], ['read', 'write', 'admin']);
    assert.deepEqual(result.claims['permission'], ['p1', 'p2']);
    assert.deepEqual(result.claims['roles'], ['r1', 'r2']);
    assert.deepEqual(result.claims['provider'], { login: { scope: ['s1', 's2'] } });
    assert.equal(result.claims['other'], 'a b');
    // The signed payload is untouched.
    assert.equal(result.payload['scope'], 'read  write\tadmin');
  });
});

describe('JWT: applying the result to the forwarded request', () => {
  it('strips the token header, removes forged output headers, sets outputs', async () => {
    const token = await rsa.sign(claims());
    const rules: JwtRule[] = [{ ...rule, outputClaimToHeaders: [{ header: 'X-User', claim: 'sub' }] }];
    const result = await verifyRequestJwt(rules, bearer(token));
    assertValid(result);
    const applied = applyJwtResult({ headers: [['Host', 'shop'], ['Authorization', `Bearer ${token}`], ['X-User', 'mallory']], query: 'q=1' }, result);
    assert.deepEqual(applied, { headers: [['Host', 'shop'], ['x-user', 'alice']], query: 'q=1' });
  });
  it('removes forged output headers when there is no token', async () => {
    const rules: JwtRule[] = [{ ...rule, outputPayloadToHeader: 'x-jwt-payload' }];
    const result = await verifyRequestJwt(rules, { headers: {} });
    assert.equal(result.status, 'none');
    if (result.status !== 'none') return;
    assert.deepEqual(applyJwtResult({ headers: [['X-Jwt-Payload', 'forged'], ['a', 'b']], query: null }, result), { headers: [['a', 'b']], query: null });
  });
  it('strips a query parameter and a cookie', async () => {
    const token = await rsa.sign(claims());
    const rules: JwtRule[] = [{ ...rule, fromParams: ['t'], fromCookies: ['c'] }];
    const byParam = await verifyRequestJwt(rules, { headers: {}, query: `a=1&t=${token}&b=2` });
    assertValid(byParam);
    assert.deepEqual(applyJwtResult({ headers: [], query: `a=1&t=${token}&b=2` }, byParam).query, 'a=1&b=2');
    const byCookie = await verifyRequestJwt(rules, { headers: { cookie: `x=1; c=${token}` } });
    assertValid(byCookie);
    assert.deepEqual(applyJwtResult({ headers: [['Cookie', `x=1; c=${token}`]], query: null }, byCookie).headers, [['Cookie', 'x=1']]);
    const onlyCookie = await verifyRequestJwt(rules, { headers: { cookie: `c=${token}` } });
    assertValid(onlyCookie);
    assert.deepEqual(applyJwtResult({ headers: [['cookie', `c=${token}`]], query: null }, onlyCookie).headers, []);
  });
});

describe('JWT: key sets through a provider', () => {
  class MemoryProvider implements JwksProvider {
    calls: boolean[] = [];
    constructor(private readonly sets: JSONWebKeySet[], private readonly fail = false) {}
    getKeySet(_rule: JwtRule, { forceRefresh }: { forceRefresh: boolean }): Promise<JSONWebKeySet> {
      this.calls.push(forceRefresh);
      if (this.fail) return Promise.reject(new Error('connection refused'));
      const set = this.sets[Math.min(this.calls.length - 1, this.sets.length - 1)];
      return set ? Promise.resolve(set) : Promise.reject(new Error('no set'));
    }
  }
  const uriRule = (): JwtRule => ({ issuer: ISS, audiences: ['shop'], jwksUri: 'https://issuer.example/jwks.json' });

  it('refreshes once on an unknown kid and accepts the rotated key', async () => {
    const rotated = await makeKey('ES256', 'ec-2');
    const provider = new MemoryProvider([jwksOf(rsa), jwksOf(rsa, rotated)]);
    assertValid(await verifyRequestJwt([uriRule()], bearer(await rotated.sign(claims())), { provider }));
    assert.deepEqual(provider.calls, [false, true]);
  });
  it('reports unknown_kid after one refresh', async () => {
    const provider = new MemoryProvider([jwksOf(rsa)]);
    assertInvalid(await verifyRequestJwt([uriRule()], bearer(await rsa.sign(claims(), { kid: 'nope' })), { provider }), 'unknown_kid');
    assert.deepEqual(provider.calls, [false, true]);
  });
  it('fails closed when the provider fails (jwks_unavailable)', async () => {
    const provider = new MemoryProvider([], true);
    assertInvalid(await verifyRequestJwt([uriRule()], bearer(await rsa.sign(claims())), { provider }), 'jwks_unavailable');
  });
  it('does not call the provider when there is no token, or for an inline jwks', async () => {
    const provider = new MemoryProvider([], true);
    assert.equal((await verifyRequestJwt([uriRule()], { headers: {} }, { provider })).status, 'none');
    assertValid(await verifyRequestJwt([rule], bearer(await rsa.sign(claims())), { provider }));
    assert.deepEqual(provider.calls, []);
  });
});
