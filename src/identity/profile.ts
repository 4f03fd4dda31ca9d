/**
 * Certificate profiles: what goes into a root, an intermediate and a leaf X.509-SVID. The leaf
 * profile follows the SPIFFE X509-SVID standard exactly: one URI SAN (critical, because the
 * subject is empty), key usage critical with digitalSignature only, cA=false, EKU serverAuth
 * and clientAuth. Signing certificates: cA=true, keyCertSign (+cRLSign), the trust domain's
 * own SPIFFE ID (no path) as URI SAN.
 */
import { TrellisError } from '../api/errors.js';
import type { SpiffeId } from './spiffe-id.js';
import { type CryptoKey, type CryptoKeyPair, randomSerial, SIGNING_ALGORITHM, x509 } from './x509.js';

/** Clock skew allowance: certificates are valid from a minute before they are issued. */
export const BACKDATE_MS = 60_000;

export interface CaCertificateParams {
  trustDomain: string;
  keys: CryptoKeyPair;
  notBefore: Date;
  notAfter: Date;
  /** A readable, unique subject common name (unique names keep path building unambiguous). */
  commonName: string;
}

export async function createRootCertificate(params: CaCertificateParams): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: caSubject(params.trustDomain, params.commonName),
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    keys: params.keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${params.trustDomain}` }], false),
      await x509.SubjectKeyIdentifierExtension.create(params.keys.publicKey),
    ],
  });
}

export interface IssuerParams {
  issuerCert: x509.X509Certificate;
  issuerKey: CryptoKey;
  /** The issuer key's signature algorithm; default ECDSA P-256 with SHA-256. */
  issuerAlgorithm?: { name: string; hash: string };
}

/** An intermediate signing CA under an operator's root (Istio's plug-in `cacerts` model). */
export async function createIntermediateCertificate(
  params: CaCertificateParams & IssuerParams,
): Promise<x509.X509Certificate> {
  checkWithinIssuer(params.notAfter, params.issuerCert);
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: caSubject(params.trustDomain, params.commonName),
    issuer: params.issuerCert.subjectName,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    publicKey: params.keys.publicKey,
    signingKey: params.issuerKey,
    signingAlgorithm: params.issuerAlgorithm ?? SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${params.trustDomain}` }], false),
      await x509.SubjectKeyIdentifierExtension.create(params.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(params.issuerCert),
    ],
  });
}

export interface LeafParams extends IssuerParams {
  id: SpiffeId;
  publicKey: x509.PublicKey;
  notBefore: Date;
  notAfter: Date;
  serialNumber?: string;
}

export async function createLeafCertificate(params: LeafParams): Promise<x509.X509Certificate> {
  checkWithinIssuer(params.notAfter, params.issuerCert);
  return x509.X509CertificateGenerator.create({
    serialNumber: params.serialNumber ?? randomSerial(),
    subject: '',
    issuer: params.issuerCert.subjectName,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    publicKey: params.publicKey,
    signingKey: params.issuerKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      // Critical because the subject is empty (RFC 5280 §4.1.2.6).
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: params.id.toString() }], true),
      await x509.AuthorityKeyIdentifierExtension.create(params.issuerCert),
      await x509.SubjectKeyIdentifierExtension.create(params.publicKey),
    ],
  });
}

function caSubject(trustDomain: string, commonName: string): string {
  // Escape the RFC 4514 specials so a trust domain can never inject extra name attributes.
  const escape = (value: string): string => value.replace(/([,+"\\<>;=#])/g, '\\$1');
  return `O=Trellis,OU=${escape(trustDomain)},CN=${escape(commonName)}`;
}

function checkWithinIssuer(notAfter: Date, issuer: x509.X509Certificate): void {
  if (notAfter.getTime() > issuer.notAfter.getTime()) {
    throw new TrellisError(
      'TRELLIS_CA_TTL',
      `a certificate may not outlive its issuer: requested expiry ${notAfter.toISOString()} is after the issuer's ${issuer.notAfter.toISOString()}`,
    );
  }
}
