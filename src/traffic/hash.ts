/**
 * String hashing for consistent hashing: fast, deterministic across processes and platforms
 * (every proxy of the mesh maps a key to the same ring point), not cryptographic. FNV-1a over
 * the UTF-16 code units, then the MurmurHash3 finalizer so that similar inputs (`10.0.0.1:80_1`,
 * `10.0.0.1:80_2`) spread over the whole 32-bit range.
 */

export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 16 hex digits from two independently seeded hashes: the value of a generated hash cookie. */
export function hashHex64(text: string): string {
  return hash32(text, 0x5bd1e995).toString(16).padStart(8, '0') + hash32(text, 0x1b873593).toString(16).padStart(8, '0');
}
