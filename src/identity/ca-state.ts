/**
 * The CA directory: its files and their JSON state. The signing material uses Istio's plug-in
 * CA file names (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) so operators can
 * inspect it with the tools they know. Keys are written 0600 and the directory 0700.
 */
import { appendFileSync, chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrellisError } from '../api/errors.js';
import { readFileIfExists, writeFileAtomic } from './files.js';
import type { JoinTokenTable } from './join-tokens.js';
import { RevocationList } from './revocation.js';

export const CA_FILES = {
  state: 'state.json',
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  rootCert: 'root-cert.pem',
  certChain: 'cert-chain.pem',
  bundleJson: 'bundle.json',
  bundlePem: 'bundle.pem',
  tokens: 'tokens.json',
  revocations: 'revocations.json',
  issued: 'issued.jsonl',
  audit: 'audit.log',
  pending: 'pending',
} as const;

export type RootState = 'active' | 'pending' | 'retiring';

export interface RootEntry {
  certPem: string;
  fingerprint: string;
  state: RootState;
  addedAt: string;
  /** Latest expiry among the SVIDs issued under this root: it must stay trusted until then. */
  lastLeafExpiry?: string;
  /** Set when the root retires: the time after which it leaves the bundle. */
  removeAfter?: string;
}

export interface CaState {
  version: 1;
  trustDomain: string;
  mode: 'self-signed' | 'intermediate';
  defaultSvidTtlMs: number;
  maxSvidTtlMs: number;
  bundleSequence: number;
  roots: RootEntry[];
  /** A rotation announced but not yet signing: its material is in pending/. */
  pending?: { activateAt: string; rootFingerprint: string; mode: 'self-signed' | 'intermediate' };
}

export interface RevokedSerial {
  serial: string;
  identity?: string;
  revokedAt: string;
  /** After this the certificate is expired anyway and the entry can go. */
  notAfter?: string;
}

export interface RevocationFile {
  sequence: number;
  serials: RevokedSerial[];
  identities: Array<{ identity: string; revokedAt: string }>;
}

export interface IssuedRecord {
  serial: string;
  identity: string;
  notBefore: string;
  notAfter: string;
  root: string;
  issuedAt: string;
}

/** Signing material as PEM text: the CA certificate, its key, and the chain up to the root. */
export interface SigningMaterial {
  caCertPem: string;
  caKeyPem: string;
  rootCertPem: string;
  certChainPem: string;
}

export class CaDirectory {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  exists(): boolean {
    return readFileIfExists(this.path(CA_FILES.state)) !== undefined;
  }

  ensure(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
  }

  readState(): CaState {
    const text = readFileIfExists(this.path(CA_FILES.state));
    if (text === undefined) {
      throw new TrellisError('TRELLIS_CA_NOT_FOUND', `no mesh CA in ${this.dir}: create one with "trellis ca init --dir ${this.dir}"`);
    }
    const state = parseJson<CaState>(text, this.path(CA_FILES.state));
    if (state.version !== 1 || typeof state.trustDomain !== 'string' || !Array.isArray(state.roots)) {
      throw new TrellisError('TRELLIS_CA_STATE', `${this.path(CA_FILES.state)} is not a Trellis CA state file (version 1)`);
    }
    return state;
  }

  writeState(state: CaState): void {
    writeFileAtomic(this.path(CA_FILES.state), `${JSON.stringify(state, null, 2)}\n`, 0o600);
  }

  readSigning(subdir = ''): SigningMaterial {
    const read = (name: string): string => {
      const path = this.path(join(subdir, name));
      try {
        return readFileSync(path, 'utf8');
      } catch (err) {
        throw new TrellisError('TRELLIS_CA_STATE', `cannot read ${path}: ${(err as Error).message}`);
      }
    };
    return {
      caCertPem: read(CA_FILES.caCert),
      caKeyPem: read(CA_FILES.caKey),
      rootCertPem: read(CA_FILES.rootCert),
      certChainPem: read(CA_FILES.certChain),
    };
  }

  writeSigning(material: SigningMaterial, subdir = ''): void {
    writeFileAtomic(this.path(join(subdir, CA_FILES.caKey)), material.caKeyPem, 0o600);
    writeFileAtomic(this.path(join(subdir, CA_FILES.caCert)), material.caCertPem);
    writeFileAtomic(this.path(join(subdir, CA_FILES.rootCert)), material.rootCertPem);
    writeFileAtomic(this.path(join(subdir, CA_FILES.certChain)), material.certChainPem);
  }

  readTokens(): JoinTokenTable {
    const text = readFileIfExists(this.path(CA_FILES.tokens));
    return text === undefined ? {} : parseJson<JoinTokenTable>(text, this.path(CA_FILES.tokens));
  }

  writeTokens(table: JoinTokenTable): void {
    writeFileAtomic(this.path(CA_FILES.tokens), `${JSON.stringify(table, null, 2)}\n`, 0o600);
  }

  readRevocations(): RevocationFile {
    const text = readFileIfExists(this.path(CA_FILES.revocations));
    return text === undefined ? { sequence: 0, serials: [], identities: [] } : parseJson<RevocationFile>(text, this.path(CA_FILES.revocations));
  }

  writeRevocations(file: RevocationFile): void {
    writeFileAtomic(this.path(CA_FILES.revocations), `${JSON.stringify(file, null, 2)}\n`, 0o644);
  }

  readIssued(): IssuedRecord[] {
    const text = readFileIfExists(this.path(CA_FILES.issued)) ?? '';
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line, index) => parseJson<IssuedRecord>(line, `${this.path(CA_FILES.issued)} line ${index + 1}`));
  }

  appendIssued(record: IssuedRecord): void {
    appendFileSync(this.path(CA_FILES.issued), `${JSON.stringify(record)}\n`, { mode: 0o600 });
  }

  writeIssued(records: readonly IssuedRecord[]): void {
    writeFileAtomic(this.path(CA_FILES.issued), records.map((record) => `${JSON.stringify(record)}\n`).join(''), 0o600);
  }
}

export function revocationListOf(file: RevocationFile): RevocationList {
  return new RevocationList(
    file.sequence,
    file.serials.map((entry) => entry.serial),
    file.identities.map((entry) => entry.identity),
  );
}

function parseJson<T>(text: string, where: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new TrellisError('TRELLIS_CA_STATE', `${where} is not valid JSON: ${(err as Error).message}`);
  }
}
