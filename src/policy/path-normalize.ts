/**
 * Request-path normalization before authorization, with Istio's `pathNormalization` options.
 *
 * The one property that matters: the path authorization matches is exactly the path the
 * application receives. The proxy therefore forwards `target` (the normalized path plus the
 * untouched query), never the raw request target. A path that cannot be normalized safely is
 * rejected with a typed reason so the proxy answers 400 before any policy runs.
 *
 * Istio's documented behaviour (reference "Authorization Policy Normalization" and the
 * security best-practices page), implemented here:
 * - NONE: nothing is changed.
 * - BASE: percent-encoded unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`) are decoded
 *   once (no double decoding); backslashes become forward slashes; `.` and `..` segments are
 *   resolved as RFC 3986 section 5.2.4 says.
 * - MERGE_SLASHES: BASE, then runs of `/` are merged into one.
 * - DECODE_AND_MERGE_SLASHES: `%2F`/`%2f` and `%5C`/`%5c` are decoded first (so an encoded
 *   backslash also becomes `/`), then BASE, then slashes are merged.
 * - `%00` is always rejected (Istio answers 400 whatever the option).
 * - The query is not part of the matched path; it is forwarded exactly as received.
 *
 * Where Istio/Envoy are more lenient, Trellis is stricter (each choice is marked STRICTER below):
 * fragments are rejected rather than stripped, invalid percent-encoding is rejected, percent-
 * encoded bytes that are not valid UTF-8 (overlong forms such as `%C0%AF`) are rejected, and raw
 * control characters, spaces and non-ASCII bytes are rejected in every mode, NONE included.
 */

export const PATH_NORMALIZATIONS = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export type PathNormalization = (typeof PATH_NORMALIZATIONS)[number];

export type PathRejectReason =
  /** The request target is empty. */
  | 'empty'
  /** Not origin-form (`/path?query`): absolute-form, authority-form and `*` are handled elsewhere. */
  | 'not_origin_form'
  /** The target carries a `#fragment`, which is never part of an HTTP request target. */
  | 'fragment'
  /** A raw control character, space, DEL or non-ASCII byte. */
  | 'invalid_character'
  /** A raw NUL or `%00`. */
  | 'nul'
  /** A `%` not followed by two hexadecimal digits. */
  | 'invalid_percent_encoding'
  /** Percent-encoded bytes that do not form valid UTF-8 (overlong forms, lone continuation bytes, surrogates). */
  | 'invalid_utf8';

export interface NormalizedPath {
  readonly ok: true;
  /** The normalized path: what authorization matches and what the application receives. */
  readonly path: string;
  /** The raw query after the first `?`, unchanged; `null` when the target had no `?`. */
  readonly query: string | null;
  /** `path` plus `?query` when there was one: the request target to forward upstream. */
  readonly target: string;
}

export interface PathRejection {
  readonly ok: false;
  readonly reason: PathRejectReason;
  /** What is wrong, for logs and for authenticated mesh peers; never sent to anonymous clients. */
  readonly message: string;
}

export type PathNormalizationResult = NormalizedPath | PathRejection;

const HEX = '0123456789ABCDEF';

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

/**
 * Printable ASCII characters that RFC 3986 does not allow raw in a path (not pchar, not `/`).
 * `\` is handled separately (it becomes `/`), `%` starts an escape, `?` and `#` end the path.
 * Like Envoy's normalizer, BASE and stronger modes percent-encode them, so the forwarded path is
 * valid and cannot be mistaken for policy template syntax (`{*}`).
 */
const ENCODE_RAW = new Set(['"', '<', '>', '[', ']', '^', '`', '{', '|', '}']);

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

function encodeByte(byte: number): string {
  return `%${HEX[byte >> 4] ?? '0'}${HEX[byte & 15] ?? '0'}`;
}

