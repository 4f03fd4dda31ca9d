/**
 * Join tokens: the first proof of identity a workload can present to the CA. A token is random,
 * single-use, expiring and bound to one SPIFFE ID; only its SHA-256 hash is stored, so a leaked
 * token table cannot be replayed.
 */
import { createHash, randomBytes } from 'node:crypto';

export const JOIN_TOKEN_PREFIX = 'tjt_';

export interface JoinTokenRecord {
  identity: string;
  createdAt: string;
  expiresAt: string;
  usedAt?: string;
}

/** Keyed by the token's hash. */
export type JoinTokenTable = Record<string, JoinTokenRecord>;

export type TokenRefusal = 'unknown-token' | 'token-used' | 'token-expired';

export function newJoinToken(): { token: string; hash: string } {
  const token = `${JOIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashJoinToken(token) };
}

export function hashJoinToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Looks a token up and marks it used. A token is consumed by any redemption attempt that finds
 * it, even one refused later (say, for a CSR naming another identity): a token that was shown
 * to the wrong party must be treated as burnt.
 */
export function redeemJoinToken(
  table: JoinTokenTable,
  token: string,
  now: Date,
): { ok: true; identity: string } | { ok: false; reason: TokenRefusal; identity?: string } {
  const record = table[hashJoinToken(token)];
  if (!record) return { ok: false, reason: 'unknown-token' };
  if (record.usedAt !== undefined) return { ok: false, reason: 'token-used', identity: record.identity };
  if (now.getTime() >= Date.parse(record.expiresAt)) return { ok: false, reason: 'token-expired', identity: record.identity };
  record.usedAt = now.toISOString();
  return { ok: true, identity: record.identity };
}

/** Drops records that expired more than a day ago; recent ones stay so reuse is reported as such. */
export function pruneJoinTokens(table: JoinTokenTable, now: Date): JoinTokenTable {
  const keepAfter = now.getTime() - 24 * 3_600_000;
  return Object.fromEntries(Object.entries(table).filter(([, record]) => Date.parse(record.expiresAt) > keepAfter));
}
