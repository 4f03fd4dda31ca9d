import assert from 'node:assert/strict';
import { parseConfigText, type ConfigSet } from '../../src/api/config-set.js';
import { formatDiagnostic } from '../../src/api/diagnostics.js';
import { policiesForWorkload } from '../../src/policy/authz-policies.js';
import type { AuthzRequest, HttpRequestAttributes } from '../../src/policy/authz-request.js';
import { buildAuthorizer, type Authorizer } from '../../src/policy/authorizer.js';
import type { Workload } from '../../src/policy/workload.js';

/** Test helpers: YAML in, a validated config set or a compiled authorizer out. */

export const API: Workload = { namespace: 'shop', name: 'api-1', labels: { app: 'api', version: 'v1' }, serviceAccount: 'api' };

/** Parses YAML that must be valid; fails the test with every diagnostic otherwise. */
export function config(yaml: string): ConfigSet {
  const result = parseConfigText(yaml, 'test.yaml');
  assert.deepEqual(result.errors.map(formatDiagnostic), [], 'fixture YAML must be valid');
  assert.ok(result.config);
  return result.config;
}

export function authorizerFor(yaml: string, workload: Workload = API): Authorizer {
  return buildAuthorizer(policiesForWorkload(config(yaml), workload));
}

/** `AuthorizationPolicy` YAML in namespace `shop` (or the given one) with the given spec (YAML, indented by 2). */
export function policy(name: string, spec: string, options: { namespace?: string; annotations?: Record<string, string> } = {}): string {
  const annotations = options.annotations
    ? `\n  annotations:\n${Object.entries(options.annotations).map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join('\n')}`
    : '';
  return `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: ${options.namespace ?? 'shop'}${annotations}
spec:
${spec
  .split('\n')
  .map((line) => `  ${line}`)
  .join('\n')}
`;
}

export interface RequestOptions extends Partial<Omit<AuthzRequest, 'http'>> {
  readonly http?: Partial<Omit<HttpRequestAttributes, 'headers'>> & { headers?: Record<string, string> };
  readonly tcp?: boolean;
}

/** An HTTP request from `cluster.local/ns/web/sa/frontend` unless overridden; `tcp: true` drops the HTTP part. */
export function request(options: RequestOptions = {}): AuthzRequest {
  const { http, tcp, ...rest } = options;
  const base: AuthzRequest = {
    sourcePrincipal: 'cluster.local/ns/web/sa/frontend',
    sourceIp: '10.1.2.3',
    destinationIp: '10.0.0.9',
    destinationPort: 8080,
    ...rest,
  };
  if (tcp === true) return base;
  return {
    ...base,
    http: {
      method: http?.method ?? 'GET',
      path: http?.path ?? '/',
      host: http?.host ?? 'api.shop.svc',
      headers: new Map(Object.entries(http?.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    },
  };
}

/** A request without a peer identity (plaintext). */
export function plaintext(options: RequestOptions = {}): AuthzRequest {
  const { sourcePrincipal: _drop, ...rest } = request(options);
  return rest;
}
