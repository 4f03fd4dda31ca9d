import { TrellisError } from './errors.js';

/**
 * Istio's regular expressions are RE2 syntax and always match the whole value (Envoy's
 * `safe_regex`). This module turns them into JavaScript expressions, and rejects what the two
 * dialects read differently instead of silently changing the meaning: validation (src/api) and
 * the proxy's matchers (src/traffic) use the same translation, so a regex that validates is a
 * regex the proxy can compile, with the meaning Istio gives it.
 *
 * Handled: leading inline flags (`(?i)`, `(?s)`, `(?m)`), named groups `(?P<name>…)`, the
 * anchors `\A` and `\z`. Rejected (RE2 has no such syntax, or JavaScript would read it
 * differently): lookahead and lookbehind, backreferences (`\1`, `\k<name>`), `\Z`, Unicode
 * classes `\p{…}` (JavaScript reads them literally without the `u` flag), `\cX`, POSIX classes
 * `[[:alpha:]]`, `\Q…\E`, `\C`, inline flags after the start, and repetition counts above 1000
 * (RE2's limit). Istio also rejects expressions longer than 1024 characters.
 */

/** Istio's limit (Envoy's RE2 program size, approximated by the length). */
export const MAX_REGEX_LENGTH = 1024;

/** RE2's largest repetition count. */
const MAX_REPEAT = 1000;

export interface TranslatedRegex {
  readonly body: string;
  readonly flags: string;
}

/** Why `source` is not an RE2 expression Trellis can run, or undefined when it is. */
export function regexProblem(source: string): string | undefined {
  if (source === '') return 'an empty regular expression';
  if (source.length > MAX_REGEX_LENGTH) return `it is longer than ${MAX_REGEX_LENGTH} characters (Istio's limit)`;
  try {
    const { body, flags } = translateRe2(source);
    new RegExp(body, flags);
    return undefined;
  } catch (err) {
    if (err instanceof TrellisError) return String(err.details['reason'] ?? err.message);
    return (err as Error).message;
  }
}

const LEADING_FLAGS = /^\(\?([a-zA-Z]+)\)/;

/** RE2 → JavaScript source and flags (not anchored). Throws TRELLIS_TRAFFIC_BAD_REGEX. */
export function translateRe2(source: string): TranslatedRegex {
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
      if (/[1-9]/.test(next) && !inClass) bad(source, `backreferences (\\${next}) are not supported by RE2`);
      if (next === 'k' && !inClass) bad(source, 'backreferences (\\k<name>) are not supported by RE2');
      if (next === 'Z') bad(source, '\\Z is not RE2 syntax (use \\z or $)');
      if (next === 'p' || next === 'P') bad(source, `Unicode classes (\\${next}{…}) are not supported`);
      if (next === 'c') bad(source, 'control escapes (\\cX) are not RE2 syntax');
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
    if (c === '(' && (rest.startsWith('(?=', i) || rest.startsWith('(?!', i))) bad(source, 'lookahead ((?=…), (?!…)) is not supported by RE2');
    if (c === '(' && (rest.startsWith('(?<=', i) || rest.startsWith('(?<!', i))) bad(source, 'lookbehind ((?<=…), (?<!…)) is not supported by RE2');
    if (c === '(' && rest.startsWith('(?>', i)) bad(source, 'atomic groups ((?>…)) are not supported by RE2');
    if (c === '(' && rest[i + 1] === '?' && /^\(\?[a-zA-Z-]+[:)]/.test(rest.slice(i))) bad(source, 'inline flags are only supported at the start of the expression');
    if (c === '{') {
      const repeat = /^\{(\d+)(?:,(\d*))?\}/.exec(rest.slice(i));
      if (repeat && (Number(repeat[1]) > MAX_REPEAT || Number(repeat[2] || 0) > MAX_REPEAT)) bad(source, `repetition counts above ${MAX_REPEAT} are not supported by RE2`);
    }
    out += c;
  }
  return { body: out, flags };
}

/** An RE2 expression as Istio writes it → a JavaScript RegExp that must match the whole input. */
export function compileIstioRegex(source: string): RegExp {
  const { body, flags } = translateRe2(source);
  try {
    return new RegExp(`^(?:${body})$`, flags);
  } catch (err) {
    throw badRegex(source, (err as Error).message, err);
  }
}

/** Same translation, unanchored, for `uriRegexRewrite` (which replaces every match). */
export function compileIstioRegexGlobal(source: string): RegExp {
  const { body, flags } = translateRe2(source);
  try {
    return new RegExp(body, `${flags}g`);
  } catch (err) {
    throw badRegex(source, (err as Error).message, err);
  }
}

function bad(source: string, why: string): never {
  throw badRegex(source, why);
}

function badRegex(source: string, why: string, cause?: unknown): TrellisError {
  return new TrellisError(
    'TRELLIS_TRAFFIC_BAD_REGEX',
    `invalid regular expression ${JSON.stringify(source)}: ${why}`,
    { regex: source, reason: why },
    cause === undefined ? undefined : { cause },
  );
}
