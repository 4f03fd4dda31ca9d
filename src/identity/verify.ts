/**
 * X.509-SVID verification: RFC 5280 path validation from the presented chain to a root in the
 * trust bundle, then the SPIFFE leaf rules (X509-SVID §5), then revocations. Synchronous, so the
 * TLS layer can call it on every handshake; the result is a value, never an exception.
 */
import type { X509Certificate as NodeX509 } from 'node:crypto';
import type { TrustBundle } from './bundle.js';
import { RevocationList } from './revocation.js';
import { SpiffeId } from './spiffe-id.js';
import { parseCertificate, toNodeCertificate, uriSans, x509 } from './x509.js';

export type SvidFailure =
  | 'empty-chain'
  | 'malformed'
  | 'no-uri-san'
  | 'multiple-uri-sans'
  | 'bad-spiffe-id'
  | 'no-workload-path'
  | 'ca-as-leaf'
  | 'key-usage-missing'
  | 'key-usage-not-critical'
  | 'no-digital-signature'
  | 'signing-key-usage'
  | 'wrong-purpose'
  | 'wrong-trust-domain'
  | 'expired'
  | 'not-yet-valid'
  | 'unknown-issuer'
  | 'bad-signature'
  | 'issuer-not-ca'
  | 'issuer-spiffe-id'
  | 'path-length'
  | 'unhandled-critical-extension'
  | 'revoked'
  | 'identity-revoked';

export type SvidVerification =
  | {
      ok: true;
      id: SpiffeId;
      leaf: x509.X509Certificate;
      /** The validated path: leaf, intermediates, trust anchor. */
      path: x509.X509Certificate[];
      notAfter: Date;
    }
  | { ok: false; reason: SvidFailure; message: string };

/** Which TLS role the SVID is presented for; checked against the extended key usage when present. */
export type SvidPurpose = 'client' | 'server' | 'any';

export interface VerifyOptions {
  now?: Date;
  purpose?: SvidPurpose;
}

const MAX_PATH_CERTS = 8;

const EXT = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
} as const;

/** Critical extensions this verifier processes; any other critical extension fails (RFC 5280 §4.2). */
const HANDLED_CRITICAL = new Set<string>(Object.values(EXT));

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

interface Cert {
  parsed: x509.X509Certificate;
  node: NodeX509;
}

export function verifySvid(
  chain: ReadonlyArray<x509.X509Certificate | Uint8Array | string>,
  bundle: TrustBundle,
  revocations: RevocationList = RevocationList.EMPTY,
  options: VerifyOptions = {},
): SvidVerification {
  const now = options.now ?? new Date();
  if (chain.length === 0) return fail('empty-chain', 'no certificate was presented');

  let certs: Cert[];
  try {
    certs = chain.map((item, index) => {
      const parsed = item instanceof x509.X509Certificate ? item : parseCertificate(item, `certificate ${index + 1}`);
      return { parsed, node: toNodeCertificate(parsed) };
    });
  } catch (err) {
    return fail('malformed', (err as Error).message);
  }
  const leaf = certs[0] as Cert;

  const leafCheck = checkLeaf(leaf.parsed, bundle.trustDomain, options.purpose ?? 'any');
  if (!leafCheck.ok) return leafCheck;

  const roots = bundle.roots.map((parsed) => ({ parsed, node: toNodeCertificate(parsed) }));
  const built = buildPath(leaf, certs.slice(1), roots);
  if (!built.ok) return built;

  const pathCheck = checkPath(built.path, now);
  if (!pathCheck.ok) return pathCheck;

  for (const cert of built.path.slice(0, -1)) {
    if (revocations.isSerialRevoked(cert.parsed.serialNumber)) {
      const what = cert === leaf ? 'the certificate' : `issuing certificate ${cert.parsed.subject}`;
      return fail('revoked', `${what} (serial ${cert.parsed.serialNumber}) is revoked`);
    }
  }
  if (revocations.isIdentityRevoked(leafCheck.id.toString())) {
    return fail('identity-revoked', `identity ${leafCheck.id.toString()} is revoked`);
  }

  return {
    ok: true,
    id: leafCheck.id,
    leaf: leaf.parsed,
    path: built.path.map((cert) => cert.parsed),
    notAfter: leaf.parsed.notAfter,
  };
}

/** Human-readable one-liner for a verification result, for logs and CLI output. */
export function describeVerification(result: SvidVerification): string {
  return result.ok ? `valid SVID for ${result.id.toString()} until ${result.notAfter.toISOString()}` : `${result.reason}: ${result.message}`;
}

type LeafCheck = { ok: true; id: SpiffeId } | { ok: false; reason: SvidFailure; message: string };

