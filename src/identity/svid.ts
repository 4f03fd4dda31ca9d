/**
 * An X.509-SVID as a workload holds it: its private key, its certificate chain and the bundle
 * it trusts. Loading from files checks that the key matches the certificate.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrellisError } from '../api/errors.js';
import { TrustBundle } from './bundle.js';
import { writeFileAtomic } from './files.js';
import { SpiffeId } from './spiffe-id.js';
import { parseCertificatesPem, uriSans, type x509 } from './x509.js';

export interface Svid {
  id: SpiffeId;
  keyPem: string;
  /** Leaf first, then intermediates. */
  chainPem: string;
  leaf: x509.X509Certificate;
  notBefore: Date;
  notAfter: Date;
}

export const SVID_FILES = { key: 'key.pem', cert: 'cert.pem', bundle: 'bundle.pem', bundleJson: 'bundle.json' } as const;

export function svidFromPem(keyPem: string, chainPem: string): Svid {
  const chain = parseCertificatesPem(chainPem, 'SVID certificate chain');
  const leaf = chain[0] as x509.X509Certificate;
  const uris = uriSans(leaf);
  if (uris.length !== 1) throw new TrellisError('TRELLIS_BAD_CERT', `the leaf certificate must carry exactly one URI SAN, found ${uris.length}`);
  const id = SpiffeId.parse(uris[0] as string);
  let keyMatches: boolean;
  try {
    const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ format: 'der', type: 'spki' });
    keyMatches = fromKey.equals(Buffer.from(leaf.publicKey.rawData));
  } catch (err) {
    throw new TrellisError('TRELLIS_BAD_KEY', `cannot read the SVID private key: ${(err as Error).message}`);
  }
  if (!keyMatches) throw new TrellisError('TRELLIS_BAD_KEY', `the private key does not belong to the certificate for ${id.toString()}`);
  return { id, keyPem, chainPem, leaf, notBefore: leaf.notBefore, notAfter: leaf.notAfter };
}

/** Writes key.pem (0600), cert.pem, bundle.pem and bundle.json into `dir`. */
export function writeSvidFiles(dir: string, svid: Pick<Svid, 'keyPem' | 'chainPem'>, bundle: TrustBundle): void {
  writeFileAtomic(join(dir, SVID_FILES.key), svid.keyPem, 0o600);
  writeFileAtomic(join(dir, SVID_FILES.cert), svid.chainPem);
  writeFileAtomic(join(dir, SVID_FILES.bundle), bundle.toPem());
  writeFileAtomic(join(dir, SVID_FILES.bundleJson), `${JSON.stringify(bundle.toSpiffeJson(), null, 2)}\n`);
}

export function readSvidFiles(dir: string): { svid: Svid; bundle: TrustBundle } {
  const read = (name: string): string => {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch (err) {
      throw new TrellisError('TRELLIS_SVID_FILES', `cannot read ${join(dir, name)}: ${(err as Error).message}`);
    }
  };
  const svid = svidFromPem(read(SVID_FILES.key), read(SVID_FILES.cert));
  return { svid, bundle: TrustBundle.fromSpiffeJson(svid.id.trustDomain, read(SVID_FILES.bundleJson)) };
}
