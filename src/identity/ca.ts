/**
 * The mesh CA. It signs CSRs for identities the caller has proven, keeps the trust bundle, the
 * revocations and the join tokens, and rotates its root without breaking live traffic:
 *
 *   rotate → the new root joins the bundle (pending) → after the grace period it signs new SVIDs
 *   (active) → the old root stays in the bundle (retiring) until every SVID it signed expired.
 *
 * All state lives in one directory (see ca-state.ts). Every operation takes the directory lock,
 * reads the state, applies any rotation step that is due, does its work and writes back, so the
 * CLI and a running control plane can share one CA directory.
 */
import { existsSync, rmSync } from 'node:fs';
import { createPublicKey, type X509Certificate as NodeX509, webcrypto } from 'node:crypto';
import { TrellisError } from '../api/errors.js';
import { formatDuration } from '../api/duration.js';
import { type AuditSink, type IdentityAuditEvent, jsonlAuditSink } from './audit.js';
import { TrustBundle } from './bundle.js';
import {
  CA_FILES,
  CaDirectory,
  type CaState,
  type IssuedRecord,
  type RootEntry,
  type SigningMaterial,
  revocationListOf,
} from './ca-state.js';
import { withDirectoryLock, writeFileAtomic } from './files.js';
import { hashJoinToken, newJoinToken, pruneJoinTokens, redeemJoinToken } from './join-tokens.js';
import { BACKDATE_MS, createIntermediateCertificate, createLeafCertificate, createRootCertificate } from './profile.js';
import type { RevocationList } from './revocation.js';
import { SpiffeId, validateTrustDomain } from './spiffe-id.js';
import {
  certificatesToPem,
  type CryptoKeyPair,
  exportPrivateKeyPem,
  fingerprint,
  generateKeyPair,
  importKeyPairPem,
  importSigningKeyPem,
  toNodeCertificate,
  normalizeSerial,
  parseCertificatesPem,
  subjectAltNames,
  uriSans,
  x509,
} from './x509.js';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_SVID_TTL_MS = 3_600_000;
export const DEFAULT_MAX_SVID_TTL_MS = 24 * 3_600_000;
const SELF_SIGNED_ROOT_TTL_MS = 10 * 365 * 24 * 3_600_000;
const INTERMEDIATE_TTL_MS = 365 * 24 * 3_600_000;

/** How a caller proved the identity it asks a certificate for. */
export type IdentityProof =
  | { kind: 'join-token'; token: string }
  /** The caller already authenticated with a valid SVID for `id` (mTLS): renewal. */
  | { kind: 'authenticated'; id: SpiffeId };

export type RefusalReason =
  | 'unknown-token'
  | 'token-used'
  | 'token-expired'
  | 'bad-csr'
  | 'csr-san'
  | 'wrong-trust-domain'
  | 'identity-mismatch'
  | 'identity-revoked'
  | 'bad-ttl'
  | 'ca-expired';

const REFUSAL_HINTS: Record<RefusalReason, string> = {
  'unknown-token': 'the join token is not known to this CA (mistyped, from another mesh, or pruned after expiry)',
  'token-used': 'the join token was already used; tokens are single-use — create a new one with "trellis token create"',
  'token-expired': 'the join token expired; create a new one with "trellis token create"',
  'bad-csr': 'the certificate signing request is malformed or its signature does not verify',
  'csr-san': 'the CSR must carry exactly one URI SAN (the SPIFFE ID) and no other subject alternative names',
  'wrong-trust-domain': "the CSR's SPIFFE ID is not in this CA's trust domain",
  'identity-mismatch': 'the CSR asks for an identity other than the one the caller proved',
  'identity-revoked': 'this identity is revoked; lift the revocation with "trellis ca revoke --identity … --lift"',
  'bad-ttl': 'the requested lifetime is not allowed',
  'ca-expired': 'the signing CA is not valid now: rotate it with "trellis ca rotate --grace 0s"',
};

export class CaRefusedError extends TrellisError {
  readonly reason: RefusalReason;
  /** The identity concerned, when known (for the audit record). */
  readonly identity: string | undefined;

  constructor(reason: RefusalReason, detail?: string, identity?: string) {
    super('TRELLIS_CA_REFUSED', `certificate refused: ${REFUSAL_HINTS[reason]}${detail ? ` (${detail})` : ''}`, { reason });
    this.reason = reason;
    this.identity = identity;
  }
}

