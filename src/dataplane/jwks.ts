/**
 * The I/O side of JWT verification: fetching, validating and caching the JSON Web Key Sets
 * that RequestAuthentication rules name with `jwksUri` (http, https, and file:// for offline
 * use). The pure verifier (src/policy/jwt.ts) calls `getKeySet` through its `JwksProvider`
 * interface.
 *
 * Fail closed: a fetch that fails, times out, returns something other than 200, is larger than
 * the bound, or is not a usable public key set never becomes an empty key set; the caller gets
 * an error and the token is rejected (`jwks_unavailable`). A key set that was fetched
 * successfully before keeps being used for a bounded time (`maxStaleMs`) while refreshes fail,
 * so an unreachable issuer does not take every request down at once (fail static, as the proxy
 * does with its snapshot); after that bound, requests fail closed.
 */
import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import type { JSONWebKeySet } from 'jose';
import { parseDuration } from '../api/duration.js';
import { TrellisError } from '../api/errors.js';
import type { JwksProvider, JwtRule } from '../policy/jwt.js';

export interface JwksFetchOptions {
  /** Whole-exchange deadline (connect, response, body). Default 5 s, Istio's default `timeout`. */
  readonly timeoutMs?: number | undefined;
  /** Largest accepted document. Default 512 KiB. */
  readonly maxBytes?: number | undefined;
  /** Extra trusted CA certificates (PEM) for https, in addition to the system store. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[] | undefined;
}

export interface JwksCacheOptions extends JwksFetchOptions {
  /** How long a fetched key set is used before it is fetched again. Default 20 min (Istio's refresh interval). */
  readonly ttlMs?: number | undefined;
  /** Minimum time between refreshes forced by an unknown `kid`. Default 30 s. */
  readonly refreshCooldownMs?: number | undefined;
  /** After a failed fetch, further fetches of that URI wait this long (calls fail fast meanwhile). Default 5 s. */
  readonly retryAfterFailureMs?: number | undefined;
  /** How long past its TTL a key set may still be used while refreshes fail. Default 20 min. */
  readonly maxStaleMs?: number | undefined;
  /** The clock, in milliseconds; default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

export const JWKS_DEFAULTS = {
  timeoutMs: 5_000,
  maxBytes: 512 * 1024,
  ttlMs: 20 * 60_000,
  refreshCooldownMs: 30_000,
  retryAfterFailureMs: 5_000,
  maxStaleMs: 20 * 60_000,
} as const;

/** A URI for messages and logs: no credentials, no query. */
function redact(uri: string): string {
  try {
    const url = new URL(uri);
    return url.protocol === 'file:' ? url.href : `${url.origin}${url.pathname}`;
  } catch {
    return '(invalid URI)';
  }
}

function fetchError(uri: string, message: string, cause?: unknown): TrellisError {
  return new TrellisError('TRELLIS_JWKS_FETCH_FAILED', `fetching the JWKS ${redact(uri)} failed: ${message}`, { uri: redact(uri) }, cause === undefined ? undefined : { cause });
}

function timeoutError(uri: string, timeoutMs: number): TrellisError {
  return new TrellisError('TRELLIS_JWKS_TIMEOUT', `fetching the JWKS ${redact(uri)} took longer than ${timeoutMs} ms; check that the issuer is reachable from the proxy or raise the rule's timeout`, { uri: redact(uri), timeoutMs });
}

function tooLargeError(uri: string, maxBytes: number): TrellisError {
  return new TrellisError('TRELLIS_JWKS_TOO_LARGE', `the JWKS ${redact(uri)} is larger than ${maxBytes} bytes`, { uri: redact(uri), maxBytes });
}

function invalidError(uri: string, message: string): TrellisError {
  return new TrellisError('TRELLIS_JWKS_INVALID', `the JWKS ${redact(uri)} is not a usable public key set: ${message}`, { uri: redact(uri) });
}

/** Members that only private or symmetric JWKs carry. */
const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];

/**
 * Checks that a parsed document is a JWKS of public keys: `{"keys": [...]}`, at least one key,
 * every key an object with a string `kty`, no private or symmetric key material (a JWKS that
 * publishes a secret is a configuration error, and HMAC algorithms are never accepted anyway).
 */
