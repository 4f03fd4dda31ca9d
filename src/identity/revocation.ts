/**
 * Revocations: certificate serial numbers that must no longer be accepted, and SPIFFE IDs that
 * are blocked entirely (every certificate for them, existing or future). Serials are random
 * 128-bit values (see x509.randomSerial), so they identify a certificate without its issuer.
 */
import { normalizeSerial } from './x509.js';

export interface RevocationListJson {
  sequence: number;
  serials: string[];
  identities: string[];
}

export class RevocationList {
  readonly sequence: number;
  private readonly serials: ReadonlySet<string>;
  private readonly identities: ReadonlySet<string>;

  constructor(sequence = 0, serials: Iterable<string> = [], identities: Iterable<string> = []) {
    this.sequence = sequence;
    this.serials = new Set([...serials].map(normalizeSerial));
    this.identities = new Set(identities);
  }

  static readonly EMPTY = new RevocationList();

  static fromJson(json: RevocationListJson): RevocationList {
    return new RevocationList(json.sequence, json.serials, json.identities);
  }

  toJson(): RevocationListJson {
    return { sequence: this.sequence, serials: [...this.serials].sort(), identities: [...this.identities].sort() };
  }

  isSerialRevoked(serial: string): boolean {
    return this.serials.has(normalizeSerial(serial));
  }

  isIdentityRevoked(spiffeId: string): boolean {
    return this.identities.has(spiffeId);
  }

  get size(): number {
    return this.serials.size + this.identities.size;
  }
}
