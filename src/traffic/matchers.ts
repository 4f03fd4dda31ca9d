/**
 * Istio's `StringMatch` (exact, prefix, regex), compiled once per snapshot version into a test
 * function and a description for explanations. Regular expressions are RE2 syntax in Istio
 * and always match the whole value (Envoy's `safe_regex`); `compileIstioRegex` (src/api/regex.ts) turns them
 * into anchored JavaScript expressions. The control plane's validation uses the same function, so a
 * regex that validates is a regex the proxy can compile.
 */
import { compileIstioRegex } from '../api/regex.js';
import type { StringMatchSnapshot } from '../mesh/snapshot.js';

export interface CompiledStringMatch {
  /**
   * Presence only (Istio: an empty `StringMatch`, or `regex: "*"` on headers and query
   * parameters): any value matches, the attribute just has to be there.
   */
  readonly presence: boolean;
  /** For explanations: `exact "jason"`, `prefix "/api"`, `regex "v[12]"`, `present`. */
  readonly description: string;
  test(value: string): boolean;
}

export interface StringMatchOptions {
  /** Case-insensitive exact and prefix (Istio's `ignoreUriCase`; never applies to regex). */
  ignoreCase?: boolean;
  /**
   * Treat `regex: "*"` as presence, as Istio does for headers, method, authority, scheme and
   * query parameters (`*` is not a valid RE2 expression; Istio reads it as "any value").
   */
  starIsPresence?: boolean;
}

const PRESENT: CompiledStringMatch = { presence: true, description: 'present', test: () => true };

/** An empty match (no exact, prefix or regex): Istio checks presence only. */
export function isEmptyStringMatch(match: StringMatchSnapshot | undefined): boolean {
  return match === undefined || (match.exact === undefined && match.prefix === undefined && match.regex === undefined);
}

export function compileStringMatch(match: StringMatchSnapshot | undefined, options: StringMatchOptions = {}): CompiledStringMatch {
  if (match === undefined || isEmptyStringMatch(match)) return PRESENT;
  const ignoreCase = options.ignoreCase === true;
  if (match.exact !== undefined) {
    const expected = match.exact;
    const folded = expected.toLowerCase();
    return {
      presence: false,
      description: `exact ${JSON.stringify(expected)}`,
      test: ignoreCase ? (value) => value.length === folded.length && value.toLowerCase() === folded : (value) => value === expected,
    };
  }
  if (match.prefix !== undefined) {
    const prefix = match.prefix;
    const folded = prefix.toLowerCase();
    return {
      presence: false,
      description: `prefix ${JSON.stringify(prefix)}`,
      test: ignoreCase ? (value) => value.length >= folded.length && value.slice(0, folded.length).toLowerCase() === folded : (value) => value.startsWith(prefix),
    };
  }
  const source = match.regex as string;
  if (source === '*' && options.starIsPresence === true) return PRESENT;
  const regex = compileIstioRegex(source);
  return { presence: false, description: `regex ${JSON.stringify(source)}`, test: (value) => regex.test(value) };
}

/** Istio's RE2 expressions as JavaScript (the translation lives in src/api so validation uses it too). */
export { compileIstioRegex, compileIstioRegexGlobal } from '../api/regex.js';
