import { closestName, isHeaderName } from './names.js';

/**
 * The `when` keys of an AuthorizationPolicy rule, parsed. Validation and the authorizer both
 * use this one parser, so a key that validates is exactly a key the authorizer understands.
 * Unknown keys are errors (Istio drops such rules silently at run time).
 */
export type ConditionKey =
  | { readonly attribute: 'request.headers'; readonly header: string }
  | { readonly attribute: 'request.auth.claims'; readonly claim: readonly string[] }
  | {
      readonly attribute:
        | 'source.ip'
        | 'remote.ip'
        | 'source.namespace'
        | 'source.principal'
        | 'source.serviceAccount'
        | 'source.trustDomain'
        | 'request.auth.principal'
        | 'request.auth.audiences'
        | 'request.auth.presenter'
        | 'destination.ip'
        | 'destination.port'
        | 'connection.sni';
    };

export type PlainAttribute = Exclude<ConditionKey, { header: string } | { claim: readonly string[] }>['attribute'];

const PLAIN: readonly PlainAttribute[] = [
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'source.trustDomain',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
];

/** Every documented key, for messages. */
export const CONDITION_KEY_NAMES: readonly string[] = [...PLAIN, 'request.headers[<name>]', 'request.auth.claims[<name>]'];

/** Attributes that only exist on HTTP requests (Istio's "HTTP only" column). */
export function isHttpOnlyCondition(key: ConditionKey): boolean {
  return key.attribute.startsWith('request.');
}

/** Headers that are not ordinary headers: the pseudo-headers and `host` are request fields. */
const RESERVED_HEADERS = new Set([':authority', ':method', ':path', ':scheme', 'host']);

export type ConditionKeyResult = { readonly ok: true; readonly key: ConditionKey } | { readonly ok: false; readonly message: string };

export function parseConditionKey(key: string): ConditionKeyResult {
  if ((PLAIN as readonly string[]).includes(key)) return { ok: true, key: { attribute: key as PlainAttribute } };
  if (key.startsWith('request.headers')) {
    const names = bracketed(key.slice('request.headers'.length));
    if (!names || names.length !== 1) return { ok: false, message: `bad key "${key}": expected request.headers[<header-name>]` };
    const header = (names[0] ?? '').toLowerCase();
    if (RESERVED_HEADERS.has(header)) {
      return { ok: false, message: `"${key}": ${header} is not matched as a header; use the operation fields hosts, methods or paths` };
    }
    if (!isHeaderName(header)) return { ok: false, message: `"${key}": "${names[0] ?? ''}" is not a valid header name` };
    return { ok: true, key: { attribute: 'request.headers', header } };
  }
  if (key.startsWith('request.auth.claims')) {
    const claim = bracketed(key.slice('request.auth.claims'.length));
    if (!claim || claim.some((c) => c === '')) {
      return { ok: false, message: `bad key "${key}": expected request.auth.claims[<claim>] or nested request.auth.claims[<claim>][<field>]` };
    }
    return { ok: true, key: { attribute: 'request.auth.claims', claim } };
  }
  if (key.startsWith('experimental.envoy.filters.')) {
    return { ok: false, message: `"${key}": experimental.envoy.filters.* reads Envoy filter metadata, which Trellis does not have` };
  }
  if (key === 'destination.namespace') return { ok: false, message: `"${key}" is replaced by the policy's metadata.namespace` };
  if (key.startsWith('destination.labels')) return { ok: false, message: `"${key}" is replaced by the workload selector` };
  if (key === 'destination.name' || key === 'destination.user') {
    return { ok: false, message: `"${key}" was removed from Istio's API (only v1alpha1 RBAC had it)` };
  }
  const bracket = key.indexOf('[');
  const hint =
    bracket === -1
      ? closestName(key, PLAIN)
      : ((name) => (name === undefined ? undefined : `${name}${key.slice(bracket)}`))(closestName(key.slice(0, bracket), ['request.headers', 'request.auth.claims']));
  return {
    ok: false,
    message: `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}: supported keys are ${CONDITION_KEY_NAMES.join(', ')}`,
  };
}

/** `[a][b]` → `['a', 'b']`; anything else → undefined. */
function bracketed(rest: string): string[] | undefined {
  const out: string[] = [];
  let index = 0;
  while (index < rest.length) {
    if (rest[index] !== '[') return undefined;
    const end = rest.indexOf(']', index);
    if (end === -1) return undefined;
    const name = rest.slice(index + 1, end);
    if (name.includes('[')) return undefined;
    out.push(name);
    index = end + 1;
  }
  return out.length > 0 ? out : undefined;
}
