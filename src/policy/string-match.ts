/**
 * Istio's string patterns, compiled once: exact, `prefix*`, `*suffix`, and `*` (any non-empty
 * value). Validation guarantees no other `*` appears. The test functions are plain loops over
 * arrays (and a Set for long exact lists): they run for every rule of every request.
 */
export interface StringMatcher {
  test(value: string): boolean;
  /** The first pattern that matches, for explanations. */
  which(value: string): string | undefined;
}

/** Below this many exact values a linear scan of `===` beats hashing. */
const SET_THRESHOLD = 8;

export function compileStringMatcher(patterns: readonly string[], options: { ignoreCase?: boolean } = {}): StringMatcher {
  const ignoreCase = options.ignoreCase === true;
  const fold = (s: string): string => (ignoreCase ? s.toLowerCase() : s);
  const exact: string[] = [];
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  let any = false;
  for (const pattern of patterns) {
    if (pattern === '*') any = true;
    else if (pattern.startsWith('*')) suffixes.push(fold(pattern.slice(1)));
    else if (pattern.endsWith('*')) prefixes.push(fold(pattern.slice(0, -1)));
    else if (!exact.includes(fold(pattern))) exact.push(fold(pattern));
  }
  const exactSet = exact.length > SET_THRESHOLD ? new Set(exact) : undefined;
  const nExact = exact.length;
  const nPrefix = prefixes.length;
  const nSuffix = suffixes.length;

  const matchFolded = (value: string): boolean => {
    if (exactSet !== undefined) {
      if (exactSet.has(value)) return true;
    } else {
      for (let i = 0; i < nExact; i++) if (exact[i] === value) return true;
    }
    for (let i = 0; i < nPrefix; i++) if (value.startsWith(prefixes[i] as string)) return true;
    for (let i = 0; i < nSuffix; i++) if (value.endsWith(suffixes[i] as string)) return true;
    return false;
  };
  const test = any ? (value: string): boolean => value !== '' : ignoreCase ? (value: string): boolean => value !== '' && matchFolded(value.toLowerCase()) : (value: string): boolean => value !== '' && matchFolded(value);

  const which = (raw: string): string | undefined => {
    if (raw === '') return undefined;
    const value = fold(raw);
    return patterns.find((pattern) => {
      if (pattern === '*') return true;
      if (pattern.startsWith('*')) return value.endsWith(fold(pattern.slice(1)));
      if (pattern.endsWith('*')) return value.startsWith(fold(pattern.slice(0, -1)));
      return value === fold(pattern);
    });
  };
  return { test, which };
}

/** Namespaces: Istio turns every `*` into "any characters" (`prod-*-eu` works). */
export function compileGlobMatcher(patterns: readonly string[]): StringMatcher {
  const globs = patterns.filter((p) => p.includes('*')).map((pattern) => ({ pattern, regex: new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`) }));
  const exact = compileStringMatcher(patterns.filter((p) => !p.includes('*')));
  const which = (value: string): string | undefined => exact.which(value) ?? globs.find((g) => g.regex.test(value))?.pattern;
  if (globs.length === 0) return exact;
  return { test: (v) => exact.test(v) || globs.some((g) => g.regex.test(v)), which };
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
