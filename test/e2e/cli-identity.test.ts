import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run, runTrellis } from '../helpers/cli.js';

describe('trellis identity commands, as a user runs them', () => {
  let dir: string;
  let caDir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-cli-'));
    caDir = join(dir, 'ca');
    const init = await runTrellis(['ca', 'init', '--dir', caDir, '--trust-domain', 'example.org']);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /Trust domain:\s+example.org/);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function issue(identity: string, out: string): Promise<void> {
    const token = await runTrellis(['token', 'create', '--ca-dir', caDir, '--identity', identity, '--ttl', '5m']);
    assert.equal(token.code, 0, token.stderr);
    const issued = await runTrellis(['cert', 'issue', '--ca-dir', caDir, '--token', token.stdout.trim(), '--out', out]);
    assert.equal(issued.code, 0, issued.stderr);
  }

  it('issues an identity that openssl verifies, with the URI SAN and critical key usage', async () => {
    const out = join(dir, 'web');
    await issue('spiffe://example.org/ns/shop/sa/web', out);
    assert.equal(statSync(join(out, 'key.pem')).mode & 0o777, 0o600);

    const verify = await run('openssl', ['verify', '-CAfile', join(out, 'bundle.pem'), '-untrusted', join(out, 'cert.pem'), join(out, 'cert.pem')]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /cert\.pem: OK/);

    const text = await run('openssl', ['x509', '-in', join(out, 'cert.pem'), '-noout', '-text']);
    assert.match(text.stdout, /URI:spiffe:\/\/example\.org\/ns\/shop\/sa\/web/);
    assert.match(text.stdout, /X509v3 Key Usage: critical\s+Digital Signature/);
    assert.match(text.stdout, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text.stdout, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text.stdout, /ASN1 OID: prime256v1/);

    const caText = await run('openssl', ['x509', '-in', join(caDir, 'ca-cert.pem'), '-noout', '-text']);
    assert.match(caText.stdout, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
    assert.match(caText.stdout, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  });

  it('inspects a certificate and verifies it against the bundle', async () => {
    const out = join(dir, 'inspect');
    await issue('spiffe://example.org/ns/shop/sa/cart', out);
    const inspect = await runTrellis(['cert', 'inspect', join(out, 'cert.pem'), '--bundle', join(out, 'bundle.json'), '-o', 'json']);
    assert.equal(inspect.code, 0, inspect.stderr);
    const report = JSON.parse(inspect.stdout) as { spiffeId: string; spiffeProblems: string[]; verification: { valid: boolean }; keyUsage: string[] };
    assert.equal(report.spiffeId, 'spiffe://example.org/ns/shop/sa/cart');
    assert.deepEqual(report.spiffeProblems, []);
    assert.deepEqual(report.keyUsage, ['digitalSignature']);
    assert.equal(report.verification.valid, true);

    const caReport = await runTrellis(['cert', 'inspect', join(caDir, 'ca-cert.pem')]);
    assert.equal(caReport.code, 0);
    assert.match(caReport.stdout, /signing \(CA\)/);
  });

  it('refuses a reused token with a clear message and exit code 1', async () => {
    const token = await runTrellis(['token', 'create', '--ca-dir', caDir, '--identity', 'spiffe://example.org/ns/shop/sa/once']);
    const args = ['cert', 'issue', '--ca-dir', caDir, '--token', token.stdout.trim(), '--out', join(dir, 'once')];
    assert.equal((await runTrellis(args)).code, 0);
    const again = await runTrellis(args);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already used.*single-use/);
    const audit = readFileSync(join(caDir, 'audit.log'), 'utf8');
    assert.match(audit, /"type":"svid.refused".*"reason":"token-used"/);
    assert.ok(!audit.includes(token.stdout.trim()));
  });

  it('rejects invalid input with exit code 2', async () => {
    const bad = await runTrellis(['token', 'create', '--ca-dir', caDir, '--identity', 'spiffe://example.org/a//b']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /must not contain empty segments/);
    const missing = await runTrellis(['ca', 'revoke', '--dir', caDir]);
    assert.equal(missing.code, 2);
    const duration = await runTrellis(['token', 'create', '--ca-dir', caDir, '--identity', 'spiffe://example.org/ns/a/sa/b', '--ttl', '10x']);
    assert.equal(duration.code, 2);
    assert.match(duration.stderr, /invalid duration "10x"/);
    const noPath = await runTrellis(['token', 'create', '--ca-dir', caDir, '--identity', 'spiffe://example.org']);
    assert.equal(noPath.code, 2);
    const domain = await runTrellis(['ca', 'init', '--dir', join(dir, 'bad-domain'), '--trust-domain', 'Bad']);
    assert.equal(domain.code, 2);
    assert.match(domain.stderr, /invalid trust domain "Bad": the trust domain must be lowercase/);
  });

  it('leaves no directories behind when a command fails', async () => {
    const typo = join(dir, 'typo');
    const token = await runTrellis(['token', 'create', '--ca-dir', typo, '--identity', 'spiffe://example.org/ns/a/sa/b']);
    assert.equal(token.code, 1);
    assert.match(token.stderr, /no mesh CA in/);
    assert.equal(existsSync(typo), false);
    const badInit = await runTrellis(['ca', 'init', '--dir', join(dir, 'bad-init'), '--svid-ttl', '48h']);
    assert.notEqual(badInit.code, 0);
    assert.equal(existsSync(join(dir, 'bad-init')), false);
  });

  it('fails the bundle check of a revoked certificate when given the revocations', async () => {
    const out = join(dir, 'revoked-inspect');
    await issue('spiffe://example.org/ns/shop/sa/gone', out);
    const serial = (JSON.parse((await runTrellis(['cert', 'inspect', join(out, 'cert.pem'), '-o', 'json'])).stdout) as { serial: string }).serial;
    assert.equal((await runTrellis(['ca', 'revoke', '--dir', caDir, '--serial', serial])).code, 0);
    const args = ['cert', 'inspect', join(out, 'cert.pem'), '--bundle', join(out, 'bundle.json')];
    assert.equal((await runTrellis(args)).code, 0, 'without the revocations the chain itself is fine');
    const checked = await runTrellis([...args, '--revocations', join(caDir, 'revocations.json')]);
    assert.equal(checked.code, 1);
    assert.match(checked.stdout, /revoked/);
  });

  it('revokes an identity and shows it', async () => {
    const out = join(dir, 'bad');
    await issue('spiffe://example.org/ns/shop/sa/bad', out);
    const revoke = await runTrellis(['ca', 'revoke', '--dir', caDir, '--identity', 'spiffe://example.org/ns/shop/sa/bad']);
    assert.equal(revoke.code, 0, revoke.stderr);
    const show = await runTrellis(['ca', 'show', '--dir', caDir, '-o', 'json']);
    const status = JSON.parse(show.stdout) as { revocations: { serials: number; identities: string[] } };
    assert.deepEqual(status.revocations.identities, ['spiffe://example.org/ns/shop/sa/bad']);
    assert.ok(status.revocations.serials >= 1);
  });

  it('rotates the root and keeps old and new roots in the bundle', async () => {
    const rotate = await runTrellis(['ca', 'rotate', '--dir', caDir, '--grace', '0s', '-o', 'json']);
    assert.equal(rotate.code, 0, rotate.stderr);
    const status = JSON.parse(rotate.stdout) as { roots: Array<{ state: string }> };
    assert.deepEqual(status.roots.map((root) => root.state).sort(), ['active', 'retiring']);
    const out = join(dir, 'after-rotation');
    await issue('spiffe://example.org/ns/shop/sa/web', out);
    const verify = await run('openssl', ['verify', '-CAfile', join(out, 'bundle.pem'), join(out, 'cert.pem')]);
    assert.equal(verify.code, 0, verify.stderr);
    // A certificate from before the rotation still verifies against the new bundle.
    const old = await run('openssl', ['verify', '-CAfile', join(out, 'bundle.pem'), join(dir, 'web', 'cert.pem')]);
    assert.equal(old.code, 0, old.stderr);
  });

  it('runs as an intermediate under an RSA root made by openssl, and inspects that root cleanly', async () => {
    const rootKey = join(dir, 'rsa-root.key');
    const rootCert = join(dir, 'rsa-root.pem');
    const made = await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', rootKey, '-out', rootCert, '-days', '30', '-subj', '/O=Operator/CN=RSA Root',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    assert.equal(made.code, 0, made.stderr);
    const rsaDir = join(dir, 'rsa-ca');
    const init = await runTrellis(['ca', 'init', '--dir', rsaDir, '--root-cert', rootCert, '--root-key', rootKey]);
    assert.equal(init.code, 0, init.stderr);
    const token = await runTrellis(['token', 'create', '--ca-dir', rsaDir, '--identity', 'spiffe://cluster.local/ns/a/sa/rsa']);
    const out = join(dir, 'rsa-leaf');
    assert.equal((await runTrellis(['cert', 'issue', '--ca-dir', rsaDir, '--token', token.stdout.trim(), '--out', out])).code, 0);
    const verify = await run('openssl', ['verify', '-CAfile', rootCert, '-untrusted', join(out, 'cert.pem'), join(out, 'cert.pem')]);
    assert.equal(verify.code, 0, verify.stderr);
    const inspect = await runTrellis(['cert', 'inspect', rootCert]);
    assert.equal(inspect.code, 0, inspect.stdout);
    const rotate = await runTrellis(['ca', 'rotate', '--dir', rsaDir]);
    assert.equal(rotate.code, 2, 'rotation must not silently leave the operator root');
    assert.match(rotate.stderr, /--self-signed/);
  });

  it('runs as an intermediate under a root made by openssl', async () => {
    const rootKey = join(dir, 'op-root.key');
    const rootCert = join(dir, 'op-root.pem');
    const made = await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', rootKey, '-out', rootCert,
      '-days', '30', '-subj', '/O=Operator/CN=Operator Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    assert.equal(made.code, 0, made.stderr);
    const interDir = join(dir, 'inter-ca');
    const init = await runTrellis(['ca', 'init', '--dir', interDir, '--root-cert', rootCert, '--root-key', rootKey, '-o', 'json']);
    assert.equal(init.code, 0, init.stderr);
    assert.equal((JSON.parse(init.stdout) as { mode: string }).mode, 'intermediate');
    const token = await runTrellis(['token', 'create', '--ca-dir', interDir, '--identity', 'spiffe://cluster.local/ns/a/sa/b']);
    const out = join(dir, 'inter-leaf');
    const issued = await runTrellis(['cert', 'issue', '--ca-dir', interDir, '--token', token.stdout.trim(), '--out', out]);
    assert.equal(issued.code, 0, issued.stderr);
    const verify = await run('openssl', ['verify', '-CAfile', rootCert, '-untrusted', join(out, 'cert.pem'), join(out, 'cert.pem')]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.ok(!readFileSync(join(interDir, 'ca-key.pem'), 'utf8').includes(readFileSync(rootKey, 'utf8').split('\n')[1] as string));
  });
});
