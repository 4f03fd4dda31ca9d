import { TrellisError } from '../api/errors.js';

/**
 * SPIFFE IDs exactly as the SPIFFE-ID standard defines them:
 *   spiffe://<trust domain>[/<segment>…]
 * Trust domain: lowercase letters, digits, '.', '-', '_' (no userinfo, no port, no
 * percent-encoding), at most 255 bytes. Path segments: letters, digits, '.', '-', '_', none
 * empty, '.' or '..', no trailing '/'. No query or fragment. At most 2048 bytes in all.
 */
export const SPIFFE_SCHEME_PREFIX = 'spiffe://';
export const MAX_SPIFFE_ID_BYTES = 2048;
export const MAX_TRUST_DOMAIN_BYTES = 255;

const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_SEGMENT_CHAR = /^[a-zA-Z0-9._-]$/;

/** The rule a rejected SPIFFE ID or trust domain broke; stable, for tests and tools. */
export type SpiffeIdRule =
  | 'empty'
  | 'scheme'
  | 'too-long'
  | 'trust-domain-missing'
  | 'trust-domain-too-long'
  | 'trust-domain-uppercase'
  | 'trust-domain-char'
  | 'userinfo'
  | 'port'
  | 'percent-encoded'
  | 'query'
  | 'fragment'
  | 'empty-segment'
  | 'dot-segment'
  | 'trailing-slash'
  | 'path-char';

export class SpiffeIdError extends TrellisError {
  readonly rule: SpiffeIdRule;

  constructor(rule: SpiffeIdRule, input: string, message: string, what = 'SPIFFE ID') {
    super('TRELLIS_BAD_SPIFFE_ID', `invalid ${what} ${JSON.stringify(truncate(input))}: ${message}`, {
      rule,
      exitCode: 2,
    });
    this.rule = rule;
  }
}

export class SpiffeId {
  readonly trustDomain: string;
  /** '' or a path that starts with '/'. */
  readonly path: string;

  private constructor(trustDomain: string, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
  }

  /** Parses and validates; throws SpiffeIdError naming the broken rule. */
  static parse(input: string): SpiffeId {
    const { trustDomain, path } = parseParts(input);
    return new SpiffeId(trustDomain, path);
  }

  /** Builds an ID from a validated trust domain and path segments. */
  static fromSegments(trustDomain: string, segments: readonly string[]): SpiffeId {
    const path = segments.map((segment) => `/${segment}`).join('');
    return SpiffeId.parse(`${SPIFFE_SCHEME_PREFIX}${trustDomain}${path}`);
  }

  /** The Kubernetes-style workload identity Istio uses: spiffe://td/ns/<ns>/sa/<sa>. */
  static forServiceAccount(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
    return SpiffeId.fromSegments(trustDomain, ['ns', namespace, 'sa', serviceAccount]);
  }

  /** Parses Istio's principal form `cluster.local/ns/foo/sa/bar` (no scheme). */
  static fromIstioPrincipal(principal: string): SpiffeId {
    if (principal.includes('://')) {
      throw new SpiffeIdError('scheme', principal, 'an Istio principal has no scheme: write "td/ns/foo/sa/bar"');
    }
    return SpiffeId.parse(`${SPIFFE_SCHEME_PREFIX}${principal}`);
  }

  static isValid(input: string): boolean {
    try {
      parseParts(input);
      return true;
    } catch {
      return false;
    }
  }

  /** The trust domain's own ID (no path): the identity of its signing authority. */
  get isTrustDomainId(): boolean {
    return this.path === '';
  }

  get segments(): string[] {
    return this.path === '' ? [] : this.path.slice(1).split('/');
  }

  /** Namespace and service account for IDs of the form /ns/<ns>/sa/<sa>, else undefined. */
  get serviceAccount(): { namespace: string; serviceAccount: string } | undefined {
    const [ns, namespace, sa, serviceAccount, ...rest] = this.segments;
    if (ns !== 'ns' || sa !== 'sa' || namespace === undefined || serviceAccount === undefined || rest.length > 0) {
      return undefined;
    }
    return { namespace, serviceAccount };
  }

  /** Istio's principal form, as used in AuthorizationPolicy `principals`. */
  toIstioPrincipal(): string {
    return `${this.trustDomain}${this.path}`;
  }

  toString(): string {
    return `${SPIFFE_SCHEME_PREFIX}${this.trustDomain}${this.path}`;
  }