export interface CaOptions {
  /** Clock, for tests. */
  now?: () => Date;
  /** Where audit events go; default: audit.log in the CA directory. */
  audit?: AuditSink;
}

export interface InitOptions extends CaOptions {
  trustDomain?: string;
  /** An operator's root certificate and key: the CA becomes an intermediate under it. */
  rootCertPem?: string;
  rootKeyPem?: string;
  caTtlMs?: number;
  defaultSvidTtlMs?: number;
  maxSvidTtlMs?: number;
  actor?: string;
}

export interface RotateOptions {
  /** Time before the new root signs; default: see defaultGraceMs. */
  graceMs?: number;
  /** An operator root (PEM, with its chain) and key: the new signing CA is an intermediate under it. */
  rootCertPem?: string;
  rootKeyPem?: string;
  /** Required to move a CA that runs under an operator root to a self-signed root. */
  selfSigned?: boolean;
  caTtlMs?: number;
  actor?: string;
}

export interface IssuedSvid {
  id: SpiffeId;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Leaf first, then the intermediates up to (not including) the trust anchor. */
  chainPem: string;
  bundle: TrustBundle;
}

export interface CaStatus {
  dir: string;
  trustDomain: string;
  mode: CaState['mode'];
  signing: { subject: string; serial: string; notBefore: string; notAfter: string; fingerprint: string };
  roots: Array<{ subject: string; fingerprint: string; state: RootEntry['state']; notAfter: string; removeAfter?: string }>;
  pendingRotation?: { activateAt: string; rootFingerprint: string };
  bundleSequence: number;
  defaultSvidTtl: string;
  maxSvidTtl: string;
  revocations: { serials: number; identities: string[] };
  activeJoinTokens: number;
}

export class MeshCA {
  private readonly files: CaDirectory;
  private readonly now: () => Date;
  private readonly audit: AuditSink;

  private constructor(dir: string, options: CaOptions) {
    this.files = new CaDirectory(dir);
    this.now = options.now ?? (() => new Date());
    this.audit = options.audit ?? jsonlAuditSink(this.files.path(CA_FILES.audit));
  }

  get dir(): string {
    return this.files.dir;
  }