function checkLeaf(leaf: x509.X509Certificate, trustDomain: string, purpose: SvidPurpose): LeafCheck {
  const uris = uriSans(leaf);
  if (uris.length === 0) return fail('no-uri-san', 'the certificate has no URI SAN, so it carries no SPIFFE ID');
  if (uris.length > 1) return fail('multiple-uri-sans', `the certificate has ${uris.length} URI SANs; an X509-SVID must have exactly one`);
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(uris[0] as string);
  } catch (err) {
    return fail('bad-spiffe-id', (err as Error).message);
  }
  if (id.isTrustDomainId) return fail('no-workload-path', `${id.toString()} has no path: it names a trust domain, not a workload`);

  const constraints = leaf.getExtension(x509.BasicConstraintsExtension);
  if (constraints?.ca === true) return fail('ca-as-leaf', 'a CA certificate (cA=true) cannot identify a workload');

  const keyUsage = leaf.getExtension(x509.KeyUsagesExtension);
  if (!keyUsage) return fail('key-usage-missing', 'the key usage extension is missing');
  if (!keyUsage.critical) return fail('key-usage-not-critical', 'the key usage extension must be critical');
  if ((keyUsage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    return fail('no-digital-signature', 'key usage lacks digitalSignature');
  }
  if ((keyUsage.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) {
    return fail('signing-key-usage', 'a leaf SVID must not have keyCertSign or cRLSign');
  }

  const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku && purpose !== 'any') {
    const wanted = purpose === 'server' ? SERVER_AUTH : CLIENT_AUTH;
    const usages = eku.usages.map(String);
    if (!usages.includes(wanted) && !usages.includes(ANY_EKU)) {
      return fail('wrong-purpose', `extended key usage does not allow ${purpose === 'server' ? 'serverAuth' : 'clientAuth'}`);
    }
  }

  if (!id.memberOf(trustDomain)) {
    return fail('wrong-trust-domain', `${id.toString()} is not in trust domain ${trustDomain}`);
  }
  return { ok: true, id };
}

type PathResult = { ok: true; path: Cert[] } | { ok: false; reason: SvidFailure; message: string };

/**
 * Depth-first search for a path leaf → presented intermediates → bundle root. Candidates must
 * match by name (and key identifiers) and verify the signature, so a root that shares a subject
 * with an older one is told apart by its key.
 */
function buildPath(start: Cert, intermediates: Cert[], roots: Cert[]): PathResult {
  let nearest: PathResult = fail('unknown-issuer', `no certificate in the trust bundle issued ${describe(start)}`);

  const extend = (path: Cert[]): PathResult | undefined => {
    const cert = path[path.length - 1] as Cert;
    for (const root of roots) {
      if (!cert.node.checkIssued(root.node)) continue;
      if (cert.node.verify(root.node.publicKey)) return { ok: true, path: [...path, root] };
      nearest = fail('bad-signature', `the signature of ${describe(cert)} does not verify with root ${root.parsed.subject}`);
    }
    if (path.length + 1 >= MAX_PATH_CERTS) {
      nearest = fail('path-length', `the chain is longer than ${MAX_PATH_CERTS} certificates`);
      return undefined;
    }
    for (const next of intermediates) {
      if (path.includes(next) || !cert.node.checkIssued(next.node)) continue;
      if (!cert.node.verify(next.node.publicKey)) {
        nearest = fail('bad-signature', `the signature of ${describe(cert)} does not verify with ${next.parsed.subject}`);
        continue;
      }
      const found = extend([...path, next]);
      if (found) return found;
    }
    return undefined;
  };

  return extend([start]) ?? nearest;
}

function checkPath(path: Cert[], now: Date): { ok: true } | { ok: false; reason: SvidFailure; message: string } {
  for (const [index, cert] of path.entries()) {
    const { notBefore, notAfter } = cert.parsed;
    if (now.getTime() < notBefore.getTime()) {
      return fail('not-yet-valid', `${describe(cert)} is not valid before ${notBefore.toISOString()}`);
    }
    if (now.getTime() > notAfter.getTime()) {
      return fail('expired', `${describe(cert)} expired at ${notAfter.toISOString()}`);
    }
    // The trust anchor is an input to path validation, not a link in it (RFC 5280 §6.1): its
    // extensions are the operator's business. Every other certificate must be fully understood.
    const isAnchor = index === path.length - 1;
    for (const ext of isAnchor ? [] : cert.parsed.extensions) {
      if (ext.critical && !HANDLED_CRITICAL.has(ext.type)) {
        return fail('unhandled-critical-extension', `${describe(cert)} has critical extension ${ext.type}, which Trellis does not process`);
      }
    }
    if (index === 0) continue;

    // Every certificate above the leaf signs certificates: it must be a CA allowed to do so.
    const constraints = cert.parsed.getExtension(x509.BasicConstraintsExtension);
    if (constraints?.ca !== true) return fail('issuer-not-ca', `${describe(cert)} issued a certificate but is not a CA`);
    const keyUsage = cert.parsed.getExtension(x509.KeyUsagesExtension);
    if (keyUsage && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
      return fail('issuer-not-ca', `${describe(cert)} lacks keyCertSign`);
    }
    // pathLenConstraint counts the CA certificates below this one, excluding the leaf.
    if (constraints.pathLength !== undefined && index - 1 > constraints.pathLength) {
      return fail('path-length', `${describe(cert)} allows ${constraints.pathLength} intermediate CA(s) below it, found ${index - 1}`);
    }
    for (const uri of uriSans(cert.parsed)) {
      if (!uri.toLowerCase().startsWith('spiffe://')) continue;
      if (!SpiffeId.isValid(uri) || !SpiffeId.parse(uri).isTrustDomainId) {
        return fail('issuer-spiffe-id', `signing certificate ${cert.parsed.subject} has SPIFFE ID ${uri}; a signing certificate's ID must have no path`);
      }
    }
  }
  return { ok: true };
}

function describe(cert: Cert): string {
  const uri = uriSans(cert.parsed)[0];
  return uri !== undefined && cert.parsed.subject === '' ? `certificate ${uri}` : `certificate "${cert.parsed.subject || uri || cert.parsed.serialNumber}"`;
}

function fail(reason: SvidFailure, message: string): { ok: false; reason: SvidFailure; message: string } {
  return { ok: false, reason, message };
}
