import { escapeRegExp } from './string-match.js';

/**
 * Path patterns: Istio strings (`/api/*`, `*.json`, exact) or Envoy URI templates, where `{*}`
 * is exactly one non-empty path segment and `{**}` any run of characters including `/`.
 */
export interface PathMatcher {
  test(path: string): boolean;
  which(path: string): string | undefined;
}

// RFC 3986 pchar, as Envoy's URI template matcher defines a segment.
const SEGMENT = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]";

export function isPathTemplate(pattern: string): boolean {
  return pattern.includes('{*}') || pattern.includes('{**}');
}

export function compilePathTemplate(template: string): RegExp {
  const source = template
    .split(/(\{\*\*\}|\{\*\})/)
    .map((part) => (part === '{**}' ? `(?:${SEGMENT}|/)*` : part === '{*}' ? `${SEGMENT}+` : escapeRegExp(part)))
    .join('');
  return new RegExp(`^${source}$`);
}

export function compilePathMatcher(patterns: readonly string[]): PathMatcher {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  const templates: [RegExp, string][] = [];
  let any = false;
  for (const pattern of patterns) {
    if (isPathTemplate(pattern)) templates.push([compilePathTemplate(pattern), pattern]);
    else if (pattern === '*') any = true;
    else if (pattern.startsWith('*')) suffixes.push(pattern.slice(1));
    else if (pattern.endsWith('*')) prefixes.push(pattern.slice(0, -1));
    else exact.add(pattern);
  }
  const which = (path: string): string | undefined => {
    if (path === '') return undefined;
    if (any) return '*';
    if (exact.has(path)) return path;
    for (const prefix of prefixes) if (path.startsWith(prefix)) return `${prefix}*`;
    for (const suffix of suffixes) if (path.endsWith(suffix)) return `*${suffix}`;
    for (const [regex, pattern] of templates) if (regex.test(path)) return pattern;
    return undefined;
  };
  if (!any && prefixes.length === 0 && suffixes.length === 0 && templates.length === 0) {
    return { test: (p) => exact.has(p), which };
  }
  return { test: (p) => which(p) !== undefined, which };
}