export function validateJwks(uri: string, value: unknown): JSONWebKeySet {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidError(uri, 'expected a JSON object with a "keys" array');
  const keys = (value as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw invalidError(uri, 'expected a JSON object with a "keys" array');
  if (keys.length === 0) throw invalidError(uri, 'the "keys" array is empty');
  for (const [index, key] of keys.entries()) {
    if (typeof key !== 'object' || key === null || Array.isArray(key)) throw invalidError(uri, `keys[${index}] is not an object`);
    const record = key as Record<string, unknown>;
    if (typeof record['kty'] !== 'string') throw invalidError(uri, `keys[${index}] has no "kty"`);
    if (record['kty'] === 'oct') throw invalidError(uri, `keys[${index}] is a symmetric key; only public keys may be published`);
    const secret = SECRET_MEMBERS.find((member) => Object.hasOwn(record, member));
    if (secret !== undefined) throw invalidError(uri, `keys[${index}] contains private key material ("${secret}")`);
  }
  return value as JSONWebKeySet;
}

function parseJwks(uri: string, body: Buffer): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalidError(uri, 'the document is not JSON');
  }
  return validateJwks(uri, parsed);
}

/** Fetches and validates one JWKS document. Rejects with a TrellisError; never resolves empty. */
export async function fetchJwks(uri: string, options: JwksFetchOptions = {}): Promise<JSONWebKeySet> {
  const timeoutMs = options.timeoutMs ?? JWKS_DEFAULTS.timeoutMs;
  const maxBytes = options.maxBytes ?? JWKS_DEFAULTS.maxBytes;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw fetchError(uri, 'not an absolute URI');
  }
  switch (url.protocol) {
    case 'file:':
      return parseJwks(uri, await readJwksFile(url, uri, timeoutMs, maxBytes));
    case 'http:':
    case 'https:':
      return parseJwks(uri, await httpGet(url, uri, timeoutMs, maxBytes, options.ca));
    default:
      throw fetchError(uri, `unsupported scheme "${url.protocol}" (use https://, http:// or file://)`);
  }
}

async function readJwksFile(url: URL, uri: string, timeoutMs: number, maxBytes: number): Promise<Buffer> {
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (err) {
    throw fetchError(uri, 'not a local file URI', err);
  }
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const info = await stat(path);
    if (!info.isFile()) throw fetchError(uri, 'not a regular file');
    if (info.size > maxBytes) throw tooLargeError(uri, maxBytes);
    const body = await readFile(path, { signal });
    if (body.length > maxBytes) throw tooLargeError(uri, maxBytes);
    return body;
  } catch (err) {
    if (err instanceof TrellisError) throw err;
    if (signal.aborted) throw timeoutError(uri, timeoutMs);
    const code = (err as NodeJS.ErrnoException).code;
    const text = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code ?? String(err);
    throw fetchError(uri, text, err);
  }
}

function httpGet(url: URL, uri: string, timeoutMs: number, maxBytes: number, ca: JwksFetchOptions['ca']): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    const finish = (err: TrellisError | null, body?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        request.destroy();
        reject(err);
      } else {
        resolve(body ?? Buffer.alloc(0));
      }
    };
    const requestOptions: https.RequestOptions = {
      method: 'GET',
      // One short exchange every TTL: no pooled connection is kept open.
      agent: false,
      headers: { accept: 'application/json, application/jwk-set+json', 'user-agent': 'trellis-jwks' },
    };
    if (url.protocol === 'https:' && ca !== undefined) {
      requestOptions.ca = typeof ca === 'string' || Buffer.isBuffer(ca) ? ca : [...ca];
    }
    const request = (url.protocol === 'https:' ? https : http).request(url, requestOptions, (response) => {
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        response.resume();
        // Redirects are not followed: the configured URI is the one that is trusted.
        finish(fetchError(uri, `HTTP status ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`));
        return;
      }
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        finish(tooLargeError(uri, maxBytes));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          finish(tooLargeError(uri, maxBytes));
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () => finish(null, Buffer.concat(chunks)));
      response.on('error', (err) => finish(fetchError(uri, err.message, err)));
      // After 'end' this is a no-op; before it, the peer closed mid-body.
      response.on('close', () => finish(fetchError(uri, 'the connection closed before the response was complete')));
    });
    const timer = setTimeout(() => finish(timeoutError(uri, timeoutMs)), timeoutMs);
    request.on('error', (err) => finish(fetchError(uri, err.message, err)));
    request.end();
  });
}

