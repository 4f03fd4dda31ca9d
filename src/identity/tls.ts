/**
 * Node TLS with SPIFFE authentication instead of hostnames. OpenSSL validates the chain against
 * the bundle roots (and only those: `ca` replaces the system store); on top of that every peer is
 * checked with verifySvid — the SPIFFE leaf rules, the trust domain and the revocations — and its
 * SPIFFE ID is what callers authorize.
 */
import { type ConnectionOptions, createSecureContext, type PeerCertificate, type SecureContext, type SecureContextOptions, type TLSSocket, type TlsOptions } from 'node:tls';
import type { TrustBundle } from './bundle.js';
import { RevocationList } from './revocation.js';
import type { SpiffeId } from './spiffe-id.js';
import type { Svid } from './svid.js';
import { type SvidPurpose, type SvidVerification, verifySvid } from './verify.js';

export interface SpiffeTlsMaterial {
  svid: Pick<Svid, 'keyPem' | 'chainPem'>;
  bundle: TrustBundle;
  revocations?: RevocationList;
}

/** Mesh traffic is TLS 1.3 only: both ends are ours. */
export const MESH_TLS_MIN_VERSION = 'TLSv1.3' as const;

/** A server-side check: which verified peers may connect. Return a reason string to refuse. */
export type PeerAuthorizer = (id: SpiffeId) => true | string;

const CACHE_LIMIT = 1024;

/**
 * Holds the current SVID, bundle and revocations and turns them into TLS options. Call
 * `update` on rotation, then give servers the new `secureContextOptions()` through
 * `server.setSecureContext`: live connections keep their session, new ones use the new SVID.
 */
export class SpiffeTls {
  private material: Required<SpiffeTlsMaterial>;
  /** Successful verifications by leaf fingerprint; cleared whenever trust inputs change. */
  private readonly cache = new Map<string, SvidVerification>();
  private context: SecureContext | undefined;
  private generation = 0;

  constructor(material: SpiffeTlsMaterial) {
    this.material = { revocations: RevocationList.EMPTY, ...material };
  }

  get bundle(): TrustBundle {
    return this.material.bundle;
  }

  get revocations(): RevocationList {
    return this.material.revocations;
  }

  update(change: Partial<SpiffeTlsMaterial>): void {
    this.material = { ...this.material, ...change } as Required<SpiffeTlsMaterial>;
    this.cache.clear();
    if (change.svid || change.bundle) {
      this.context = undefined;
      this.generation += 1;
    }
  }

  /** Bumped whenever the SVID or bundle changes: connection pools keyed on it start afresh. */
  get materialGeneration(): number {
    return this.generation;
  }

  /** A secure context for the current material, created once per change (they are costly). */
  secureContext(): SecureContext {
    this.context ??= createSecureContext(this.secureContextOptions());
    return this.context;
  }

  secureContextOptions(): SecureContextOptions {
    return {
      key: this.material.svid.keyPem,
      cert: this.material.svid.chainPem,
      ca: this.material.bundle.toPem(),
      minVersion: MESH_TLS_MIN_VERSION,
      // OpenSSL refuses a session resumption offered to a server that verifies client
      // certificates unless the context has an id; with it, the attempt is handled cleanly.
      sessionIdContext: 'trellis-mesh',
    };
  }

  /** Options for tls.createServer: client certificates required and chain-checked by OpenSSL. */
  serverOptions(extra: TlsOptions = {}): TlsOptions {
    return { ...this.secureContextOptions(), requestCert: true, rejectUnauthorized: true, ...extra };
  }

  /**
   * Options for tls.connect. The server must present a valid SVID that `authorize` accepts
   * (e.g. "is one of the identities allowed to serve this service"); otherwise the handshake
   * fails with the reason.
   */
  clientOptions(authorize: PeerAuthorizer, extra: ConnectionOptions = {}): ConnectionOptions {
    return {
      ...this.secureContextOptions(),
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => {
        const result = this.verifyCertificate(cert, 'server');
        if (!result.ok) return new Error(`server SVID rejected: ${result.reason}: ${result.message}`);
        const verdict = authorize(result.id);
        return verdict === true ? undefined : new Error(`server ${result.id.toString()} refused: ${verdict}`);
      },
      ...extra,
    };
  }

  /** Verifies the peer of an established TLS socket (server side: the client's SVID). */
  verifyPeer(socket: TLSSocket, purpose: SvidPurpose = 'client'): SvidVerification {
    const cert = socket.getPeerCertificate(true);
    if (!cert || !cert.raw) return { ok: false, reason: 'empty-chain', message: 'the peer presented no certificate' };
    return this.verifyCertificate(cert, purpose);
  }

  private verifyCertificate(cert: PeerCertificate, purpose: SvidPurpose): SvidVerification {
    const key = `${purpose}:${cert.fingerprint256}`;
    const cached = this.cache.get(key);
    // Only successes are cached, and they still expire with the certificate.
    if (cached?.ok && cached.notAfter.getTime() > Date.now()) return cached;
    const result = verifySvid(peerChain(cert), this.material.bundle, this.material.revocations, { purpose });
    if (result.ok) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(key, result);
    }
    return result;
  }
}

/** The DER chain Node exposes for a peer: leaf, then each issuer until the chain ends or loops. */
export function peerChain(cert: PeerCertificate): Uint8Array[] {
  const chain: Uint8Array[] = [];
  const seen = new Set<string>();
  let current: PeerCertificate | undefined = cert;
  while (current?.raw && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(new Uint8Array(current.raw));
    const issuer: PeerCertificate | undefined = (current as { issuerCertificate?: PeerCertificate }).issuerCertificate;
    current = issuer;
  }
  return chain;
}