  /** Creates a CA in `dir`: a self-signed root, or an intermediate under the operator's root. */
  static async init(dir: string, options: InitOptions = {}): Promise<MeshCA> {
    const ca = new MeshCA(dir, options);
    const trustDomain = validateTrustDomain(options.trustDomain ?? DEFAULT_TRUST_DOMAIN);
    const defaultSvidTtlMs = options.defaultSvidTtlMs ?? DEFAULT_SVID_TTL_MS;
    const maxSvidTtlMs = options.maxSvidTtlMs ?? DEFAULT_MAX_SVID_TTL_MS;
    if (!(defaultSvidTtlMs > 0) || defaultSvidTtlMs > maxSvidTtlMs) {
      throw new TrellisError('TRELLIS_CA_TTL', `the default SVID lifetime (${formatDuration(defaultSvidTtlMs)}) must be positive and at most the maximum (${formatDuration(maxSvidTtlMs)})`, { exitCode: 2 });
    }
    if (options.caTtlMs !== undefined && !(options.caTtlMs > 0)) {
      throw new TrellisError('TRELLIS_CA_TTL', 'the CA lifetime (--ca-ttl) must be positive', { exitCode: 2 });
    }
    if (ca.files.exists()) {
      throw new TrellisError('TRELLIS_CA_EXISTS', `${dir} already holds a mesh CA; use another directory or remove it first`);
    }
    const created = !existsSync(dir);
    ca.files.ensure();
    try {
      await withDirectoryLock(dir, () => ca.initialize(trustDomain, defaultSvidTtlMs, maxSvidTtlMs, options));
    } catch (err) {
      // Leave nothing behind: a failed init must not look like a CA directory.
      if (created) rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return ca;
  }

  private async initialize(trustDomain: string, defaultSvidTtlMs: number, maxSvidTtlMs: number, options: InitOptions): Promise<void> {
    if (this.files.exists()) {
      throw new TrellisError('TRELLIS_CA_EXISTS', `${this.dir} already holds a mesh CA; use another directory or remove it first`);
    }
    const now = this.now();
    const material = await createSigningMaterial(trustDomain, now, options);
    const root = rootEntry(material.rootCertPem, 'active', now);
    const state: CaState = {
      version: 1,
      trustDomain,
      mode: options.rootCertPem === undefined ? 'self-signed' : 'intermediate',
      defaultSvidTtlMs,
      maxSvidTtlMs,
      bundleSequence: 1,
      roots: [root],
    };
    this.files.writeSigning(material);
    this.files.writeState(state);
    this.files.writeRevocations({ sequence: 0, serials: [], identities: [] });
    this.files.writeTokens({});
    this.writeBundleFiles(state);
    this.record({ type: 'ca.initialized', actor: options.actor ?? 'system', trustDomain, mode: state.mode, root: root.fingerprint });
  }

  static open(dir: string, options: CaOptions = {}): MeshCA {
    const ca = new MeshCA(dir, options);
    ca.files.readState();
    return ca;
  }

  async trustDomain(): Promise<string> {
    return this.transact((state) => state.trustDomain);
  }

  async bundle(): Promise<TrustBundle> {
    return this.transact((state) => bundleOf(state));
  }

  async revocations(): Promise<RevocationList> {
    return this.transact(() => revocationListOf(this.files.readRevocations()));
  }

  /** A single-use token bound to `identity`; only its hash is stored. */
  async createJoinToken(identity: SpiffeId, ttlMs: number, actor = 'system'): Promise<{ token: string; expiresAt: Date }> {
    if (!(ttlMs > 0)) throw new TrellisError('TRELLIS_CA_TTL', 'a join token needs a positive lifetime', { exitCode: 2 });
    return this.transact((state, now) => {
      if (!identity.memberOf(state.trustDomain)) {
        throw new TrellisError('TRELLIS_CA_TRUST_DOMAIN', `${identity.toString()} is not in this CA's trust domain ${state.trustDomain}`, { exitCode: 2 });
      }
      if (identity.isTrustDomainId) {
        throw new TrellisError('TRELLIS_BAD_SPIFFE_ID', `${identity.toString()} has no path: a workload identity needs one, e.g. spiffe://${state.trustDomain}/ns/default/sa/web`, { exitCode: 2 });
      }
      try {
        this.checkSigningCaValid(now);
      } catch (err) {
        throw new TrellisError('TRELLIS_CA_EXPIRED', `no join token created: ${(err as Error).message.replace(/^certificate refused: /, '')}`);
      }
      const { token, hash } = newJoinToken();
      const expiresAt = new Date(now.getTime() + ttlMs);
      const tokens = pruneJoinTokens(this.files.readTokens(), now);
      tokens[hash] = { identity: identity.toString(), createdAt: now.toISOString(), expiresAt: expiresAt.toISOString() };
      this.files.writeTokens(tokens);
      this.record({ type: 'token.created', actor, identity: identity.toString(), expiresAt: expiresAt.toISOString() });
      return { token, expiresAt };
    });
  }

  /** The identity a join token is bound to, without using it up (the holder may ask). */
  async joinTokenIdentity(token: string): Promise<SpiffeId> {
    return this.transact((_state, now) => {
      const record = this.files.readTokens()[hashJoinToken(token.trim())];
      const reason = !record ? 'unknown-token' : record.usedAt !== undefined ? 'token-used' : Date.parse(record.expiresAt) <= now.getTime() ? 'token-expired' : undefined;
      if (reason || !record) {
        const error = new CaRefusedError(reason ?? 'unknown-token', undefined, record?.identity);
        this.record({ type: 'svid.refused', actor: 'join-token', ...(record ? { identity: record.identity } : {}), reason: error.reason, message: error.message });
        throw error;
      }
      return SpiffeId.parse(record.identity);
    });
  }

  /**
   * Signs a PKCS#10 CSR for the identity the caller proved. Refusals throw CaRefusedError and are
   * audit-logged; a join token is consumed by any attempt that presents it.
   */
  async signCsr(csrPem: string, proof: IdentityProof, options: { ttlMs?: number; actor?: string } = {}): Promise<IssuedSvid> {
    const actor = options.actor ?? (proof.kind === 'authenticated' ? proof.id.toString() : 'join-token');
    const outcome = await this.transactAsync(async (state, now) => {
      let proven: string | undefined;
      try {
        // Before the token: an expired CA must not burn the caller's token.
        this.checkSigningCaValid(now);
        proven = this.proveIdentity(proof, now);
        const { id, publicKey } = await checkCsr(csrPem, state.trustDomain);
        if (id.toString() !== proven) throw new CaRefusedError('identity-mismatch', `proved ${proven}, CSR asks for ${id.toString()}`);
        if (revocationListOf(this.files.readRevocations()).isIdentityRevoked(proven)) throw new CaRefusedError('identity-revoked', proven);
        const ttlMs = options.ttlMs ?? state.defaultSvidTtlMs;
        if (!(ttlMs > 0) || ttlMs > state.maxSvidTtlMs) {
          throw new CaRefusedError('bad-ttl', `requested ${formatDuration(ttlMs)}, allowed up to ${formatDuration(state.maxSvidTtlMs)}`);
        }
        const issued = await this.issue(state, id, publicKey, ttlMs, now);
        this.record({ type: 'svid.issued', actor, identity: id.toString(), serial: issued.serial, notAfter: issued.notAfter.toISOString() });
        return { ok: true as const, issued };
      } catch (err) {
        if (!(err instanceof CaRefusedError)) throw err;
        const identity = err.identity ?? proven;
        this.record({ type: 'svid.refused', actor, ...(identity ? { identity } : {}), reason: err.reason, message: err.message });
        return { ok: false as const, error: err };
      }
    });
    if (!outcome.ok) throw outcome.error;
    return outcome.issued;
  }

  /** Revokes one certificate by serial number. */
  async revokeSerial(serial: string, actor = 'system'): Promise<RevocationList> {
    const wanted = normalizeSerial(serial);
    if (!/^[0-9a-f]{1,40}$/.test(wanted)) throw new TrellisError('TRELLIS_BAD_SERIAL', `"${serial}" is not a hexadecimal serial number`, { exitCode: 2 });
    return this.transact((_state, now) => {
      const file = this.files.readRevocations();
      if (!file.serials.some((entry) => entry.serial === wanted)) {
        const record = this.files.readIssued().find((entry) => normalizeSerial(entry.serial) === wanted);
        file.serials.push({
          serial: wanted,
          revokedAt: now.toISOString(),
          ...(record ? { identity: record.identity, notAfter: record.notAfter } : {}),
        });
        file.sequence += 1;
        this.saveRevocations(file, now);
        this.record({ type: 'revocation.added', actor, serial: wanted, ...(record ? { identity: record.identity } : {}) });
      }
      return revocationListOf(file);
    });
  }

  /**
   * Revokes an identity: every unexpired certificate issued for it, and any future request for
   * it until the revocation is lifted. Lifting unblocks new certificates only; the certificates
   * revoked here stay revoked.
   */
  async revokeIdentity(id: SpiffeId, actor = 'system'): Promise<RevocationList> {
    return this.transact((_state, now) => {
      const file = this.files.readRevocations();
      const identity = id.toString();
      const issued = this.files.readIssued().filter((entry) => Date.parse(entry.notAfter) > now.getTime());
      const known = new Set(file.serials.map((entry) => entry.serial));
      const serials = issued.filter((entry) => entry.identity === identity && !known.has(normalizeSerial(entry.serial)));
      for (const entry of serials) {
        file.serials.push({ serial: normalizeSerial(entry.serial), identity, revokedAt: now.toISOString(), notAfter: entry.notAfter });
      }
      if (!file.identities.some((entry) => entry.identity === identity)) file.identities.push({ identity, revokedAt: now.toISOString() });
      file.sequence += 1;
      this.saveRevocations(file, now);
      this.files.writeIssued(issued);
      this.record({ type: 'revocation.added', actor, identity, serials: serials.map((entry) => entry.serial) });
      return revocationListOf(file);
    });
  }

  async liftIdentityRevocation(id: SpiffeId, actor = 'system'): Promise<RevocationList> {
    return this.transact((_state, now) => {
      const file = this.files.readRevocations();
      const before = file.identities.length;
      file.identities = file.identities.filter((entry) => entry.identity !== id.toString());
      if (file.identities.length !== before) {
        file.sequence += 1;
        this.saveRevocations(file, now);
        this.record({ type: 'revocation.lifted', actor, identity: id.toString() });
      }
      return revocationListOf(file);
    });
  }

  /**
   * Starts a root rotation: new signing material is created now and its root joins the bundle;
   * it starts signing after `graceMs`, giving every workload time to learn the new root first.
   * With an operator root (PEM cert + key) the new signing CA is an intermediate under it.
   */
  async rotate(options: RotateOptions = {}): Promise<CaStatus> {
    await this.transactAsync(async (state, now) => {
      if (state.pending) {
        throw new TrellisError('TRELLIS_CA_ROTATION', `a rotation is already pending (activates at ${state.pending.activateAt}); wait for it to finish`);
      }
      if (state.mode === 'intermediate' && options.rootCertPem === undefined && !options.selfSigned) {
        throw new TrellisError(
          'TRELLIS_CA_ROTATION',
          'this CA signs under an operator root: give --root-cert and --root-key (the same root or a new one), or --self-signed to switch to a self-signed root',
          { exitCode: 2 },
        );
      }
      if (options.caTtlMs !== undefined && !(options.caTtlMs > 0)) throw new TrellisError('TRELLIS_CA_TTL', 'the CA lifetime must be positive', { exitCode: 2 });
      const graceMs = options.graceMs ?? this.defaultGraceMs(state, now);
      if (!(graceMs >= 0)) throw new TrellisError('TRELLIS_CA_ROTATION', 'the grace period must not be negative');
      const material = await createSigningMaterial(state.trustDomain, now, options);
      const newRoot = rootEntry(material.rootCertPem, 'pending', now);
      const activateAt = new Date(now.getTime() + graceMs).toISOString();
      this.files.writeSigning(material, CA_FILES.pending);
      state.pending = { activateAt, rootFingerprint: newRoot.fingerprint, mode: options.rootCertPem === undefined ? 'self-signed' : 'intermediate' };
      if (!state.roots.some((root) => root.fingerprint === newRoot.fingerprint)) {
        state.roots.push(newRoot);
        state.bundleSequence += 1;
      }
      this.record({ type: 'rotation.started', actor: options.actor ?? 'system', root: newRoot.fingerprint, activateAt });
      // With no grace the new material signs immediately.
      this.applyDueRotation(state, now);
    });
    return this.status();
  }

  /**
   * Long enough for every workload holding a current SVID to renew once (renewal happens by
   * half life) and so learn the new root before it signs: the longest lifetime among the
   * unexpired SVIDs, or the default lifetime when there are none.
   */
  private defaultGraceMs(state: CaState, now: Date): number {
    const lifetimes = this.files
      .readIssued()
      .filter((record) => Date.parse(record.notAfter) > now.getTime())
      .map((record) => Date.parse(record.notAfter) - Date.parse(record.notBefore));
    return Math.max(state.defaultSvidTtlMs, ...lifetimes);
  }

  /** Applies any rotation step that is due. The control plane calls this periodically. */
  async tick(): Promise<void> {
    await this.transact(() => undefined);
  }

  async status(): Promise<CaStatus> {
    return this.transact((state, now) => {
      const signing = this.files.readSigning();
      const caCert = parseCertificatesPem(signing.caCertPem, CA_FILES.caCert)[0] as x509.X509Certificate;
      const revocations = this.files.readRevocations();
      const tokens = Object.values(this.files.readTokens()).filter((t) => t.usedAt === undefined && Date.parse(t.expiresAt) > now.getTime());
      return {
        dir: this.dir,
        trustDomain: state.trustDomain,
        mode: state.mode,
        signing: {
          subject: caCert.subject,
          serial: caCert.serialNumber,
          notBefore: caCert.notBefore.toISOString(),
          notAfter: caCert.notAfter.toISOString(),
          fingerprint: fingerprint(caCert),
        },
        roots: state.roots.map((root) => {
          const cert = parseCertificatesPem(root.certPem, 'bundle root')[0] as x509.X509Certificate;
          return {
            subject: cert.subject,
            fingerprint: root.fingerprint,
            state: root.state,
            notAfter: cert.notAfter.toISOString(),
            ...(root.removeAfter ? { removeAfter: root.removeAfter } : {}),
          };
        }),
        ...(state.pending ? { pendingRotation: { activateAt: state.pending.activateAt, rootFingerprint: state.pending.rootFingerprint } } : {}),
        bundleSequence: state.bundleSequence,
        defaultSvidTtl: formatDuration(state.defaultSvidTtlMs),
        maxSvidTtl: formatDuration(state.maxSvidTtlMs),
        revocations: { serials: revocations.serials.length, identities: revocations.identities.map((entry) => entry.identity) },
        activeJoinTokens: tokens.length,
      };
    });
  }

  // ---- internals ----

  private checkSigningCaValid(now: Date): void {
    const caCert = parseCertificatesPem(this.files.readSigning().caCertPem, CA_FILES.caCert)[0] as x509.X509Certificate;
    if (now.getTime() >= caCert.notAfter.getTime() || now.getTime() < caCert.notBefore.getTime()) {
      throw new CaRefusedError('ca-expired', `valid ${caCert.notBefore.toISOString()} – ${caCert.notAfter.toISOString()}`);
    }
  }

  private proveIdentity(proof: IdentityProof, now: Date): string {
    if (proof.kind === 'authenticated') return proof.id.toString();
    const tokens = this.files.readTokens();
    const result = redeemJoinToken(tokens, proof.token.trim(), now);
    if (result.ok) this.files.writeTokens(tokens);
    if (!result.ok) throw new CaRefusedError(result.reason, result.identity ? `token for ${result.identity}` : undefined, result.identity);
    return result.identity;
  }

  private async issue(state: CaState, id: SpiffeId, publicKey: x509.PublicKey, ttlMs: number, now: Date): Promise<IssuedSvid> {
    const signing = this.files.readSigning();
    const chain = parseCertificatesPem(signing.certChainPem, CA_FILES.certChain);
    const caCert = parseCertificatesPem(signing.caCertPem, CA_FILES.caCert)[0] as x509.X509Certificate;
    const keys = await importKeyPairPem(signing.caKeyPem, CA_FILES.caKey);
    const notBefore = new Date(Math.max(now.getTime() - BACKDATE_MS, caCert.notBefore.getTime()));
    // Never beyond the signing CA's own expiry.
    const notAfter = new Date(Math.min(now.getTime() + ttlMs, caCert.notAfter.getTime()));
    const leaf = await createLeafCertificate({ id, publicKey, notBefore, notAfter, issuerCert: caCert, issuerKey: keys.privateKey });

    const rootFingerprint = fingerprint(parseCertificatesPem(signing.rootCertPem, CA_FILES.rootCert)[0] as x509.X509Certificate);
    const root = state.roots.find((entry) => entry.fingerprint === rootFingerprint);
    if (root && (root.lastLeafExpiry === undefined || Date.parse(root.lastLeafExpiry) < leaf.notAfter.getTime())) {
      root.lastLeafExpiry = leaf.notAfter.toISOString();
    }
    const record: IssuedRecord = {
      serial: leaf.serialNumber,
      identity: id.toString(),
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
      root: rootFingerprint,
      issuedAt: now.toISOString(),
    };
    this.files.appendIssued(record);
    // The chain sent with the leaf stops below the trust anchor, which peers hold in their bundle.
    const intermediates = chain.filter((cert) => fingerprint(cert) !== rootFingerprint);
    return { id, serial: leaf.serialNumber, notBefore: leaf.notBefore, notAfter: leaf.notAfter, chainPem: certificatesToPem([leaf, ...intermediates]), bundle: bundleOf(state) };
  }

  private applyDueRotation(state: CaState, now: Date): boolean {
    let changed = false;
    const pending = state.pending;
    if (pending && Date.parse(pending.activateAt) <= now.getTime()) {
      const material = this.files.readSigning(CA_FILES.pending);
      const previous = state.roots.find((root) => root.state === 'active');
      this.files.writeSigning(material);
      rmSync(this.files.path(CA_FILES.pending), { recursive: true, force: true });
      for (const root of state.roots) {
        if (root.fingerprint === pending.rootFingerprint) {
          root.state = 'active';
        } else if (root.state === 'active') {
          // Keep the old root trusted until the last SVID it signed expires.
          root.state = 'retiring';
          root.removeAfter = new Date(Math.max(now.getTime(), Date.parse(root.lastLeafExpiry ?? now.toISOString()))).toISOString();
        }
      }
      state.mode = pending.mode;
      delete state.pending;
      changed = true;
      this.record({ type: 'rotation.activated', actor: 'system', root: pending.rootFingerprint, ...(previous ? { previousRoot: previous.fingerprint } : {}) });
    }
    const expired = state.roots.filter((root) => root.state === 'retiring' && Date.parse(root.removeAfter ?? '') <= now.getTime());
    if (expired.length > 0) {
      state.roots = state.roots.filter((root) => !expired.includes(root));
      state.bundleSequence += 1;
      changed = true;
      for (const root of expired) this.record({ type: 'rotation.root-removed', actor: 'system', root: root.fingerprint });
    }
    return changed;
  }

  private saveRevocations(file: ReturnType<CaDirectory['readRevocations']>, now: Date): void {
    // Entries for certificates that have expired no longer matter.
    file.serials = file.serials.filter((entry) => entry.notAfter === undefined || Date.parse(entry.notAfter) > now.getTime());
    this.files.writeRevocations(file);
  }

  /** bundle.json (SPIFFE format) and bundle.pem, for operators and workloads outside the mesh. */
  private writeBundleFiles(state: CaState): void {
    const bundle = bundleOf(state);
    writeFileAtomic(this.files.path(CA_FILES.bundleJson), `${JSON.stringify(bundle.toSpiffeJson(), null, 2)}\n`);
    writeFileAtomic(this.files.path(CA_FILES.bundlePem), bundle.toPem());
  }

  private transact<T>(fn: (state: CaState, now: Date) => T): Promise<T> {
    return this.transactAsync(async (state, now) => fn(state, now));
  }

  /** Lock, load, apply due rotation steps, run `fn`, save the state (and bundle files) if changed. */
  private async transactAsync<T>(fn: (state: CaState, now: Date) => Promise<T>): Promise<T> {
    return withDirectoryLock(this.dir, async () => {
      const state = this.files.readState();
      const before = JSON.stringify(state);
      const now = this.now();
      this.applyDueRotation(state, now);
      try {
        return await fn(state, now);
      } finally {
        if (JSON.stringify(state) !== before) {
          this.files.writeState(state);
          this.writeBundleFiles(state);
        }
      }
    });
  }

  private record(event: Omit<IdentityAuditEvent, 'time'>): void {
    this.audit({ time: this.now().toISOString(), ...event } as IdentityAuditEvent);
  }
}

function bundleOf(state: CaState): TrustBundle {
  const roots = state.roots.flatMap((root) => parseCertificatesPem(root.certPem, 'bundle root'));
  return new TrustBundle(state.trustDomain, roots, state.bundleSequence);
}

function rootEntry(rootCertPem: string, state: RootEntry['state'], now: Date): RootEntry {
  const cert = parseCertificatesPem(rootCertPem, CA_FILES.rootCert)[0] as x509.X509Certificate;
  return { certPem: cert.toString('pem'), fingerprint: fingerprint(cert), state, addedAt: now.toISOString() };
}

/** New signing material: a self-signed root, or an intermediate under an operator's root. */
async function createSigningMaterial(
  trustDomain: string,
  now: Date,
  options: { rootCertPem?: string; rootKeyPem?: string; caTtlMs?: number },
): Promise<SigningMaterial> {
  const keys = await generateKeyPair();
  const caKeyPem = await exportPrivateKeyPem(keys.privateKey);
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z');
  if (options.rootCertPem === undefined && options.rootKeyPem === undefined) {
    const root = await createRootCertificate({
      trustDomain,
      keys,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + (options.caTtlMs ?? SELF_SIGNED_ROOT_TTL_MS)),
      commonName: `Trellis Root CA ${stamp}`,
    });
    const pem = root.toString('pem') + '\n';
    return { caCertPem: pem, caKeyPem, rootCertPem: pem, certChainPem: pem };
  }
  if (options.rootCertPem === undefined || options.rootKeyPem === undefined) {
    throw new TrellisError('TRELLIS_CA_ROOT', 'an operator root needs both the certificate (--root-cert) and its key (--root-key)', { exitCode: 2 });
  }
  // The file holds the signing certificate first, then its chain up to a self-signed root.
  const [signer, ...chain] = parseCertificatesPem(options.rootCertPem, 'root certificate');
  if (!signer) throw new TrellisError('TRELLIS_CA_ROOT', 'the root certificate file holds no certificate');
  const anchor = chain[chain.length - 1] ?? signer;
  const signerKey = await importSigningKeyPem(options.rootKeyPem, 'root key', 'operator');
  await checkOperatorRoot(signer, chain, signerKey.keys, now);
  const ttl = options.caTtlMs ?? INTERMEDIATE_TTL_MS;
  const intermediate = await createIntermediateCertificate({
    trustDomain,
    keys,
    notBefore: new Date(Math.max(now.getTime() - BACKDATE_MS, signer.notBefore.getTime())),
    notAfter: new Date(Math.min(now.getTime() + ttl, ...[signer, ...chain].map((cert) => cert.notAfter.getTime()))),
    commonName: `Trellis Intermediate CA ${stamp}`,
    issuerCert: signer,
    issuerKey: signerKey.keys.privateKey,
    issuerAlgorithm: signerKey.algorithm,
  });
  const intermediatePem = intermediate.toString('pem') + '\n';
  return {
    caCertPem: intermediatePem,
    caKeyPem,
    rootCertPem: anchor.toString('pem') + '\n',
    certChainPem: intermediatePem + certificatesToPem([signer, ...chain]),
  };
}

