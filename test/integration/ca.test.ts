import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CaRefusedError, type InitOptions, MeshCA, type RefusalReason } from '../../src/identity/ca.js';
import { SpiffeId } from '../../src/identity/spiffe-id.js';
import { verifySvid } from '../../src/identity/verify.js';
import { createKeyAndCsr } from '../../src/identity/workload-key.js';
import { exportPrivateKeyPem, generateKeyPair, parseCertificatesPem, SIGNING_ALGORITHM, x509 } from '../../src/identity/x509.js';
import { makeIntermediate, makeRoot } from '../helpers/pki.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const WEB = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/web');
const DB = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/db');

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-ca-'));
  dirs.push(dir);
  return dir;
}

/** A CA with a controllable clock. */
async function newCa(options: InitOptions = {}): Promise<{ ca: MeshCA; dir: string; clock: { t: number } }> {
  const dir = join(tempDir(), 'ca');
  const clock = { t: Date.now() };
  const ca = await MeshCA.init(dir, { now: () => new Date(clock.t), ...options });
  return { ca, dir, clock };
}

async function issueWithToken(ca: MeshCA, id: SpiffeId, options: { ttlMs?: number } = {}) {
  const { token } = await ca.createJoinToken(id, 10 * MINUTE);
  const { csrPem, keyPem } = await createKeyAndCsr(id);
  return { issued: await ca.signCsr(csrPem, { kind: 'join-token', token }, options), keyPem, token };
}

async function assertRefused(promise: Promise<unknown>, reason: RefusalReason): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof CaRefusedError && err.reason === reason && err.code === 'TRELLIS_CA_REFUSED');
}

function auditLines(dir: string): Array<Record<string, unknown>> {
  return readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('mesh CA: init', () => {
  it('creates a self-signed root with private files', async () => {
    const { ca, dir } = await newCa();
    const status = await ca.status();
    assert.equal(status.trustDomain, 'cluster.local');
    assert.equal(status.mode, 'self-signed');
    assert.equal(status.roots.length, 1);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const secret of ['ca-key.pem', 'tokens.json', 'state.json']) {
      assert.equal(statSync(join(dir, secret)).mode & 0o777, 0o600, `${secret} must be 0600`);
    }
    const root = parseCertificatesPem(readFileSync(join(dir, 'root-cert.pem'), 'utf8'), 'root')[0]!;
    assert.equal(root.getExtension(x509.BasicConstraintsExtension)?.ca, true);
    const bundle = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as { keys: Array<{ use: string }>; spiffe_sequence: number };
    assert.equal(bundle.keys[0]?.use, 'x509-svid');
    assert.equal(bundle.spiffe_sequence, 1);
  });

  it('refuses to overwrite an existing CA', async () => {
    const { dir } = await newCa();
    await assert.rejects(MeshCA.init(dir), /already holds a mesh CA/);
  });

  it('refuses an invalid trust domain', async () => {
    await assert.rejects(MeshCA.init(join(tempDir(), 'ca'), { trustDomain: 'Bad_Domain' }), /lowercase/);
  });

  it('creates an intermediate under an operator root without storing the root key', async () => {
    const operatorRoot = await makeRoot('Operator Root', { trustDomain: 'prod.example' });
    const rootKeyPem = await exportPrivateKeyPem(operatorRoot.keys.privateKey);
    const { ca, dir } = await newCa({ trustDomain: 'prod.example', rootCertPem: operatorRoot.cert.toString('pem'), rootKeyPem });
    assert.equal((await ca.status()).mode, 'intermediate');
    const id = SpiffeId.parse('spiffe://prod.example/ns/a/sa/b');
    const { issued } = await issueWithToken(ca, id);
    const chain = parseCertificatesPem(issued.chainPem, 'chain');
    assert.equal(chain.length, 2, 'leaf + intermediate');
    const result = verifySvid(chain, issued.bundle);
    assert.ok(result.ok, result.ok ? '' : result.message);
    assert.equal(issued.bundle.roots[0]?.serialNumber, operatorRoot.cert.serialNumber);
    const keyBody = rootKeyPem.split('\n')[1] as string;
    for (const file of readdirSync(dir)) {
      if (statSync(join(dir, file)).isFile()) assert.ok(!readFileSync(join(dir, file), 'utf8').includes(keyBody), `${file} contains the operator root key`);
    }
  });

  it('accepts an operator CA that is not self-signed when its chain follows it, and sends a complete chain', async () => {
    const top = await makeRoot('Corporate Root');
    const issuing = await makeIntermediate(top, 'Corporate Issuing CA', { pathLength: 1 });
    const { ca } = await newCa({
      rootCertPem: issuing.cert.toString('pem') + '\n' + top.cert.toString('pem'),
      rootKeyPem: await exportPrivateKeyPem(issuing.keys.privateKey),
    });
    const { issued } = await issueWithToken(ca, WEB);
    const chain = parseCertificatesPem(issued.chainPem, 'chain');
    assert.equal(chain.length, 3, 'leaf + Trellis intermediate + corporate issuing CA');
    assert.equal(issued.bundle.roots[0]?.subject, top.cert.subject, 'the trust anchor is the self-signed top');
    assert.ok(verifySvid(chain, issued.bundle).ok);
  });

  it('refuses an operator CA that is not self-signed without its chain', async () => {
    const top = await makeRoot('Corporate Root');
    const issuing = await makeIntermediate(top, 'Corporate Issuing CA');
    const dir = join(tempDir(), 'ca');
    await assert.rejects(
      MeshCA.init(dir, { rootCertPem: issuing.cert.toString('pem'), rootKeyPem: await exportPrivateKeyPem(issuing.keys.privateKey) }),
      /not self-signed: append its issuers/,
    );
    assert.equal(existsSync(dir), false, 'a failed init leaves no directory behind');
  });

  it('refuses an operator root whose key does not match', async () => {
    const operatorRoot = await makeRoot('Operator Root');
    const otherKey = await exportPrivateKeyPem((await generateKeyPair()).privateKey);
    await assert.rejects(
      MeshCA.init(join(tempDir(), 'ca'), { rootCertPem: operatorRoot.cert.toString('pem'), rootKeyPem: otherKey }),
      /does not belong to the root certificate/,
    );
  });
});

