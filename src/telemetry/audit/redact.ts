/**
 * Credentials never reach a log. Header names are matched case-insensitively against the usual
 * credential carriers, and against name patterns (`*-token`, `*secret*`, `*api-key*`) because
 * applications invent their own.
 */

export const REDACTED = '<redacted>';

const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-amz-security-token',
  'x-csrf-token',
  'x-xsrf-token',
  'x-forwarded-client-cert',
]);

const CREDENTIAL_PATTERN = /(?:token|secret|password|passwd|api[-_]?key|credential|session)/i;

export function isCredentialHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return CREDENTIAL_HEADERS.has(lower) || CREDENTIAL_PATTERN.test(lower);
}

export function redactHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = isCredentialHeader(name) ? REDACTED : value;
  return out;
}
