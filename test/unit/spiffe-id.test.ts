import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpiffeId, SpiffeIdError, type SpiffeIdRule, validateTrustDomain } from '../../src/identity/spiffe-id.js';

describe('SPIFFE ID parsing (SPIFFE-ID standard)', () => {
  const valid: Array<[string, string, string]> = [
    ['spiffe://example.org', 'example.org', ''],
    ['spiffe://example.org/path', 'example.org', '/path'],
    ['spiffe://cluster.local/ns/default/sa/web', 'cluster.local', '/ns/default/sa/web'],
    ['spiffe://td-with_under.score/a/b.c/D-E_F', 'td-with_under.score', '/a/b.c/D-E_F'],
    ['spiffe://1.2.3.4/x', '1.2.3.4', '/x'],
    ['spiffe://td/.../a', 'td', '/.../a'],
    ['SPIFFE://example.org/x', 'example.org', '/x'],
  ];
  for (const [input, trustDomain, path] of valid) {
    it(`accepts ${input}`, () => {
      const id = SpiffeId.parse(input);
      assert.equal(id.trustDomain, trustDomain);
      assert.equal(id.path, path);
      assert.equal(id.toString(), `spiffe://${trustDomain}${path}`);
    });
  }

  const long = `spiffe://example.org/${'a'.repeat(2048 - 'spiffe://example.org/'.length)}`;
  it('accepts exactly 2048 bytes', () => assert.equal(SpiffeId.parse(long).toString().length, 2048));

  const invalid: Array<[string, SpiffeIdRule]> = [
    ['', 'empty'],
    ['http://example.org/x', 'scheme'],
    ['spiffe:/example.org/x', 'scheme'],
    ['example.org/x', 'scheme'],
    ['spiffe://', 'trust-domain-missing'],
    ['spiffe:///path', 'trust-domain-missing'],
    ['spiffe://Example.org/x', 'trust-domain-uppercase'],
    ['spiffe://exa$mple.org', 'trust-domain-char'],
    ['spiffe://exa mple.org', 'trust-domain-char'],
    ['spiffe://[::1]/x', 'trust-domain-char'],
    ['spiffe://user@example.org/x', 'userinfo'],
    ['spiffe://example.org:8443/x', 'port'],
    ['spiffe://example%2eorg/x', 'percent-encoded'],
    [`spiffe://${'a'.repeat(256)}/x`, 'trust-domain-too-long'],
    ['spiffe://example.org/x?y=1', 'query'],
    ['spiffe://example.org?y=1', 'query'],
    ['spiffe://example.org/x#frag', 'fragment'],
    ['spiffe://example.org#frag', 'fragment'],
    ['spiffe://example.org/', 'trailing-slash'],
    ['spiffe://example.org/x/', 'trailing-slash'],
    ['spiffe://example.org//x', 'empty-segment'],
    ['spiffe://example.org/./x', 'dot-segment'],
    ['spiffe://example.org/x/..', 'dot-segment'],
    ['spiffe://example.org/x/../y', 'dot-segment'],
    ['spiffe://example.org/x%20y', 'percent-encoded'],
    ['spiffe://example.org/x y', 'path-char'],
    ['spiffe://example.org/x:y', 'path-char'],
    ['spiffe://example.org/ünï', 'path-char'],
    [`${long}a`, 'too-long'],
  ];
  for (const [input, rule] of invalid) {
    it(`rejects ${JSON.stringify(input.length > 60 ? `${input.slice(0, 57)}...` : input)} (${rule})`, () => {
      assert.throws(
        () => SpiffeId.parse(input),
        (err: unknown) => err instanceof SpiffeIdError && err.rule === rule && err.code === 'TRELLIS_BAD_SPIFFE_ID',
      );
      assert.equal(SpiffeId.isValid(input), false);
    });
  }

  it('says which rule was broken', () => {
    assert.throws(() => SpiffeId.parse('spiffe://example.org/a//b'), /must not contain empty segments/);
    assert.throws(() => SpiffeId.parse('spiffe://example.org:80'), /must not contain a port/);
  });
});

describe('Istio principal form', () => {
  it('converts both ways', () => {
    const id = SpiffeId.fromIstioPrincipal('cluster.local/ns/foo/sa/bar');
    assert.equal(id.toString(), 'spiffe://cluster.local/ns/foo/sa/bar');
    assert.equal(id.toIstioPrincipal(), 'cluster.local/ns/foo/sa/bar');
    assert.deepEqual(id.serviceAccount, { namespace: 'foo', serviceAccount: 'bar' });
  });

  it('builds service account identities', () => {
    assert.equal(SpiffeId.forServiceAccount('td', 'ns1', 'sa1').toString(), 'spiffe://td/ns/ns1/sa/sa1');
    assert.throws(() => SpiffeId.forServiceAccount('td', 'bad ns', 'sa'), SpiffeIdError);
  });

  it('rejects a principal that carries a scheme', () => {
    assert.throws(() => SpiffeId.fromIstioPrincipal('spiffe://cluster.local/ns/a/sa/b'), SpiffeIdError);
  });

  it('has no service account for other path shapes', () => {
    assert.equal(SpiffeId.parse('spiffe://td/payments/web').serviceAccount, undefined);
    assert.equal(SpiffeId.parse('spiffe://td/ns/a/sa/b/extra').serviceAccount, undefined);
  });
});

describe('trust domain names', () => {
  it('validates bare names', () => {
    assert.equal(validateTrustDomain('prod.example.com'), 'prod.example.com');
    assert.throws(() => validateTrustDomain('Prod'), /lowercase/);
    assert.throws(() => validateTrustDomain(''), /missing/);
    assert.throws(() => validateTrustDomain('a/b'), /trust domain contains "\/"/);
  });
});
