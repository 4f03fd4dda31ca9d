import { parseRequestIp, type IpAddress } from '../api/ip.js';
import type { AuthzRequest, HttpRequestAttributes, VerifiedJwt } from './authz-request.js';

/**
 * The facts about one request, parsed once before any rule is tried: IPs as words, the peer
 * identity split into trust domain / namespace / service account, the host with and without
 * port. A request that cannot be parsed is refused (fail closed), never half-evaluated.
 */
export interface EvalContext {
  readonly request: AuthzRequest;
  readonly http: HttpRequestAttributes | undefined;
  readonly jwt: VerifiedJwt | undefined;
  /** Istio form, without `spiffe://`. */
  readonly principal: string | undefined;
  readonly peer: PeerIdentity | undefined;
  readonly sourceIp: IpAddress;
  readonly remoteIp: IpAddress;
  readonly destinationIp: IpAddress;
  /** Lower case, without port or trailing dot. */
  readonly hostName: string | undefined;
  /** Lower case host name plus `:port` when the client sent one. */
  readonly authority: string | undefined;
}

export interface PeerIdentity {
  readonly trustDomain: string;
  readonly namespace: string | undefined;
  readonly serviceAccount: string | undefined;
}

export type ContextResult = { readonly ok: true; readonly context: EvalContext } | { readonly ok: false; readonly reason: string };

const METHOD = /^[A-Z][A-Z0-9_-]*$/;

export function makeContext(request: AuthzRequest): ContextResult {
  const sourceIp = parseRequestIp(request.sourceIp);
  if (!sourceIp) return fail(`source IP "${request.sourceIp}" is not an IP address`);
  const remoteIp = request.remoteIp === undefined ? sourceIp : parseRequestIp(request.remoteIp);
  if (!remoteIp) return fail(`remote IP "${request.remoteIp ?? ''}" is not an IP address`);
  const destinationIp = parseRequestIp(request.destinationIp);
  if (!destinationIp) return fail(`destination IP "${request.destinationIp}" is not an IP address`);
  if (!Number.isInteger(request.destinationPort) || request.destinationPort < 1 || request.destinationPort > 65535) {
    return fail(`destination port ${request.destinationPort} is not a port number`);
  }

  const principal = request.sourcePrincipal;
  if (principal !== undefined && (principal === '' || principal.includes('://'))) {
    return fail(`source principal "${principal}" is not in Istio's form "trust-domain/ns/namespace/sa/name"`);
  }

  const http = request.http;
  let hostName: string | undefined;
  let authority: string | undefined;
  if (http) {
    if (!METHOD.test(http.method)) return fail(`HTTP method "${http.method}" is not an upper-case token`);
    if (!http.path.startsWith('/') || http.path.includes('?') || http.path.includes('#')) {
      return fail(`path "${http.path}" was not normalized (it must start with "/" and have no query or fragment)`);
    }
    const host = splitHost(http.host);
    if (!host) return fail(`host "${http.host}" is not a valid host`);
    hostName = host.name;
    authority = host.port === undefined ? host.name : `${host.name}:${host.port}`;
  }

  const jwt = request.jwt;
  if (jwt && jwt.principal !== `${jwt.issuer}/${jwt.subject}`) {
    return fail('the verified JWT principal is not "issuer/subject"');
  }
  if (jwt && !http) return fail('a JWT was attached to a TCP connection');

  return {
    ok: true,
    context: {
      request,
      http,
      jwt,
      principal,
      peer: principal === undefined ? undefined : parsePrincipal(principal),
      sourceIp,
      remoteIp,
      destinationIp,
      hostName,
      authority,
    },
  };
}

function fail(reason: string): ContextResult {
  return { ok: false, reason };
}

/** `td/ns/<namespace>/sa/<name>`; other shapes keep only the trust domain. */
export function parsePrincipal(principal: string): PeerIdentity {
  const parts = principal.split('/');
  const trustDomain = parts[0] ?? '';
  if (parts.length === 5 && parts[1] === 'ns' && parts[3] === 'sa' && parts[2] !== '' && parts[4] !== '') {
    return { trustDomain, namespace: parts[2], serviceAccount: parts[4] };
  }
  return { trustDomain, namespace: undefined, serviceAccount: undefined };
}

/**
 * Splits an authority into a lower-case host name and an optional port. Host names compare
 * case-insensitively (RFC 4343) and `example.com.` is `example.com`; both are common bypasses
 * of host rules otherwise.
 */
export function splitHost(host: string): { name: string; port: string | undefined } | undefined {
  if (host === '') return { name: '', port: undefined };
  if (/[\s/?#@]/.test(host)) return undefined;
  const lower = host.toLowerCase();
  let name = lower;
  let port: string | undefined;
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']');
    if (end === -1) return undefined;
    name = lower.slice(0, end + 1);
    const rest = lower.slice(end + 1);
    if (rest !== '') {
      if (!/^:[0-9]{1,5}$/.test(rest)) return undefined;
      port = rest.slice(1);
    }
  } else {
    const colon = lower.lastIndexOf(':');
    if (colon !== -1) {
      if (lower.indexOf(':') !== colon || !/^[0-9]{1,5}$/.test(lower.slice(colon + 1))) return undefined;
      name = lower.slice(0, colon);
      port = lower.slice(colon + 1);
    }
    if (name.endsWith('.')) name = name.slice(0, -1);
  }
  return { name, port };
}
