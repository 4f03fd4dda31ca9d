/**
 * Istio's `StringMatch` (exact, prefix, regex), compiled once per snapshot version into a test
 * function and a description for explanations. Regular expressions are RE2 syntax in Istio
 * and always match the whole value (Envoy's `safe_regex`); `compileIstioRegex` turns them into
 * anchored JavaScript expressions. The control plane's validation uses the same function, so a
 * regex that validates is a regex the proxy can compile.
 */
import { TrellisError } from '../api/errors.js';
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

/**
 * An RE2 expression as Istio writes it → a JavaScript RegExp that must match the whole input.
 * Handles what differs in common expressions: leading inline flags (`(?i)`, `(?s)`, `(?m)`),
 * named groups `(?P<name>…)`, and the anchors `\A` and `\z`. Other RE2-only syntax (POSIX
 * classes such as `[[:alpha:]]`, `\Q…\E`, `\C`) is rejected instead of silently changing
 * meaning. Throws TRELLIS_TRAFFIC_BAD_REGEX.
 */
export function compileIstioRegex(source: string): RegExp {
  const { body, flags } = translateRe2(source);
  try {
    return new RegExp(`^(?:${body})$`, flags);
  } catch (err) {
    throw new TrellisError('TRELLIS_TRAFFIC_BAD_REGEX', `invalid regular expression ${JSON.stringify(source)}: ${(err as Error).message}`, { regex: source }, { cause: err });
  }
}

/** Same translation, unanchored, for `uriRegexRewrite` (which replaces every match). */
export function compileIstioRegexGlobal(source: string): RegExp {
  const { body, flags } = translateRe2(source);
  try {
    return new RegExp(body, `${flags}g`);
  } catch (err) {
    throw new TrellisError('TRELLIS_TRAFFIC_BAD_REGEX', `invalid regular expression ${JSON.stringify(source)}: ${(err as Error).message}`, { regex: source }, { cause: err });
  }
}

const LEADING_FLAGS = /^\(\?([a-zA-Z]+)\)/;

function translateRe2(source: string): { body: string; flags: string } {
  let rest = source;
  let flags = '';
  const leading = LEADING_FLAGS.exec(rest);
  if (leading) {
    for (const flag of leading[1] as string) {
      if (flag !== 'i' && flag !== 's' && flag !== 'm') bad(source, `the inline flag (?${flag}) has no JavaScript equivalent`);
      if (!flags.includes(flag)) flags += flag;
    }
    rest = rest.slice(leading[0].length);
  }
  let out = '';
  let inClass = false;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i] as string;
    if (c === '\\') {
      const next = rest[i + 1];
      if (next === undefined) bad(source, 'it ends with a lone backslash');
      if (!inClass && next === 'A') out += '^';
      else if (!inClass && next === 'z') out += '$';
      else if (next === 'Q' || next === 'E' || next === 'C') bad(source, `\\${next} is RE2-only syntax`);
      else out += c + next;
      i++;
      continue;
    }
    if (inClass) {
      if (c === '[' && rest[i + 1] === ':') bad(source, 'POSIX character classes ([[:alpha:]]) are RE2-only syntax');
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      // A `]` right after `[` or `[^` is a literal in RE2 and in JavaScript alike.
      if (rest[i + 1] === '^') {
        out += '^';
        i++;
      }
      if (rest[i + 1] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && rest.startsWith('(?P<', i)) {
      out += '(?<';
      i += 3;
      continue;
    }
    if (c === '(' && rest[i + 1] === '?' && /^\(\?[a-zA-Z-]+[:)]/.test(rest.slice(i))) bad(source, 'inline flags are only supported at the start of the expression');
    out += c;
  }
  return { body: out, flags };
}

function bad(source: string, why: string): never {
  throw new TrellisError('TRELLIS_TRAFFIC_BAD_REGEX', `invalid regular expression ${JSON.stringify(source)}: ${why}`, { regex: source });
}