// ---------------------------------------------------------------------------------------------

interface CacheEntry {
  /** The last key set fetched successfully, and when. */
  set?: JSONWebKeySet;
  fetchedAt: number;
  inflight?: Promise<JSONWebKeySet>;
  lastFailure?: { readonly at: number; readonly error: TrellisError };
  lastForcedRefresh: number;
}

/**
 * A `JwksProvider` that fetches each `jwksUri` at most once per TTL, shares one fetch between
 * concurrent callers, refreshes early on an unknown `kid` at most once per cool-down, and
 * fails closed.
 */
export class JwksCache implements JwksProvider {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly options: JwksCacheOptions;
  private readonly now: () => number;

  constructor(options: JwksCacheOptions = {}) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  async getKeySet(rule: JwtRule, { forceRefresh }: { readonly forceRefresh: boolean }): Promise<JSONWebKeySet> {
    const uri = rule.jwksUri;
    if (uri === undefined || uri === '') {
      throw new TrellisError('TRELLIS_JWKS_FETCH_FAILED', `the rule for issuer "${rule.issuer}" has neither jwks nor jwksUri; set one of them`, { issuer: rule.issuer });
    }
    const timeoutMs = rule.timeout !== undefined ? parseDuration(rule.timeout) : (this.options.timeoutMs ?? JWKS_DEFAULTS.timeoutMs);
    const ttl = this.options.ttlMs ?? JWKS_DEFAULTS.ttlMs;
    const maxStale = this.options.maxStaleMs ?? JWKS_DEFAULTS.maxStaleMs;
    const cooldown = this.options.refreshCooldownMs ?? JWKS_DEFAULTS.refreshCooldownMs;
    const retryAfter = this.options.retryAfterFailureMs ?? JWKS_DEFAULTS.retryAfterFailureMs;

    let entry = this.entries.get(uri);
    if (!entry) {
      entry = { fetchedAt: 0, lastForcedRefresh: Number.NEGATIVE_INFINITY };
      this.entries.set(uri, entry);
    }
    if (entry.inflight) return entry.inflight;

    const now = this.now();
    const age = now - entry.fetchedAt;
    const fresh = entry.set !== undefined && age < ttl;
    const usableStale = entry.set !== undefined && age < ttl + maxStale ? entry.set : undefined;

    if (fresh && entry.set && (!forceRefresh || now - entry.lastForcedRefresh < cooldown)) return entry.set;
    if (entry.lastFailure && now - entry.lastFailure.at < retryAfter) {
      if (usableStale) return usableStale;
      throw entry.lastFailure.error;
    }
    if (forceRefresh) entry.lastForcedRefresh = now;

    const current = entry;
    const fetchOptions: JwksFetchOptions = { timeoutMs, maxBytes: this.options.maxBytes, ca: this.options.ca };
    const attempt = fetchJwks(uri, fetchOptions).then(
      (set) => {
        current.set = set;
        current.fetchedAt = this.now();
        delete current.lastFailure;
        return set;
      },
      (err: unknown) => {
        const error = err instanceof TrellisError ? err : fetchError(uri, String(err), err);
        current.lastFailure = { at: this.now(), error };
        const stale = current.set !== undefined && this.now() - current.fetchedAt < ttl + maxStale ? current.set : undefined;
        if (stale) return stale;
        throw error;
      },
    );
    entry.inflight = attempt.finally(() => {
      delete current.inflight;
    });
    return entry.inflight;
  }

  /** Forgets every cached key set (for example when the configuration changes). */
  clear(): void {
    this.entries.clear();
  }
}
