/**
 * Trust bundles: the CA certificates a workload trusts for one trust domain, in the SPIFFE
 * bundle format (a JWK set with `use: x509-svid` and `x5c`, plus `spiffe_sequence` and
 * `spiffe_refresh_hint`) and as PEM.
 */
import { createPublicKey } from 'node:crypto';
import { TrellisError } from '../api/errors.js';
import { validateTrustDomain } from './spiffe-id.js';
import { certificatesToPem, fingerprint, parseCertificate, parseCertificatesPem, x509 } from './x509.js';

export interface SpiffeBundleJson {
  spiffe_sequence?: number;
  spiffe_refresh_hint?: number;
  keys: Array<Record<string, unknown>>;
}

/** Default refresh hint: bundles change on root rotation, which is announced a grace period ahead. */
export const DEFAULT_REFRESH_HINT_SECONDS = 300;

export class TrustBundle {
  readonly trustDomain: string;
  readonly roots: readonly x509.X509Certificate[];
  readonly sequence: number;
  readonly refreshHintSeconds: number;
  private readonly fingerprints: ReadonlySet<string>;

  constructor(trustDomain: string, roots: readonly x509.X509Certificate[], sequence: number, refreshHintSeconds = DEFAULT_REFRESH_HINT_SECONDS) {
    validateTrustDomain(trustDomain);
    for (const root of roots) {
      if (!isCaCertificate(root)) {
        const name = root.subject || `serial ${root.serialNumber}`;
        throw new TrellisError('TRELLIS_BAD_BUNDLE', `bundle for ${trustDomain}: certificate "${name}" is not a CA certificate (basicConstraints cA=true required)`);
      }
    }
    this.trustDomain = trustDomain;
    this.roots = roots;
    this.sequence = sequence;
    this.refreshHintSeconds = refreshHintSeconds;
    this.fingerprints = new Set(roots.map(fingerprint));
  }

  static fromPem(trustDomain: string, pem: string, sequence = 0): TrustBundle {
    return new TrustBundle(trustDomain, parseCertificatesPem(pem, `trust bundle for ${trustDomain}`), sequence);
  }

  /**
   * Reads the SPIFFE bundle format. Per the X509-SVID standard, entries with another `use` are
   * ignored, as are x509-svid entries without `x5c`; only the first `x5c` value counts.
   */
  static fromSpiffeJson(trustDomain: string, json: SpiffeBundleJson | string): TrustBundle {
    let doc: SpiffeBundleJson;
    try {
      doc = typeof json === 'string' ? (JSON.parse(json) as SpiffeBundleJson) : json;
    } catch (err) {
      throw new TrellisError('TRELLIS_BAD_BUNDLE', `bundle for ${trustDomain} is not valid JSON: ${(err as Error).message}`);
    }
    if (!doc || !Array.isArray(doc.keys)) {
      throw new TrellisError('TRELLIS_BAD_BUNDLE', `bundle for ${trustDomain}: "keys" must be an array`);
    }
    const roots: x509.X509Certificate[] = [];
    for (const [index, key] of doc.keys.entries()) {
      if (key['use'] !== 'x509-svid') continue;
      const x5c = key['x5c'];
      if (!Array.isArray(x5c) || x5c.length === 0 || typeof x5c[0] !== 'string') continue;
      roots.push(parseCertificate(Buffer.from(x5c[0], 'base64'), `bundle for ${trustDomain}, keys[${index}].x5c[0]`));
    }
    return new TrustBundle(trustDomain, roots, doc.spiffe_sequence ?? 0, doc.spiffe_refresh_hint ?? DEFAULT_REFRESH_HINT_SECONDS);
  }

  toSpiffeJson(): SpiffeBundleJson {
    return {
      spiffe_sequence: this.sequence,
      spiffe_refresh_hint: this.refreshHintSeconds,
      keys: this.roots.map((root) => {
        const jwk = createPublicKey({ key: Buffer.from(root.publicKey.rawData), format: 'der', type: 'spki' }).export({ format: 'jwk' });
        return { ...jwk, use: 'x509-svid', x5c: [Buffer.from(root.rawData).toString('base64')] };
      }),
    };
  }

  toPem(): string {
    return certificatesToPem(this.roots);
  }

  contains(cert: x509.X509Certificate): boolean {
    return this.fingerprints.has(fingerprint(cert));
  }
}

export function isCaCertificate(cert: x509.X509Certificate): boolean {
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  return constraints?.ca === true;
}
