import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { TrustBundle } from '../../src/identity/bundle.js';
import { RevocationList } from '../../src/identity/revocation.js';
import { type SvidFailure, verifySvid } from '../../src/identity/verify.js';
import { x509 } from '../../src/identity/x509.js';
import { bundleOf, makeIntermediate, makeLeaf, makeRoot, type TestCa } from '../helpers/pki.js';

const HOUR = 3_600_000;
const WEB = 'spiffe://cluster.local/ns/default/sa/web';

function expectFailure(result: ReturnType<typeof verifySvid>, reason: SvidFailure): void {
  assert.equal(result.ok, false, 'expected the SVID to be rejected');
  if (!result.ok) assert.equal(result.reason, reason, result.message);
}

describe('verifySvid', () => {
  let root: TestCa;
  let bundle: TrustBundle;

  before(async () => {
    root = await makeRoot('Root A');
    bundle = bundleOf('cluster.local', root);
  });

  it('accepts a well-formed SVID and returns its SPIFFE ID', async () => {
    const { cert } = await makeLeaf(root);
    const result = verifySvid([cert], bundle);
    assert.equal(result.ok, true);
    if (result.ok) {
      assert.equal(result.id.toString(), WEB);
      assert.equal(result.path.length, 2);
    }
  });

  it('accepts a chain through an intermediate, in DER and PEM too', async () => {
    const intermediate = await makeIntermediate(root);
    const { cert } = await makeLeaf(intermediate);
    assert.equal(verifySvid([cert, intermediate.cert], bundle).ok, true);
    assert.equal(verifySvid([new Uint8Array(cert.rawData), intermediate.cert.toString('pem')], bundle).ok, true);
  });

  it('accepts a chain that includes the root itself', async () => {
    const intermediate = await makeIntermediate(root);
    const { cert } = await makeLeaf(intermediate);
    assert.equal(verifySvid([cert, intermediate.cert, root.cert], bundle).ok, true);
  });

  it('rejects a CA certificate used as a leaf', async () => {
    const { cert } = await makeLeaf(root, { ca: true });
    expectFailure(verifySvid([cert], bundle), 'ca-as-leaf');
  });

  it('rejects a leaf without digitalSignature', async () => {
    const { cert } = await makeLeaf(root, { keyUsage: x509.KeyUsageFlags.keyEncipherment });
    expectFailure(verifySvid([cert], bundle), 'no-digital-signature');
  });

  it('rejects a leaf whose key usage is not critical', async () => {
    const { cert } = await makeLeaf(root, { keyUsageCritical: false });
    expectFailure(verifySvid([cert], bundle), 'key-usage-not-critical');
  });

  it('rejects a leaf without key usage', async () => {
    const { cert } = await makeLeaf(root, { keyUsage: null });
    expectFailure(verifySvid([cert], bundle), 'key-usage-missing');
  });

  it('rejects a leaf with keyCertSign', async () => {
    const { cert } = await makeLeaf(root, { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign });
    expectFailure(verifySvid([cert], bundle), 'signing-key-usage');
  });

  it('rejects two URI SANs', async () => {
    const { cert } = await makeLeaf(root, { uris: [WEB, 'spiffe://cluster.local/ns/default/sa/admin'] });
    expectFailure(verifySvid([cert], bundle), 'multiple-uri-sans');
  });

  it('rejects a certificate with no URI SAN', async () => {
    const { cert } = await makeLeaf(root, { uris: [] });
    expectFailure(verifySvid([cert], bundle), 'no-uri-san');
  });

  it('rejects a URI SAN that is not a valid SPIFFE ID', async () => {
    const { cert } = await makeLeaf(root, { uris: ['https://cluster.local/ns/default/sa/web'] });
    expectFailure(verifySvid([cert], bundle), 'bad-spiffe-id');
  });

  it('rejects a leaf naming only the trust domain', async () => {
    const { cert } = await makeLeaf(root, { uris: ['spiffe://cluster.local'] });
    expectFailure(verifySvid([cert], bundle), 'no-workload-path');
  });

  it('rejects an identity from another trust domain, even if signed by a trusted root', async () => {
    const { cert } = await makeLeaf(root, { uris: ['spiffe://evil.example/ns/default/sa/web'] });
    expectFailure(verifySvid([cert], bundle), 'wrong-trust-domain');
  });

  it('rejects an expired certificate', async () => {
    const { cert } = await makeLeaf(root, { notBefore: new Date(Date.now() - 2 * HOUR), notAfter: new Date(Date.now() - HOUR) });
    expectFailure(verifySvid([cert], bundle), 'expired');
  });

  it('rejects a certificate that is not yet valid', async () => {
    const { cert } = await makeLeaf(root, { notBefore: new Date(Date.now() + HOUR), notAfter: new Date(Date.now() + 2 * HOUR) });
    expectFailure(verifySvid([cert], bundle), 'not-yet-valid');
  });

  it('honours the verification time', async () => {
    const { cert } = await makeLeaf(root);
    expectFailure(verifySvid([cert], bundle, RevocationList.EMPTY, { now: new Date(Date.now() + 3 * HOUR) }), 'expired');
  });

  it('rejects a certificate signed by an unknown CA', async () => {
    const other = await makeRoot('Root B');
    const { cert } = await makeLeaf(other);
    expectFailure(verifySvid([cert], bundle), 'unknown-issuer');
    // Presenting the unknown root along with the leaf changes nothing.
    expectFailure(verifySvid([cert, other.cert], bundle), 'unknown-issuer');
  });

  it('rejects a forged certificate whose issuer name matches a trusted root', async () => {
    const impostor = await makeRoot('Root A');
    const { cert } = await makeLeaf(impostor);
    expectFailure(verifySvid([cert], bundle), 'unknown-issuer');
  });

  it('rejects a certificate whose signature was tampered with', async () => {
    const { cert } = await makeLeaf(root);
    const der = new Uint8Array(cert.rawData);
    // The signature's last byte sits at the very end of the DER encoding.
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
    expectFailure(verifySvid([der], bundle), 'bad-signature');
  });

  it('tells apart two roots with the same name by their keys', async () => {
    const twin = await makeRoot('Root A');
    const { cert } = await makeLeaf(twin);
    assert.equal(verifySvid([cert], bundleOf('cluster.local', root, twin)).ok, true);
  });

  it('rejects a revoked serial', async () => {
    const { cert } = await makeLeaf(root);
    expectFailure(verifySvid([cert], bundle, new RevocationList(1, [cert.serialNumber])), 'revoked');
  });

  it('rejects a revoked intermediate', async () => {
    const intermediate = await makeIntermediate(root);
    const { cert } = await makeLeaf(intermediate);
    expectFailure(verifySvid([cert, intermediate.cert], bundle, new RevocationList(1, [intermediate.cert.serialNumber])), 'revoked');
  });

  it('rejects a revoked identity', async () => {
    const { cert } = await makeLeaf(root);
    expectFailure(verifySvid([cert], bundle, new RevocationList(1, [], [WEB])), 'identity-revoked');
  });

  it('rejects an issuer that is not a CA', async () => {
    const notCa = await makeIntermediate(root, 'Not a CA', { ca: false });
    const { cert } = await makeLeaf(notCa);
    expectFailure(verifySvid([cert, notCa.cert], bundle), 'issuer-not-ca');
  });

  it('enforces pathLenConstraint', async () => {
    const strictRoot = await makeRoot('Strict Root', { pathLength: 0 });
    const intermediate = await makeIntermediate(strictRoot);
    const { cert } = await makeLeaf(intermediate);
    expectFailure(verifySvid([cert, intermediate.cert], bundleOf('cluster.local', strictRoot)), 'path-length');
  });

  it('rejects unknown critical extensions', async () => {
    const { cert } = await makeLeaf(root, { extraExtensions: [new x509.Extension('1.2.3.4.5', true, new Uint8Array([5, 0]))] });
    expectFailure(verifySvid([cert], bundle), 'unhandled-critical-extension');
  });

  it('leaves a trust anchor’s own critical extensions to the operator', async () => {
    const constrained = await makeRoot('Constrained Root', { extraExtensions: [new x509.Extension('2.5.29.30', true, new Uint8Array([0x30, 0x00]))] });
    const { cert } = await makeLeaf(constrained);
    assert.equal(verifySvid([cert], bundleOf('cluster.local', constrained)).ok, true);
  });

  it('checks the extended key usage for the TLS role', async () => {
    const { cert } = await makeLeaf(root, { eku: [x509.ExtendedKeyUsage.clientAuth] });
    assert.equal(verifySvid([cert], bundle, RevocationList.EMPTY, { purpose: 'client' }).ok, true);
    expectFailure(verifySvid([cert], bundle, RevocationList.EMPTY, { purpose: 'server' }), 'wrong-purpose');
  });

  it('rejects an empty chain and garbage', () => {
    expectFailure(verifySvid([], bundle), 'empty-chain');
    expectFailure(verifySvid([new Uint8Array([1, 2, 3])], bundle), 'malformed');
  });
});

