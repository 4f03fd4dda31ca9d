/**
 * Test PKI: certificates with arbitrary (also deliberately wrong) profiles, for the negative
 * cases that the CA itself would never produce.
 */
import { TrustBundle } from '../../src/identity/bundle.js';
import { exportPrivateKeyPem, generateKeyPair, randomSerial, SIGNING_ALGORITHM, x509, type CryptoKeyPair } from '../../src/identity/x509.js';

export interface TestCa {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

const HOUR = 3_600_000;

export async function makeRoot(
  name = 'Test Root',
  options: { trustDomain?: string; pathLength?: number; notBefore?: Date; notAfter?: Date; extraExtensions?: x509.Extension[] } = {},
): Promise<TestCa> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${name}`,
    notBefore: options.notBefore ?? new Date(Date.now() - HOUR),
    notAfter: options.notAfter ?? new Date(Date.now() + 24 * HOUR),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, options.pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${options.trustDomain ?? 'cluster.local'}` }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(options.extraExtensions ?? []),
    ],
  });
  return { cert, keys };
}

export async function makeIntermediate(issuer: TestCa, name = 'Test Intermediate', options: { pathLength?: number; ca?: boolean } = {}): Promise<TestCa> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${name}`,
    issuer: issuer.cert.subjectName,
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date(Date.now() + 12 * HOUR),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(options.ca ?? true, options.pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.cert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

export interface LeafOptions {
  uris?: string[];
  ca?: boolean;
  keyUsage?: number | null;
  keyUsageCritical?: boolean;
  eku?: string[] | null;
  notBefore?: Date;
  notAfter?: Date;
  extraExtensions?: x509.Extension[];
  serial?: string;
}

export async function makeLeaf(issuer: TestCa, options: LeafOptions = {}): Promise<{ cert: x509.X509Certificate; keyPem: string }> {
  const keys = await generateKeyPair();
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(options.ca ?? false, undefined, true)];
  if (options.keyUsage !== null) {
    extensions.push(new x509.KeyUsagesExtension(options.keyUsage ?? x509.KeyUsageFlags.digitalSignature, options.keyUsageCritical ?? true));
  }
  if (options.eku !== null) {
    extensions.push(new x509.ExtendedKeyUsageExtension(options.eku ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]));
  }
  const uris = options.uris ?? ['spiffe://cluster.local/ns/default/sa/web'];
  if (uris.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value })), true));
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.cert));
  extensions.push(...(options.extraExtensions ?? []));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: options.serial ?? randomSerial(),
    subject: uris.length > 0 ? '' : 'CN=no-uri',
    issuer: issuer.cert.subjectName,
    notBefore: options.notBefore ?? new Date(Date.now() - HOUR),
    notAfter: options.notAfter ?? new Date(Date.now() + HOUR),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  });
  return { cert, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

export function bundleOf(trustDomain: string, ...cas: TestCa[]): TrustBundle {
  return new TrustBundle(trustDomain, cas.map((ca) => ca.cert), 1);
}