function reject(reason: PathRejectReason, message: string): PathRejection {
  return { ok: false, reason, message };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Normalizes an origin-form request target (`/path?query`) with one of Istio's options.
 * Pure; never throws for any input string.
 */
export function normalizePath(rawTarget: string, mode: PathNormalization): PathNormalizationResult {
  if (rawTarget.length === 0) return reject('empty', 'the request target is empty');

  // Whole-target character checks (path and query alike).
  for (let i = 0; i < rawTarget.length; i++) {
    const code = rawTarget.charCodeAt(i);
    if (code === 0) return reject('nul', `NUL character at offset ${i}`);
    // STRICTER: Envoy's codecs reject most of these already; we reject all of them here so the
    // rule does not depend on which HTTP parser delivered the request.
    if (code < 0x20 || code === 0x20 || code === 0x7f) {
      return reject('invalid_character', `control character or space (0x${code.toString(16).padStart(2, '0')}) at offset ${i}`);
    }
    if (code > 0x7e) {
      return reject('invalid_character', `non-ASCII character at offset ${i}: request targets must be percent-encoded`);
    }
    // STRICTER: Envoy rejects fragments by default (runtime guard http_reject_path_with_fragment);
    // its other setting strips them. Trellis always rejects: a client never sends a fragment.
    if (code === 0x23) return reject('fragment', `the request target carries a #fragment at offset ${i}`);
  }

  const questionMark = rawTarget.indexOf('?');
  const rawPath = questionMark === -1 ? rawTarget : rawTarget.slice(0, questionMark);
  const query = questionMark === -1 ? null : rawTarget.slice(questionMark + 1);

  // Istio's BASE example turns `\da` into `/da`: a leading backslash counts as a slash once
  // backslashes are normalized. STRICTER: NONE forwards as-is, so there it is not origin-form.
  if (!(rawPath.startsWith('/') || (mode !== 'NONE' && rawPath.startsWith('\\')))) {
    return reject('not_origin_form', `the request target must start with "/" (origin-form), got "${truncate(rawTarget)}"`);
  }

  const decoded = decodePath(rawPath, mode);
  if (!decoded.ok) return decoded;

  let path = decoded.path;
  if (mode !== 'NONE') {
    // Istio documents backslash-to-slash as part of BASE (Envoy's normalize_path), not only of
    // DECODE_AND_MERGE_SLASHES. A raw `\` here, or a decoded `%5C` in DECODE_AND_MERGE_SLASHES.
    path = path.replaceAll('\\', '/');
    path = removeDotSegments(path);
    if (mode === 'MERGE_SLASHES' || mode === 'DECODE_AND_MERGE_SLASHES') {
      path = path.replace(/\/{2,}/g, '/');
    }
  }
  return { ok: true, path, query, target: query === null ? path : `${path}?${query}` };
}

/** The name the policy engine uses for the same function. */
export const normalizeRequestTarget = normalizePath;

type Decoded = { readonly ok: true; readonly path: string } | PathRejection;

/**
 * One pass over the path: validates every escape, decodes the ones the mode decodes (once: the
 * output of a decode is never decoded again), upper-cases the hex of the ones it keeps (RFC 3986
 * section 6.2.2.1) and percent-encodes raw characters that are not allowed in a path.
 */
function decodePath(rawPath: string, mode: PathNormalization): Decoded {
  let out = '';
  let escapedRun: number[] = [];
  let runStart = 0;

  const flushRun = (): PathRejection | null => {
    if (escapedRun.length === 0) return null;
    const bytes = escapedRun;
    escapedRun = [];
    if (bytes.some((b) => b >= 0x80)) {
      // STRICTER: Envoy forwards such bytes unchanged. An application that decodes them with a
      // lenient decoder could see `/` (`%C0%AF`) where authorization saw an opaque escape.
      try {
        utf8.decode(new Uint8Array(bytes));
      } catch {
        return reject('invalid_utf8', `percent-encoded bytes at offset ${runStart} are not valid UTF-8`);
      }
    }
    return null;
  };

  for (let i = 0; i < rawPath.length; i++) {
    const ch = rawPath[i] ?? '';
    if (ch !== '%') {
      const bad = flushRun();
      if (bad) return bad;
      if (mode !== 'NONE' && ENCODE_RAW.has(ch)) out += encodeByte(ch.charCodeAt(0));
      else out += ch;
      continue;
    }
    const hi = hexValue(rawPath.charCodeAt(i + 1));
    const lo = hexValue(rawPath.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) {
      // STRICTER: Envoy passes a stray `%` through; an application may decode it differently.
      return reject('invalid_percent_encoding', `"%" at offset ${i} is not followed by two hexadecimal digits`);
    }
    const byte = hi * 16 + lo;
    if (byte === 0) return reject('nul', `%00 at offset ${i}`);
    if (escapedRun.length === 0) runStart = i;
    escapedRun.push(byte);
    i += 2;

    if (mode === 'NONE') {
      out += rawPath.slice(i - 2, i + 1);
    } else if (isUnreserved(byte)) {
      out += String.fromCharCode(byte);
    } else if (mode === 'DECODE_AND_MERGE_SLASHES' && (byte === 0x2f || byte === 0x5c)) {
      out += String.fromCharCode(byte);
    } else {
      out += encodeByte(byte);
    }
  }
  const bad = flushRun();
  if (bad) return bad;
  return { ok: true, path: out };
}

/**
 * RFC 3986 section 5.2.4 for an absolute path (always starts with `/`). Only segments that are
 * exactly `.` or `..` are dot segments; encoded dots were decoded before this runs.
 */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  // segments[0] is the empty string before the leading "/".
  const output: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] ?? '';
    const last = i === segments.length - 1;
    if (segment === '.') {
      if (last) output.push('');
    } else if (segment === '..') {
      output.pop();
      if (last) output.push('');
    } else {
      output.push(segment);
    }
  }
  return `/${output.join('/')}`;
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
