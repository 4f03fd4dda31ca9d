/**
 * `trellis cert inspect`: what a certificate says, and every X509-SVID rule it breaks (all of
 * them, not just the first, so an operator can fix a foreign PKI in one pass).
 */
import { SpiffeId } from './spiffe-id.js';
import { fingerprint, uriSans, x509 } from './x509.js';

export interface CertificateReport {
  kind: 'leaf' | 'signing';
  spiffeId: string | null;
  subject: string;
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  /** Validity now: 'valid', 'expired' or 'not-yet-valid'. */
  validity: 'valid' | 'expired' | 'not-yet-valid';
  keyAlgorithm: string;
  keyUsage: string[];
  extendedKeyUsage: string[];
  fingerprintSha256: string;
  /** X509-SVID rules this certificate breaks; empty when it conforms. */
  spiffeProblems: string[];
}

const KEY_USAGE_NAMES: Array<[x509.KeyUsageFlags, string]> = [
  [x509.KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [x509.KeyUsageFlags.nonRepudiation, 'nonRepudiation'],
  [x509.KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [x509.KeyUsageFlags.dataEncipherment, 'dataEncipherment'],
  [x509.KeyUsageFlags.keyAgreement, 'keyAgreement'],
  [x509.KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [x509.KeyUsageFlags.cRLSign, 'cRLSign'],
];

const EKU_NAMES: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
};

export function inspectCertificate(cert: x509.X509Certificate, now = new Date()): CertificateReport {
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const kind = constraints?.ca === true ? 'signing' : 'leaf';
  const uris = uriSans(cert);
  const usages = keyUsage ? KEY_USAGE_NAMES.filter(([flag]) => (keyUsage.usages & flag) !== 0).map(([, name]) => name) : [];
  const problems: string[] = [];

  // A leaf SVID has exactly one URI SAN; a signing certificate SHOULD be an SVID but need not be.
  if (kind === 'leaf' ? uris.length !== 1 : uris.length > 1) problems.push(`has ${uris.length} URI SANs; an SVID has exactly one`);
  let spiffeId: string | null = null;
  for (const uri of uris.slice(0, 1)) {
    try {
      const id = SpiffeId.parse(uri);
      spiffeId = id.toString();
      if (kind === 'leaf' && id.isTrustDomainId) problems.push('a leaf SPIFFE ID must have a path');
      if (kind === 'signing' && !id.isTrustDomainId) problems.push("a signing certificate's SPIFFE ID must not have a path");
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (!keyUsage) problems.push('key usage extension missing');
  else if (!keyUsage.critical) problems.push('key usage extension is not critical');
  if (kind === 'leaf') {
    if (!usages.includes('digitalSignature')) problems.push('key usage lacks digitalSignature');
    if (usages.includes('keyCertSign') || usages.includes('cRLSign')) problems.push('a leaf must not have keyCertSign or cRLSign');
    if (eku) {
      const names = eku.usages.map((usage) => EKU_NAMES[String(usage)] ?? String(usage));
      if (!names.includes('serverAuth') || !names.includes('clientAuth')) problems.push('extended key usage must include serverAuth and clientAuth');
    }
    if (cert.subject === '' && uris.length > 0) {
      const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
      if (san && !san.critical) problems.push('with an empty subject the SAN extension must be critical (RFC 5280 §4.1.2.6)');
    }
  } else if (!usages.includes('keyCertSign')) {
    problems.push('a signing certificate must have keyCertSign');
  }

  const time = now.getTime();
  return {
    kind,
    spiffeId,
    subject: cert.subject,
    issuer: cert.issuer,
    serial: cert.serialNumber,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    validity: time < cert.notBefore.getTime() ? 'not-yet-valid' : time > cert.notAfter.getTime() ? 'expired' : 'valid',
    keyAlgorithm: describeKey(cert),
    keyUsage: usages,
    extendedKeyUsage: eku ? eku.usages.map((usage) => EKU_NAMES[String(usage)] ?? String(usage)) : [],
    fingerprintSha256: fingerprint(cert),
    spiffeProblems: problems,
  };
}

function describeKey(cert: x509.X509Certificate): string {
  const algorithm = cert.publicKey.algorithm as { name?: string; namedCurve?: string; modulusLength?: number };
  return [algorithm.name, algorithm.namedCurve ?? (algorithm.modulusLength ? `${algorithm.modulusLength} bits` : undefined)]
    .filter(Boolean)
    .join(' ');
}