/**
 * Checks an operator's signing certificate, its chain and its key: a valid CA allowed to sign
 * an intermediate, each certificate issued by the next, ending in a self-signed root (TLS peers
 * need a complete chain to a trust anchor).
 */
async function checkOperatorRoot(signer: x509.X509Certificate, chain: x509.X509Certificate[], keys: CryptoKeyPair, now: Date): Promise<void> {
  const constraints = signer.getExtension(x509.BasicConstraintsExtension);
  const keyUsage = signer.getExtension(x509.KeyUsagesExtension);
  if (constraints?.ca !== true) throw new TrellisError('TRELLIS_CA_ROOT', `root certificate ${signer.subject} is not a CA (basicConstraints cA=true)`);
  if (keyUsage && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new TrellisError('TRELLIS_CA_ROOT', `root certificate ${signer.subject} lacks keyCertSign`);
  }
  if (constraints.pathLength !== undefined && constraints.pathLength < 1) {
    throw new TrellisError('TRELLIS_CA_ROOT', `root certificate ${signer.subject} has pathLenConstraint ${constraints.pathLength}: it cannot sign an intermediate CA`);
  }
  for (const cert of [signer, ...chain]) {
    if (cert.notAfter.getTime() <= now.getTime() || cert.notBefore.getTime() > now.getTime()) {
      throw new TrellisError('TRELLIS_CA_ROOT', `certificate ${cert.subject} is not valid now (valid ${cert.notBefore.toISOString()} – ${cert.notAfter.toISOString()})`);
    }
  }
  const links = [signer, ...chain].map(toNodeCertificate);
  for (let i = 0; i + 1 < links.length; i++) {
    const [child, parent] = [links[i], links[i + 1]] as [NodeX509, NodeX509];
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw new TrellisError('TRELLIS_CA_ROOT', `in the root certificate file, certificate ${i + 1} (${child.subject.replace(/\n/g, ', ')}) is not issued by certificate ${i + 2}`);
    }
  }
  const top = links[links.length - 1] as NodeX509;
  if (!top.checkIssued(top) || !top.verify(top.publicKey)) {
    throw new TrellisError(
      'TRELLIS_CA_ROOT',
      `the last certificate in the root certificate file (${top.subject.replace(/\n/g, ', ')}) is not self-signed: append its issuers up to the self-signed root, so peers can build a complete chain`,
    );
  }
  const certKey = Buffer.from(signer.publicKey.rawData);
  const givenKey = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  if (!createPublicKey({ key: certKey, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' }).equals(givenKey)) {
    throw new TrellisError('TRELLIS_CA_ROOT', 'the root key does not belong to the root certificate');
  }
}

/** Validates a CSR: signature (proof of possession), exactly one URI SAN, a SPIFFE ID in our domain. */
async function checkCsr(csrPem: string, trustDomain: string): Promise<{ id: SpiffeId; publicKey: x509.PublicKey }> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new CaRefusedError('bad-csr', (err as Error).message);
  }
  if (!(await csr.verify().catch(() => false))) throw new CaRefusedError('bad-csr', 'signature does not verify');
  const names = subjectAltNames(csr);
  const uris = uriSans(csr);
  if (uris.length !== 1 || names.length !== 1) {
    throw new CaRefusedError('csr-san', `found ${uris.length} URI SAN(s) among ${names.length} name(s)`);
  }
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(uris[0] as string);
  } catch (err) {
    throw new CaRefusedError('csr-san', (err as Error).message);
  }
  if (!id.memberOf(trustDomain)) throw new CaRefusedError('wrong-trust-domain', `${id.toString()} is not in ${trustDomain}`);
  return { id, publicKey: csr.publicKey };
}