describe('TrustBundle', () => {
  it('round-trips the SPIFFE bundle format', async () => {
    const a = await makeRoot('A');
    const b = await makeRoot('B');
    const bundle = new TrustBundle('cluster.local', [a.cert, b.cert], 7, 120);
    const json = bundle.toSpiffeJson();
    assert.equal(json.spiffe_sequence, 7);
    assert.equal(json.spiffe_refresh_hint, 120);
    assert.equal(json.keys.length, 2);
    for (const key of json.keys) {
      assert.equal(key['use'], 'x509-svid');
      assert.equal(key['kty'], 'EC');
      assert.equal(key['crv'], 'P-256');
      assert.equal(key['kid'], undefined, 'kid must not be set for x509-svid entries');
      assert.equal((key['x5c'] as string[]).length, 1);
    }
    const back = TrustBundle.fromSpiffeJson('cluster.local', JSON.stringify(json));
    assert.equal(back.sequence, 7);
    assert.deepEqual(back.roots.map((r) => r.serialNumber), [a.cert.serialNumber, b.cert.serialNumber]);
    assert.equal(TrustBundle.fromPem('cluster.local', bundle.toPem()).roots.length, 2);
  });

  it('ignores entries with another use or without x5c', async () => {
    const a = await makeRoot('A');
    const json = new TrustBundle('cluster.local', [a.cert], 1).toSpiffeJson();
    json.keys.push({ kty: 'EC', use: 'jwt-svid', kid: 'x' }, { kty: 'EC', use: 'x509-svid' });
    assert.equal(TrustBundle.fromSpiffeJson('cluster.local', json).roots.length, 1);
  });

  it('refuses a non-CA certificate as a root', async () => {
    const a = await makeRoot('A');
    const { cert } = await makeLeaf(a);
    assert.throws(() => new TrustBundle('cluster.local', [cert], 1), /not a CA certificate/);
  });
});
