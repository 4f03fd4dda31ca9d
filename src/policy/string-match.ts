/**
 * Istio's string patterns, compiled once: exact (a Set lookup), `prefix*`, `*suffix`, and `*`
 * (any non-empty value). Validation guarantees no other `*` appears.
 */
export interface StringMatcher {
  test(value: string): boolean;
  /** The first pattern that matches, for explanations. */
  which(value: string): string | undefined;
}

export function compileStringMatcher(patterns: readonly string[], options: { ignoreCase?: boolean } = {}): StringMatcher {
  const fold = options.ignoreCase === true ? (s: string) => s.toLowerCase() : (s: string) => s;
  const exact = new Map<string, string>();
  const prefixes: [string, string][] = [];
  const suffixes: [string, string][] = [];
  let any: string | undefined;
  for (const pattern of patterns) {
    if (pattern === '*') any ??= pattern;
    else if (pattern.startsWith('*')) suffixes.push([fold(pattern.slice(1)), pattern]);
    else if (pattern.endsWith('*')) prefixes.push([fold(pattern.slice(0, -1)), pattern]);
    else if (!exact.has(fold(pattern))) exact.set(fold(pattern), pattern);
  }
  const which = (raw: string): string | undefined => {
    if (raw === '') return undefined;
    if (any !== undefined) return any;
    const value = fold(raw);
    const hit = exact.get(value);
    if (hit !== undefined) return hit;
    for (const [prefix, pattern] of prefixes) if (value.startsWith(prefix)) return pattern;
    for (const [suffix, pattern] of suffixes) if (value.endsWith(suffix)) return pattern;
    return undefined;
  };
  // Specialized fast paths for the common shapes.
  if (any !== undefined) return { test: (v) => v !== '', which };
  if (prefixes.length === 0 && suffixes.length === 0) {
    return options.ignoreCase === true ? { test: (v) => exact.has(v.toLowerCase()), which } : { test: (v) => exact.has(v), which };
  }
  return { test: (v) => which(v) !== undefined, which };
}

/** Namespaces: Istio turns every `*` into "any characters" (`prod-*-eu` works). */
export function compileGlobMatcher(patterns: readonly string[]): StringMatcher {
  const compiled = patterns.map((pattern) => ({
    pattern,
    regex: pattern.includes('*') ? new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`) : undefined,
  }));
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const which = (value: string): string | undefined => {
    if (exact.has(value)) return value;
    return compiled.find((c) => c.regex?.test(value) === true)?.pattern;
  };
  return { test: (v) => exact.has(v) || which(v) !== undefined, which };
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