  equals(other: SpiffeId): boolean {
    return this.trustDomain === other.trustDomain && this.path === other.path;
  }

  memberOf(trustDomain: string): boolean {
    return this.trustDomain === trustDomain;
  }
}

/** Validates a bare trust domain name (as given to `ca init --trust-domain`). */
export function validateTrustDomain(trustDomain: string): string {
  try {
    checkTrustDomain(trustDomain, trustDomain);
  } catch (err) {
    if (err instanceof SpiffeIdError) throw new SpiffeIdError(err.rule, trustDomain, err.message.replace(/^invalid SPIFFE ID "[^"]*": /, ''), 'trust domain');
    throw err;
  }
  return trustDomain;
}

function parseParts(input: string): { trustDomain: string; path: string } {
  if (input === '') throw new SpiffeIdError('empty', input, 'it is empty');
  if (Buffer.byteLength(input, 'utf8') > MAX_SPIFFE_ID_BYTES) {
    throw new SpiffeIdError('too-long', input, `it is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  }
  // The scheme is case-insensitive (RFC 3986); we accept any case and always print lowercase.
  if (input.slice(0, SPIFFE_SCHEME_PREFIX.length).toLowerCase() !== SPIFFE_SCHEME_PREFIX) {
    throw new SpiffeIdError('scheme', input, 'it must start with "spiffe://"');
  }
  const rest = input.slice(SPIFFE_SCHEME_PREFIX.length);
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  checkTrustDomain(authority, input);
  checkPath(path, input);
  return { trustDomain: authority, path };
}

function checkTrustDomain(authority: string, input: string): void {
  // Query and fragment may start right after the authority: spiffe://td?x or spiffe://td#x.
  checkNoQueryOrFragment(authority, input);
  if (authority === '') throw new SpiffeIdError('trust-domain-missing', input, 'the trust domain is missing');
  if (authority.includes('@')) {
    throw new SpiffeIdError('userinfo', input, 'the trust domain must not contain userinfo ("user@")');
  }
  if (authority.startsWith('[')) {
    throw new SpiffeIdError('trust-domain-char', input, 'IPv6 addresses cannot be trust domains');
  }
  if (authority.includes(':')) throw new SpiffeIdError('port', input, 'the trust domain must not contain a port (":")');
  if (authority.includes('%')) {
    throw new SpiffeIdError('percent-encoded', input, 'the trust domain must not contain percent-encoded characters');
  }
  if (authority.length > MAX_TRUST_DOMAIN_BYTES) {
    throw new SpiffeIdError('trust-domain-too-long', input, `the trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`);
  }
  for (const char of authority) {
    if (TRUST_DOMAIN_CHAR.test(char)) continue;
    if (/^[A-Z]$/.test(char)) {
      throw new SpiffeIdError('trust-domain-uppercase', input, 'the trust domain must be lowercase');
    }
    throw new SpiffeIdError(
      'trust-domain-char',
      input,
      `the trust domain contains ${JSON.stringify(char)}: only a-z, 0-9, ".", "-" and "_" are allowed`,
    );
  }
}

function checkPath(path: string, input: string): void {
  if (path === '') return;
  checkNoQueryOrFragment(path, input);
  if (path.includes('%')) {
    throw new SpiffeIdError('percent-encoded', input, 'the path must not contain percent-encoded characters');
  }
  if (path.endsWith('/')) throw new SpiffeIdError('trailing-slash', input, 'the path must not end with "/"');
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') throw new SpiffeIdError('empty-segment', input, 'the path must not contain empty segments ("//")');
    if (segment === '.' || segment === '..') {
      throw new SpiffeIdError('dot-segment', input, `the path must not contain "${segment}" segments`);
    }
    for (const char of segment) {
      if (!PATH_SEGMENT_CHAR.test(char)) {
        throw new SpiffeIdError(
          'path-char',
          input,
          `the path contains ${JSON.stringify(char)}: segments allow only a-z, A-Z, 0-9, ".", "-" and "_"`,
        );
      }
    }
  }
}

function checkNoQueryOrFragment(part: string, input: string): void {
  if (part.includes('?')) throw new SpiffeIdError('query', input, 'a SPIFFE ID must not have a query ("?")');
  if (part.includes('#')) throw new SpiffeIdError('fragment', input, 'a SPIFFE ID must not have a fragment ("#")');
}

function truncate(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
