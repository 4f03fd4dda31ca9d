import type { PathNormalization } from '../api/schemas/mesh-config.js';

/**
 * Splits an HTTP request-target into the path authorization matches and the query the
 * application still receives, and normalizes the path with the mesh's option. The fragment
 * never reaches matching (clients should not send one; if they do it is dropped). The result's
 * `path` is what is both authorized and forwarded, so policy and application agree.
 */

/** The path normalizer's contract (src/policy/path-normalize.ts implements it). */
export type NormalizePath = (path: string, mode: PathNormalization) => NormalizedPath;

export type NormalizedPath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

export type RequestTarget =
  | { readonly ok: true; readonly path: string; /** without `?`; absent when there was none */ readonly query?: string }
  | { readonly ok: false; readonly reason: string };

export function normalizeRequestTarget(target: string, mode: PathNormalization, normalize: NormalizePath): RequestTarget {
  const hash = target.indexOf('#');
  const withoutFragment = hash === -1 ? target : target.slice(0, hash);
  const question = withoutFragment.indexOf('?');
  const rawPath = question === -1 ? withoutFragment : withoutFragment.slice(0, question);
  const query = question === -1 ? undefined : withoutFragment.slice(question + 1);
  if (!rawPath.startsWith('/')) return { ok: false, reason: `request target "${target}" is not an origin-form path starting with "/"` };
  const normalized = normalize(rawPath, mode);
  if (!normalized.ok) return { ok: false, reason: normalized.reason };
  return query === undefined ? { ok: true, path: normalized.path } : { ok: true, path: normalized.path, query };
}
