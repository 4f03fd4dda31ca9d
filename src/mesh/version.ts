/**
 * Content versions: a resource's version is a hash of its canonical JSON (object keys sorted),
 * so the same content always has the same version — across recompiles, proxies and control
 * plane restarts — and a push happens only when the content really changed.
 */
import { createHash } from 'node:crypto';

export function contentVersion(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}

/** JSON with object keys in sorted order; `undefined` members are dropped as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(item).sort()) sorted[key] = (item as Record<string, unknown>)[key];
    return sorted;
  });
}