describe('mesh CA: issuing with join tokens', () => {
  it('issues an X509-SVID for the proven identity with the default TTL of 1h', async () => {
    const { ca, clock } = await newCa();
    const { issued } = await issueWithToken(ca, WEB);
    assert.equal(issued.id.toString(), WEB.toString());
    const lifetimeFromNow = issued.notAfter.getTime() - clock.t;
    assert.ok(Math.abs(lifetimeFromNow - HOUR) < 1_000, `expiry ${lifetimeFromNow}ms from now`);
    const result = verifySvid(parseCertificatesPem(issued.chainPem, 'chain'), issued.bundle);
    assert.ok(result.ok && result.id.equals(WEB));
  });

  it('stores only token hashes', async () => {
    const { ca, dir } = await newCa();
    const { token } = await ca.createJoinToken(WEB, MINUTE);
    assert.match(token, /^tjt_[A-Za-z0-9_-]{43}$/);
    assert.ok(!readFileSync(join(dir, 'tokens.json'), 'utf8').includes(token.slice(4)));
  });

  it('refuses a reused token and audits it', async () => {
    const { ca, dir } = await newCa();
    const { token } = await issueWithToken(ca, WEB);
    const { csrPem } = await createKeyAndCsr(WEB);
    await assertRefused(ca.signCsr(csrPem, { kind: 'join-token', token }), 'token-used');
    const refused = auditLines(dir).filter((line) => line['type'] === 'svid.refused');
    assert.equal(refused.length, 1);
    assert.equal(refused[0]?.['reason'], 'token-used');
    assert.equal(refused[0]?.['identity'], WEB.toString());
    assert.ok(!JSON.stringify(refused).includes(token), 'the audit log must not contain the token');
  });

  it('refuses an expired token', async () => {
    const { ca, clock } = await newCa();
    const { token } = await ca.createJoinToken(WEB, 10 * MINUTE);
    clock.t += 11 * MINUTE;
    const { csrPem } = await createKeyAndCsr(WEB);
    await assertRefused(ca.signCsr(csrPem, { kind: 'join-token', token }), 'token-expired');
  });

  it("refuses another CA's token", async () => {
    const { ca: other } = await newCa();
    const { ca } = await newCa();
    const { token } = await other.createJoinToken(WEB, MINUTE);
    const { csrPem } = await createKeyAndCsr(WEB);
    await assertRefused(ca.signCsr(csrPem, { kind: 'join-token', token }), 'unknown-token');
  });

  it('refuses a CSR for another identity and burns the token', async () => {
    const { ca, dir } = await newCa();
    const { token } = await ca.createJoinToken(WEB, MINUTE);
    const forDb = await createKeyAndCsr(DB);
    await assertRefused(ca.signCsr(forDb.csrPem, { kind: 'join-token', token }), 'identity-mismatch');
    const forWeb = await createKeyAndCsr(WEB);
    await assertRefused(ca.signCsr(forWeb.csrPem, { kind: 'join-token', token }), 'token-used');
    assert.deepEqual(
      auditLines(dir).filter((line) => line['type'] === 'svid.refused').map((line) => line['reason']),
      ['identity-mismatch', 'token-used'],
    );
  });

  it('refuses a CSR with extra names or a bad signature', async () => {
    const { ca } = await newCa();
    const keys = await generateKeyPair();
    const withDns = await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: WEB.toString() }, { type: 'dns', value: 'web.example.com' }])],
    });
    let { token } = await ca.createJoinToken(WEB, MINUTE);
    await assertRefused(ca.signCsr(withDns.toString('pem'), { kind: 'join-token', token }), 'csr-san');

    const good = await createKeyAndCsr(WEB);
    const der = Buffer.from(good.csrPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
    ({ token } = await ca.createJoinToken(WEB, MINUTE));
    await assertRefused(ca.signCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`, { kind: 'join-token', token }), 'bad-csr');
  });

  it('honours a requested TTL, refuses one above the maximum, and never outlives the CA', async () => {
    const { ca } = await newCa({ caTtlMs: 2 * HOUR, maxSvidTtlMs: 24 * HOUR });
    const short = await issueWithToken(ca, WEB, { ttlMs: 5 * MINUTE });
    assert.ok(short.issued.notAfter.getTime() - Date.now() <= 5 * MINUTE + 1_000);
    const caExpiry = new Date((await ca.status()).signing.notAfter).getTime();
    const capped = await issueWithToken(ca, WEB, { ttlMs: 10 * HOUR });
    assert.equal(capped.issued.notAfter.getTime(), caExpiry);
    await assertRefused(issueWithToken(ca, WEB, { ttlMs: 25 * HOUR }), 'bad-ttl');
  });

  it('refuses to sign once the CA itself has expired', async () => {
    const { ca, clock } = await newCa({ caTtlMs: 2 * HOUR });
    clock.t += 3 * HOUR;
    const { csrPem } = await createKeyAndCsr(WEB);
    await assertRefused(ca.signCsr(csrPem, { kind: 'authenticated', id: WEB }), 'ca-expired');
    await assert.rejects(ca.createJoinToken(WEB, MINUTE), (err: unknown) => (err as { code?: string }).code === 'TRELLIS_CA_EXPIRED');
  });

  it('renews for an identity proven by its current SVID', async () => {
    const { ca } = await newCa();
    const { csrPem } = await createKeyAndCsr(WEB);
    const issued = await ca.signCsr(csrPem, { kind: 'authenticated', id: WEB });
    assert.ok(issued.id.equals(WEB));
    const other = await createKeyAndCsr(DB);
    await assertRefused(ca.signCsr(other.csrPem, { kind: 'authenticated', id: WEB }), 'identity-mismatch');
  });
});

describe('mesh CA: revocation', () => {
  it('revokes one certificate by serial', async () => {
    const { ca } = await newCa();
    const { issued } = await issueWithToken(ca, WEB);
    const list = await ca.revokeSerial(issued.serial);
    const chain = parseCertificatesPem(issued.chainPem, 'chain');
    const result = verifySvid(chain, issued.bundle, list);
    assert.equal(result.ok ? 'ok' : result.reason, 'revoked');
    assert.equal(list.sequence, 1);
  });

  it('revokes an identity: its live certificates and any new request, until lifted', async () => {
    const { ca, dir } = await newCa();
    const first = await issueWithToken(ca, WEB);
    const other = await issueWithToken(ca, DB);
    const list = await ca.revokeIdentity(WEB, 'cli:test');
    assert.equal(verifySvid(parseCertificatesPem(first.issued.chainPem, 'c'), first.issued.bundle, list).ok, false);
    assert.equal(verifySvid(parseCertificatesPem(other.issued.chainPem, 'c'), other.issued.bundle, list).ok, true);
    await assertRefused(issueWithToken(ca, WEB), 'identity-revoked');

    const lifted = await ca.liftIdentityRevocation(WEB, 'cli:test');
    const again = await issueWithToken(ca, WEB);
    assert.equal(verifySvid(parseCertificatesPem(again.issued.chainPem, 'c'), again.issued.bundle, lifted).ok, true);
    const old = verifySvid(parseCertificatesPem(first.issued.chainPem, 'c'), first.issued.bundle, lifted);
    assert.equal(old.ok ? 'ok' : old.reason, 'revoked', 'certificates revoked before stay revoked');
    const types = auditLines(dir).map((line) => line['type']);
    assert.ok(types.includes('revocation.added') && types.includes('revocation.lifted'));
  });

  it('rejects a malformed serial', async () => {
    const { ca } = await newCa();
    await assert.rejects(ca.revokeSerial('xyz'), /not a hexadecimal serial/);
  });
});

describe('mesh CA: root rotation', () => {
  it('announces the new root, signs with it after the grace period, and retires the old root when its SVIDs expire', async () => {
    const { ca, clock, dir } = await newCa();
    const before = await issueWithToken(ca, WEB);
    const oldRoot = (await ca.status()).roots[0]!;

    const started = await ca.rotate({ graceMs: 10 * MINUTE });
    assert.equal(started.roots.length, 2);
    assert.deepEqual(started.roots.map((root) => root.state), ['active', 'pending']);
    assert.equal(started.bundleSequence, 2);
    const during = await issueWithToken(ca, DB);
    assert.equal(parseCertificatesPem(during.issued.chainPem, 'c')[0]?.issuer, before.issued.bundle.roots[0]?.subject, 'still signed by the old root');
    assert.equal(during.issued.bundle.roots.length, 2, 'workloads learn the new root during the grace period');

    clock.t += 10 * MINUTE;
    const after = await issueWithToken(ca, WEB);
    const status = await ca.status();
    const newRoot = status.roots.find((root) => root.state === 'active')!;
    assert.notEqual(newRoot.fingerprint, oldRoot.fingerprint);
    assert.equal(parseCertificatesPem(after.issued.chainPem, 'c')[0]?.issuer, newRoot.subject);
    const retiring = status.roots.find((root) => root.state === 'retiring')!;
    assert.equal(retiring.fingerprint, oldRoot.fingerprint);
    assert.equal(retiring.removeAfter, during.issued.notAfter.toISOString(), 'kept until the last SVID it signed expires');

    // Every SVID, old and new, verifies against the current bundle.
    const bundle = await ca.bundle();
    for (const svid of [before, during, after]) {
      const result = verifySvid(parseCertificatesPem(svid.issued.chainPem, 'c'), bundle, undefined, { now: new Date(clock.t) });
      assert.ok(result.ok, result.ok ? '' : result.message);
    }

    clock.t = during.issued.notAfter.getTime() + 1;
    await ca.tick();
    const final = await ca.status();
    assert.deepEqual(final.roots.map((root) => root.state), ['active']);
    assert.equal(final.bundleSequence, 3);
    assert.deepEqual(
      auditLines(dir).map((line) => line['type']).filter((type) => String(type).startsWith('rotation.')),
      ['rotation.started', 'rotation.activated', 'rotation.root-removed'],
    );
  });

  it('refuses a second rotation while one is pending', async () => {
    const { ca } = await newCa();
    await ca.rotate({ graceMs: HOUR });
    await assert.rejects(ca.rotate(), /already pending/);
  });

  it('does not silently leave an operator root', async () => {
    const operatorRoot = await makeRoot('Operator Root');
    const { ca } = await newCa({ rootCertPem: operatorRoot.cert.toString('pem'), rootKeyPem: await exportPrivateKeyPem(operatorRoot.keys.privateKey) });
    await assert.rejects(ca.rotate(), /signs under an operator root/);
    const status = await ca.rotate({ selfSigned: true, graceMs: 0 });
    assert.equal(status.mode, 'self-signed');
  });

  it('waits, by default, for the longest-lived current SVID to renew before the new root signs', async () => {
    const { ca, clock } = await newCa();
    await issueWithToken(ca, WEB, { ttlMs: 6 * HOUR });
    const status = await ca.rotate();
    const activation = Date.parse(status.pendingRotation?.activateAt ?? '');
    assert.ok(activation - clock.t >= 6 * HOUR, `activates ${(activation - clock.t) / HOUR}h from now`);
  });

  it('rotates onto an operator root (intermediate mode)', async () => {
    const { ca } = await newCa();
    const operatorRoot = await makeRoot('Operator Root');
    const status = await ca.rotate({ graceMs: 0, rootCertPem: operatorRoot.cert.toString('pem'), rootKeyPem: await exportPrivateKeyPem(operatorRoot.keys.privateKey) });
    assert.equal(status.mode, 'intermediate');
    const { issued } = await issueWithToken(ca, WEB);
    assert.equal(parseCertificatesPem(issued.chainPem, 'c').length, 2);
    assert.ok(verifySvid(parseCertificatesPem(issued.chainPem, 'c'), issued.bundle).ok);
  });
});
